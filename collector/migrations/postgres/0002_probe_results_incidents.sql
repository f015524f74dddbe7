-- Probe results and agent incidents (PostgreSQL). Keep in step with
-- migrations/sqlite/0002_probe_results_incidents.sql: the same tables, columns and meanings; only
-- the DDL dialect differs. Times are Unix milliseconds (UTC); flags are 0/1 integers; lists are
-- JSON text.

-- One row per stored `probe_result` event: the check of one target by one agent at one time.
-- The event itself stays in `events`; this is its typed copy for queries by target and time.
CREATE TABLE probe_results (
    id             TEXT    PRIMARY KEY,                  -- the event id from the agent
    agent_id       TEXT    NOT NULL REFERENCES agents (id),
    unit_id        BIGINT  NOT NULL REFERENCES units (id),
    target         TEXT    NOT NULL,                     -- name in the agent's config
    target_kind    TEXT    NOT NULL,                     -- lan | wan | internet | server
    check_kind     TEXT    NOT NULL,                     -- icmp | tcp | http | dns
    address        TEXT    NOT NULL,
    at             BIGINT  NOT NULL,
    ok             BIGINT  NOT NULL,                     -- 1 passed, 0 failed
    rtt_ms         DOUBLE PRECISION,
    error          TEXT,
    http_status    BIGINT,
    cert_not_after BIGINT
);
CREATE INDEX probe_results_agent_target_at ON probe_results (agent_id, target, at);
CREATE INDEX probe_results_unit_at ON probe_results (unit_id, at);

-- One row per incident, the newest picture of it. Agent incidents are keyed by the agent's
-- `incident_id` and rebuilt from their phases whatever order those arrive in: the picture of the
-- highest `last_event_seq` wins, and `state` only ever goes from open to resolved.
-- Later lifecycle (acknowledged, closed, a human number SC-YYYY-NNNN, notes) is meant to be added
-- as nullable columns or side tables beside `state`, which stays the technical open/resolved;
-- incidents the collector infers itself have `source` = 'collector_inferred' and no agent, which is
-- why `agent_id` and the event columns may be null.
CREATE TABLE incidents (
    id               TEXT    PRIMARY KEY,                -- uuid: the agent's incident_id
    agent_id         TEXT    REFERENCES agents (id),     -- who reported it; null for inferred ones
    unit_id          BIGINT  NOT NULL REFERENCES units (id),
    kind             TEXT    NOT NULL,                   -- lan | wan | internet | server | host | security | other
    source           TEXT    NOT NULL,                   -- agent_detected | agent_manual
    severity         TEXT    NOT NULL,                   -- low | medium | high | critical
    state            TEXT    NOT NULL,                   -- open | resolved
    title            TEXT    NOT NULL,
    description      TEXT    NOT NULL DEFAULT '',
    target           TEXT,
    started_at       BIGINT  NOT NULL,
    ended_at         BIGINT,
    discovered_at    BIGINT,
    systems_affected TEXT    NOT NULL DEFAULT '[]',      -- JSON array of strings
    evidence         TEXT    NOT NULL DEFAULT '[]',      -- JSON array of wire `Evidence`
    consequences     TEXT    NOT NULL DEFAULT '[]',      -- JSON array of target names
    first_event_at   BIGINT,                             -- earliest `at` of its events received
    last_event_seq   BIGINT,                             -- seq of the event whose picture is stored
    created_at       BIGINT  NOT NULL,
    updated_at       BIGINT  NOT NULL
);
CREATE INDEX incidents_started ON incidents (started_at);
CREATE INDEX incidents_unit_started ON incidents (unit_id, started_at);
CREATE INDEX incidents_agent ON incidents (agent_id);
