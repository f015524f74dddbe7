-- Retention (issue 5): hourly roll-ups of probe results, and an audit log that may lose only what
-- is older than the legal floor. Keep in step with migrations/sqlite/0005_retention.sql.

-- One row per agent, target and UTC hour: what remains of `probe_results` once they pass the raw
-- retention (`retention.raw`). The retention job adds each batch of rows it deletes, in the same
-- transaction, so a row is counted exactly once. Round-trip times: rtt_count measured checks,
-- rtt_sum_ms their sum (0 when none), rtt_min_ms and rtt_max_ms null when none.
CREATE TABLE probe_rollups (
    agent_id    TEXT             NOT NULL REFERENCES agents (id),
    target      TEXT             NOT NULL,
    hour_start  BIGINT           NOT NULL,            -- Unix ms of the hour's start (UTC)
    unit_id     BIGINT           NOT NULL REFERENCES units (id),
    target_kind TEXT             NOT NULL,
    check_kind  TEXT             NOT NULL,
    checks      BIGINT           NOT NULL,
    failures    BIGINT           NOT NULL,
    rtt_count   BIGINT           NOT NULL,
    rtt_sum_ms  DOUBLE PRECISION NOT NULL DEFAULT 0,
    rtt_min_ms  DOUBLE PRECISION,
    rtt_max_ms  DOUBLE PRECISION,
    PRIMARY KEY (agent_id, target, hour_start)
);
CREATE INDEX probe_rollups_unit_hour ON probe_rollups (unit_id, hour_start);

-- The retention job takes the oldest probe results first.
CREATE INDEX probe_results_at ON probe_results (at);

-- The audit log stays append-only, except that entries older than 365 days (the legal floor) may
-- be deleted. The floor is in the database, so no configuration mistake can shorten it.
-- TRUNCATE skips row triggers, so it is refused outright.
DROP TRIGGER audit_log_no_change ON audit_log;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
CREATE FUNCTION audit_log_delete_floor() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.at > (EXTRACT(EPOCH FROM now()) * 1000)::BIGINT - 365::BIGINT * 86400000 THEN
        RAISE EXCEPTION 'audit_log is append-only: entries younger than 365 days cannot be deleted';
    END IF;
    RETURN OLD;
END;
$$;
CREATE TRIGGER audit_log_delete_floor BEFORE DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_delete_floor();
