-- Periodic reports and IT officers (issue 6). Keep in step with migrations/postgres/0008_reports.sql.

-- IT officers (cán bộ chuyên trách CNTT) per unit: QĐ 02/2017 Điều 4 (qualifications) and 14.1
-- (the assignment decision is sent to the Sở). degree_level: none, intermediate, college,
-- university, master, doctorate; it_degree: 1 when the degree is in IT (CNTT or Tin học);
-- english_level: as written (A, B, C, A1 ... C2, or empty). Dates are YYYY-MM-DD.
CREATE TABLE officers (
    id              INTEGER PRIMARY KEY,
    unit_id         INTEGER NOT NULL REFERENCES units (id),
    full_name       TEXT    NOT NULL,
    position        TEXT    NOT NULL DEFAULT '',
    phone           TEXT    NOT NULL DEFAULT '',
    email           TEXT    NOT NULL DEFAULT '',
    degree_level    TEXT    NOT NULL,
    degree_field    TEXT    NOT NULL DEFAULT '',
    it_degree       INTEGER NOT NULL,
    english_level   TEXT    NOT NULL DEFAULT '',
    certificates    TEXT    NOT NULL DEFAULT '',
    decision_number TEXT    NOT NULL DEFAULT '',
    decision_date   TEXT,
    active_from     TEXT,
    active_to       TEXT,
    note            TEXT    NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    UNIQUE (unit_id, full_name)
);

-- A due date set by hand for one period of one scheme, with the reason.
CREATE TABLE period_overrides (
    scheme     TEXT    NOT NULL,
    period     TEXT    NOT NULL,
    due_date   TEXT    NOT NULL,
    reason     TEXT    NOT NULL,
    created_by TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (scheme, period)
);

-- Every version of every periodic report; versions are numbered by arrival when read.
-- submitted_at is when the officer submitted, by the agent's clock corrected with clock_offset_ms
-- (collector time minus agent time, measured on the batch that carried it), never after
-- received_at. document is the Markdown as submitted; sections and figures are JSON of it.
CREATE TABLE periodic_reports (
    id                 TEXT    PRIMARY KEY,
    unit_id            INTEGER NOT NULL REFERENCES units (id),
    scheme             TEXT    NOT NULL,
    period             TEXT    NOT NULL,
    agent_id           TEXT    REFERENCES agents (id),
    submitted_by       TEXT    NOT NULL,
    submitted_at       INTEGER NOT NULL,
    submitted_at_agent INTEGER,
    clock_offset_ms    INTEGER NOT NULL DEFAULT 0,
    received_at        INTEGER NOT NULL,
    document           TEXT    NOT NULL,
    sections           TEXT    NOT NULL,
    figures            TEXT    NOT NULL
);
CREATE INDEX periodic_reports_period ON periodic_reports (scheme, period, unit_id);

-- The agent's clock offset measured on its last batch (collector time minus agent time, ms).
ALTER TABLE agents ADD COLUMN clock_offset_ms INTEGER;

-- Notices not tied to one incident and contact (report reminders) are written once per key.
ALTER TABLE notices ADD COLUMN dedup_key TEXT;
CREATE UNIQUE INDEX notices_dedup ON notices (dedup_key);
