-- Initial schema (SQLite). Keep in step with migrations/postgres/0001_init.sql: the same tables,
-- columns and meanings; only the DDL dialect differs. Times are Unix milliseconds (UTC); dates are
-- ISO text `YYYY-MM-DD`.

CREATE TABLE units (
    id              INTEGER PRIMARY KEY,
    code            TEXT    NOT NULL UNIQUE,
    name            TEXT    NOT NULL,
    kind            TEXT    NOT NULL,
    parent_id       INTEGER REFERENCES units (id),
    valid_from      TEXT,
    valid_to        TEXT,
    successor_codes TEXT    NOT NULL DEFAULT '',
    note            TEXT    NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX units_parent ON units (parent_id);

CREATE TABLE enroll_tokens (
    id           INTEGER PRIMARY KEY,
    token_hash   TEXT    NOT NULL UNIQUE,
    unit_id      INTEGER NOT NULL REFERENCES units (id),
    uses_allowed INTEGER NOT NULL,
    uses         INTEGER NOT NULL DEFAULT 0,
    expires_at   INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    created_by   TEXT    NOT NULL,
    revoked_at   INTEGER,
    note         TEXT    NOT NULL DEFAULT ''
);

CREATE TABLE agents (
    id                 TEXT    PRIMARY KEY,
    unit_id            INTEGER NOT NULL REFERENCES units (id),
    hostname           TEXT    NOT NULL,
    agent_version      TEXT    NOT NULL,
    credential_hash    TEXT    NOT NULL UNIQUE,
    enroll_token_id    INTEGER REFERENCES enroll_tokens (id),
    enrolled_at        INTEGER NOT NULL,
    revoked_at         INTEGER,
    last_seen_at       INTEGER,
    last_seq           INTEGER,
    last_address       TEXT,
    heartbeat_interval INTEGER,
    host_snapshot      TEXT
);
CREATE INDEX agents_unit ON agents (unit_id);

CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY,
    token_hash   TEXT    NOT NULL UNIQUE,
    name         TEXT    NOT NULL,
    role         TEXT    NOT NULL,
    unit_id      INTEGER REFERENCES units (id),
    created_at   INTEGER NOT NULL,
    created_by   TEXT    NOT NULL,
    expires_at   INTEGER,
    revoked_at   INTEGER,
    last_used_at INTEGER
);

CREATE TABLE events (
    id          TEXT    PRIMARY KEY,
    agent_id    TEXT    NOT NULL REFERENCES agents (id),
    unit_id     INTEGER NOT NULL REFERENCES units (id),
    seq         INTEGER NOT NULL,
    kind        TEXT    NOT NULL,
    occurred_at INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    status      TEXT    NOT NULL,
    error       TEXT,
    data        TEXT    NOT NULL
);
CREATE INDEX events_agent_seq ON events (agent_id, seq);
CREATE INDEX events_kind_time ON events (kind, occurred_at);

CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    actor       TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    target      TEXT    NOT NULL DEFAULT '',
    outcome     TEXT    NOT NULL,
    remote_addr TEXT,
    details     TEXT    NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at ON audit_log (at);

-- The audit log is append-only: the database itself refuses edits and deletions.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
