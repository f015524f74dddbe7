-- Incident lifecycle (issue 4): human numbers, acknowledgement, closing fields, a timeline, and
-- incidents the collector infers itself (agent unreachable). Keep in step with the other backend.
-- state now runs open -> acknowledged -> resolved -> closed; an agent's resolved phase moves only
-- open or acknowledged incidents, so a person's closing is never undone.

ALTER TABLE incidents ADD COLUMN number TEXT;                  -- SC-2026-0042, unique when set
ALTER TABLE incidents ADD COLUMN acknowledged_at INTEGER;
ALTER TABLE incidents ADD COLUMN acknowledged_by TEXT;
ALTER TABLE incidents ADD COLUMN closed_at INTEGER;
ALTER TABLE incidents ADD COLUMN closed_by TEXT;
ALTER TABLE incidents ADD COLUMN cause TEXT NOT NULL DEFAULT '';       -- closing report: what happened
ALTER TABLE incidents ADD COLUMN resolution TEXT NOT NULL DEFAULT '';  -- how it was resolved
ALTER TABLE incidents ADD COLUMN lessons TEXT NOT NULL DEFAULT '';     -- lessons learned
CREATE UNIQUE INDEX incidents_number ON incidents (number);

-- At most one open "agent unreachable" incident per agent, whatever number of collectors race.
CREATE UNIQUE INDEX incidents_one_open_unreachable ON incidents (agent_id)
    WHERE kind = 'agent_unreachable' AND state IN ('open', 'acknowledged');

-- Per-year counters of human numbers; incremented atomically with an upsert.
CREATE TABLE incident_counters (
    year INTEGER PRIMARY KEY,
    last INTEGER NOT NULL
);

-- What happened to an incident, in order: agent phases, inferences, people's actions and notes.
CREATE TABLE incident_timeline (
    id          INTEGER PRIMARY KEY,
    incident_id TEXT NOT NULL REFERENCES incidents (id),
    at          INTEGER NOT NULL,
    actor       TEXT NOT NULL,     -- agent:<uuid>, collector, api-token:<id>
    entry       TEXT NOT NULL,     -- opened | updated | resolved | inferred | acknowledged | note | closed
    text        TEXT NOT NULL DEFAULT ''
);
CREATE INDEX incident_timeline_incident ON incident_timeline (incident_id, at);
