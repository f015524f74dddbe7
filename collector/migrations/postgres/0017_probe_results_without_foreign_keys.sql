-- Issue 15: a probe result no longer checks its agent and unit against their tables. Each row's two
-- foreign keys ran a trigger query (`SELECT … FOR KEY SHARE` on agents and on units) per row
-- inserted: about a quarter of PostgreSQL's time at ingest, for a check that cannot fail there:
-- ingest writes the authenticated agent's own id and unit, read from its `agents` row in the same
-- request, and agents and units are never deleted (an agent is revoked, a unit dissolved, both kept).
-- `events` keeps its foreign keys (a batch has one heartbeat, the rest are probe results).
-- SQLite keeps them on probe_results too: there they are an index lookup in the same process, and
-- dropping them would mean rebuilding the table (copying every row) on upgrade.
ALTER TABLE probe_results DROP CONSTRAINT IF EXISTS probe_results_agent_id_fkey;
ALTER TABLE probe_results DROP CONSTRAINT IF EXISTS probe_results_unit_id_fkey;
