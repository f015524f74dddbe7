-- Retention (issue 5): hourly roll-ups of probe results, and an audit log that may lose only what
-- is older than the legal floor. Keep in step with migrations/postgres/0005_retention.sql.

-- One row per agent, target and UTC hour: what remains of `probe_results` once they pass the raw
-- retention (`retention.raw`). The retention job adds each batch of rows it deletes, in the same
-- transaction, so a row is counted exactly once. Round-trip times: rtt_count measured checks,
-- rtt_sum_ms their sum (0 when none), rtt_min_ms and rtt_max_ms null when none.
CREATE TABLE probe_rollups (
    agent_id    TEXT    NOT NULL REFERENCES agents (id),
    target      TEXT    NOT NULL,
    hour_start  INTEGER NOT NULL,                     -- Unix ms of the hour's start (UTC)
    unit_id     INTEGER NOT NULL REFERENCES units (id),
    target_kind TEXT    NOT NULL,
    check_kind  TEXT    NOT NULL,
    checks      INTEGER NOT NULL,
    failures    INTEGER NOT NULL,
    rtt_count   INTEGER NOT NULL,
    rtt_sum_ms  REAL    NOT NULL DEFAULT 0,
    rtt_min_ms  REAL,
    rtt_max_ms  REAL,
    PRIMARY KEY (agent_id, target, hour_start)
);
CREATE INDEX probe_rollups_unit_hour ON probe_rollups (unit_id, hour_start);

-- The retention job takes the oldest probe results first.
CREATE INDEX probe_results_at ON probe_results (at);

-- The audit log stays append-only, except that entries older than 365 days (the legal floor) may
-- be deleted. The floor is in the database, so no configuration mistake can shorten it.
DROP TRIGGER audit_log_no_delete;
CREATE TRIGGER audit_log_delete_floor BEFORE DELETE ON audit_log
WHEN OLD.at > (CAST(strftime('%s', 'now') AS INTEGER) - 365 * 86400) * 1000
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only: entries younger than 365 days cannot be deleted');
END;
