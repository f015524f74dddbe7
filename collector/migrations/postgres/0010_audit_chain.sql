-- Tamper evidence for the audit log (issue 13). Keep in step with migrations/sqlite/0010_audit_chain.sql.

-- Every entry written from now on carries its hash: SHA-256 (lowercase hex) of the previous
-- entry's hash and this entry's fields; the exact definition is in collector/src/store/audit.rs.
-- Entries written before this migration have none, yet are covered: the first hashed entry links
-- to the hash computed over them.
ALTER TABLE audit_log ADD COLUMN hash TEXT;

-- One row: where the chain starts and where it ends.
--   base_id, base_hash: the newest entry retention has deleted and its hash (0 and 64 zeros while
--     none has been); the oldest remaining entry links to base_hash. Retention moves them in the
--     transaction that deletes.
--   chained_from: the first entry written with a hash (NULL until one is); every entry from it on
--     must have one.
--   head_id, head_hash: the newest entry and its hash (0 and NULL until the first hashed entry).
--     A writer updates this row before anything else, so writers append one at a time.
CREATE TABLE audit_chain (
    id           BIGINT  PRIMARY KEY CHECK (id = 1),
    base_id      BIGINT  NOT NULL DEFAULT 0,
    base_hash    TEXT    NOT NULL DEFAULT '0000000000000000000000000000000000000000000000000000000000000000',
    chained_from BIGINT,
    head_id      BIGINT  NOT NULL DEFAULT 0,
    head_hash    TEXT
);
INSERT INTO audit_chain (id) VALUES (1);
