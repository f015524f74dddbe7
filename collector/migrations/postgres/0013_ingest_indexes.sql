-- Issue 15: probe results are stored once (no longer also as raw events) and written many at a
-- time, so their table is the ingest's hot spot. Of its indexes only the primary key (the event
-- id: agents' ids are UUIDv7, ordered by time, so new entries go to its end) and the one by time
-- (retention, reports, lists, newest first) stay. The indexes by agent and target, and by unit,
-- are gone: each put an agent's rows at a place of its own, so every batch dirtied pages all over
-- them; lists by agent, target or unit filter a time range of probe_results_at instead. Keep in
-- step with sqlite/0013 (which also makes the table WITHOUT ROWID, a notion PostgreSQL lacks).
DROP INDEX probe_results_agent_target_at;
DROP INDEX probe_results_unit_at;
-- The event's seq and arrival, now that the row is the event (NULL for rows stored before).
ALTER TABLE probe_results ADD COLUMN seq BIGINT;
ALTER TABLE probe_results ADD COLUMN received_at BIGINT;
