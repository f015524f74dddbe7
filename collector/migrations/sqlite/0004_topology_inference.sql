-- Topology-aware outage inference (issue 4). Keep in step with the other backend.

-- Which unit a unit's WAN connection runs through; null means its parent (the default topology).
ALTER TABLE units ADD COLUMN uplink_id INTEGER REFERENCES units (id);

-- Incidents folded under another: the per-agent "unreachable" incidents under the unit's inferred
-- incident, unit incidents under their uplink's, and agents' WAN/LAN evidence under the inferred
-- incident it explains. Only incidents without a parent are announced to people.
ALTER TABLE incidents ADD COLUMN parent_id TEXT REFERENCES incidents (id);
-- What an incident the collector inferred stands for: agent (one silent agent), unit (every agent
-- of a unit silent) or uplink (several units behind one uplink silent). Null for agents' incidents.
ALTER TABLE incidents ADD COLUMN scope TEXT;
CREATE INDEX incidents_parent ON incidents (parent_id);
-- One open inferred incident per unit and scope, whatever number of collectors race.
CREATE UNIQUE INDEX incidents_one_open_scope ON incidents (unit_id, scope)
    WHERE scope IN ('unit', 'uplink') AND state IN ('open', 'acknowledged');
UPDATE incidents SET scope = 'agent' WHERE kind = 'agent_unreachable';

-- One row per background job. A job's transaction first updates its row: the row lock makes
-- collectors sharing a database take turns, and a killed collector's lock goes with its connection.
CREATE TABLE job_locks (
    name   TEXT    PRIMARY KEY,
    holder TEXT    NOT NULL DEFAULT '',
    at     INTEGER NOT NULL DEFAULT 0
);
INSERT INTO job_locks (name) VALUES ('incidents'), ('retention');
