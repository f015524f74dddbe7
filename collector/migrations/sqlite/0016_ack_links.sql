-- Acknowledge from the notice (issue 17): the key that signs the links in notices (random, made
-- on first use, never shown) and the links already used, each usable once (domain::ack_link).
-- Keep in step with migrations/postgres/0016_ack_links.sql.
CREATE TABLE link_keys (
    purpose    TEXT    PRIMARY KEY,
    key        TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE ack_link_uses (
    notice_id TEXT    PRIMARY KEY REFERENCES notices (id),
    used_at   INTEGER NOT NULL,
    used_by   TEXT    NOT NULL
);
