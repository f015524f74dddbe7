-- Drafts of periodic reports saved from the web console (issue 14). Keep in step with
-- migrations/sqlite/0012_report_drafts.sql.
--
-- One draft per unit, scheme and period, replaced at each save and removed when a version is
-- submitted. fields is JSON of what the form holds (the officer's name, position, phone, email and
-- the text of each section by key); a draft is never a report: only submitted versions count.
CREATE TABLE report_drafts (
    unit_id    BIGINT NOT NULL REFERENCES units (id),
    scheme     TEXT   NOT NULL,
    period     TEXT   NOT NULL,
    fields     TEXT   NOT NULL,
    saved_by   TEXT   NOT NULL,
    saved_at   BIGINT NOT NULL,
    PRIMARY KEY (unit_id, scheme, period)
);
