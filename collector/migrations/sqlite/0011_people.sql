-- People accounts of the web console and their sessions (issue 14). Keep in step with
-- migrations/postgres/0011_people.sql.

-- A person who logs in to the console. password_hash is an argon2id PHC string; role is admin,
-- officer, viewer or leadership; unit_id is the scope (that unit's subtree; none: the province).
-- failed_logins counts wrong passwords since the last success or lockout; locked_until is when a
-- lockout ends. must_change_password is 1 until the person sets their own password.
CREATE TABLE people (
    id                   INTEGER PRIMARY KEY,
    username             TEXT    NOT NULL UNIQUE,
    full_name            TEXT    NOT NULL,
    password_hash        TEXT    NOT NULL,
    role                 TEXT    NOT NULL,
    unit_id              INTEGER REFERENCES units (id),
    must_change_password INTEGER NOT NULL DEFAULT 1,
    disabled_at          INTEGER,
    failed_logins        INTEGER NOT NULL DEFAULT 0,
    locked_until         INTEGER,
    last_login_at        INTEGER,
    password_changed_at  INTEGER,
    created_at           INTEGER NOT NULL,
    created_by           TEXT    NOT NULL,
    changed_at           INTEGER NOT NULL,
    changed_by           TEXT    NOT NULL
);

-- A console session, kept on the server: the cookie holds a random secret of which only the
-- SHA-256 is stored. csrf_token is the form token every form of the session carries.
-- expires_at is the absolute end; last_seen_at drives the idle timeout; ended_at and end_reason
-- (logout, idle, absolute, password, disabled) record why it stopped.
CREATE TABLE sessions (
    id           INTEGER PRIMARY KEY,
    secret_hash  TEXT    NOT NULL UNIQUE,
    csrf_token   TEXT    NOT NULL,
    person_id    INTEGER NOT NULL REFERENCES people (id),
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    address      TEXT,
    ended_at     INTEGER,
    end_reason   TEXT
);
CREATE INDEX sessions_person ON sessions (person_id);
