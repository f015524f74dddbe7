-- Incident reports as documents (issue 12). Keep in step with migrations/postgres/0009_incident_documents.sql.

-- Each unit's information systems (Nghị định 85/2016 security levels 1-5), imported from CSV;
-- agents' targets and manual incidents name one by code.
CREATE TABLE info_systems (
    code                TEXT    PRIMARY KEY,
    unit_id             INTEGER NOT NULL REFERENCES units (id),
    name                TEXT    NOT NULL,
    security_level      INTEGER NOT NULL,
    purpose             TEXT    NOT NULL DEFAULT '',
    operator            TEXT    NOT NULL DEFAULT '',
    governing_body      TEXT    NOT NULL DEFAULT '',
    connection_provider TEXT    NOT NULL DEFAULT '',
    security_provider   TEXT    NOT NULL DEFAULT '',
    os                  TEXT    NOT NULL DEFAULT '',
    services            TEXT    NOT NULL DEFAULT '',
    public_addresses    TEXT    NOT NULL DEFAULT '',
    domains             TEXT    NOT NULL DEFAULT '',
    updated_at          INTEGER NOT NULL
);

-- How a unit reports: name as a reporting body, letterhead, address, phone, e-mail, number symbol.
CREATE TABLE unit_profiles (
    unit_id        INTEGER PRIMARY KEY REFERENCES units (id),
    reporting_name TEXT    NOT NULL DEFAULT '',
    governing_body TEXT    NOT NULL DEFAULT '',
    address        TEXT    NOT NULL DEFAULT '',
    phone          TEXT    NOT NULL DEFAULT '',
    email          TEXT    NOT NULL DEFAULT '',
    symbol         TEXT    NOT NULL DEFAULT '',
    updated_at     INTEGER NOT NULL
);

-- The affected system (info_systems.code) and how the incident was discovered for manual ones
-- (monitoring, logs, third_party, officer); interrupted = 1 when a person stated when service
-- came back (a security incident then gets a duration too).
ALTER TABLE incidents ADD COLUMN system_code TEXT;
ALTER TABLE incidents ADD COLUMN discovery TEXT;
ALTER TABLE incidents ADD COLUMN interrupted INTEGER;

-- Document numbers of incident reports, per issuing unit and year.
CREATE TABLE incident_report_numbers (
    unit_id INTEGER NOT NULL,
    year    INTEGER NOT NULL,
    last    INTEGER NOT NULL,
    PRIMARY KEY (unit_id, year)
);

-- Every issued version of an incident's initial (form 'initial') and closing ('closing') report.
-- facts is the JSON snapshot the document is rendered from, frozen when issued; a correction is
-- a new version with the same number. No foreign key: retention may delete an old incident.
CREATE TABLE incident_reports (
    incident_id TEXT    NOT NULL,
    form        TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    number      TEXT    NOT NULL,
    issued_at   INTEGER NOT NULL,
    issued_by   TEXT    NOT NULL,
    reason      TEXT    NOT NULL DEFAULT '',
    facts       TEXT    NOT NULL,
    PRIMARY KEY (incident_id, form, version)
);
