-- Initial schema (PostgreSQL). Keep in step with migrations/sqlite/0001_init.sql: the same tables,
-- columns and meanings; only the DDL dialect differs. Times are Unix milliseconds (UTC); dates are
-- ISO text `YYYY-MM-DD`.

CREATE TABLE units (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code            TEXT   NOT NULL UNIQUE,
    name            TEXT   NOT NULL,
    kind            TEXT   NOT NULL,
    parent_id       BIGINT REFERENCES units (id),
    valid_from      TEXT,
    valid_to        TEXT,
    successor_codes TEXT   NOT NULL DEFAULT '',
    note            TEXT   NOT NULL DEFAULT '',
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX units_parent ON units (parent_id);

CREATE TABLE enroll_tokens (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token_hash   TEXT   NOT NULL UNIQUE,
    unit_id      BIGINT NOT NULL REFERENCES units (id),
    uses_allowed BIGINT NOT NULL,
    uses         BIGINT NOT NULL DEFAULT 0,
    expires_at   BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    created_by   TEXT   NOT NULL,
    revoked_at   BIGINT,
    note         TEXT   NOT NULL DEFAULT ''
);

CREATE TABLE agents (
    id                 TEXT   PRIMARY KEY,
    unit_id            BIGINT NOT NULL REFERENCES units (id),
    hostname           TEXT   NOT NULL,
    agent_version      TEXT   NOT NULL,
    credential_hash    TEXT   NOT NULL UNIQUE,
    enroll_token_id    BIGINT REFERENCES enroll_tokens (id),
    enrolled_at        BIGINT NOT NULL,
    revoked_at         BIGINT,
    last_seen_at       BIGINT,
    last_seq           BIGINT,
    last_address       TEXT,
    heartbeat_interval BIGINT,
    host_snapshot      TEXT
);
CREATE INDEX agents_unit ON agents (unit_id);

CREATE TABLE api_tokens (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token_hash   TEXT   NOT NULL UNIQUE,
    name         TEXT   NOT NULL,
    role         TEXT   NOT NULL,
    unit_id      BIGINT REFERENCES units (id),
    created_at   BIGINT NOT NULL,
    created_by   TEXT   NOT NULL,
    expires_at   BIGINT,
    revoked_at   BIGINT,
    last_used_at BIGINT
);

CREATE TABLE events (
    id          TEXT   PRIMARY KEY,
    agent_id    TEXT   NOT NULL REFERENCES agents (id),
    unit_id     BIGINT NOT NULL REFERENCES units (id),
    seq         BIGINT NOT NULL,
    kind        TEXT   NOT NULL,
    occurred_at BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    status      TEXT   NOT NULL,
    error       TEXT,
    data        TEXT   NOT NULL
);
CREATE INDEX events_agent_seq ON events (agent_id, seq);
CREATE INDEX events_kind_time ON events (kind, occurred_at);

CREATE TABLE audit_log (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          BIGINT NOT NULL,
    actor       TEXT   NOT NULL,
    action      TEXT   NOT NULL,
    target      TEXT   NOT NULL DEFAULT '',
    outcome     TEXT   NOT NULL,
    remote_addr TEXT,
    details     TEXT   NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at ON audit_log (at);

-- The audit log is append-only: the database itself refuses edits and deletions.
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
