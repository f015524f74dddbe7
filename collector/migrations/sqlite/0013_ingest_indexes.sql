-- Issue 15: probe results are stored once (no longer also as raw events) and written many at a
-- time, so their table is the ingest's hot spot, and it keeps the event's seq and arrival. It becomes a WITHOUT ROWID table keyed by the
-- event id (one B-tree where a rowid table and an index of ids were two; agents' ids are UUIDv7,
-- ordered by time, so new rows go to its end) with one index, by time (retention, reports, lists,
-- newest first). The indexes by agent and target, and by unit, are gone: each put an agent's rows
-- at a place of its own, so every batch dirtied pages all over them; lists by agent, target or
-- unit filter a time range of probe_results_at instead. Keep in step with postgres/0013.
CREATE TABLE probe_results_new (
    id             TEXT    PRIMARY KEY,                  -- the event id from the agent
    agent_id       TEXT    NOT NULL REFERENCES agents (id),
    unit_id        INTEGER NOT NULL REFERENCES units (id),
    target         TEXT    NOT NULL,                     -- name in the agent's config
    target_kind    TEXT    NOT NULL,                     -- lan | wan | internet | server
    check_kind     TEXT    NOT NULL,                     -- icmp | tcp | http | dns
    address        TEXT    NOT NULL,
    at             INTEGER NOT NULL,
    ok             INTEGER NOT NULL,                     -- 1 passed, 0 failed
    rtt_ms         REAL,
    error          TEXT,
    http_status    INTEGER,
    cert_not_after INTEGER,
    seq            INTEGER,                              -- the event's seq (NULL before issue 15)
    received_at    INTEGER                               -- when the collector stored it (idem)
) WITHOUT ROWID;
INSERT INTO probe_results_new (id, agent_id, unit_id, target, target_kind, check_kind, address, at, ok, rtt_ms,
                               error, http_status, cert_not_after)
    SELECT id, agent_id, unit_id, target, target_kind, check_kind, address, at, ok, rtt_ms, error,
           http_status, cert_not_after
    FROM probe_results;
DROP TABLE probe_results;
ALTER TABLE probe_results_new RENAME TO probe_results;
CREATE INDEX probe_results_at ON probe_results (at);
