-- Notices to leadership (issue 5): contacts, routing rules, and the notices themselves, written
-- before they are sent. Keep in step with migrations/sqlite/0006_notify.sql.

-- Who may be told, per unit. role: leadership (the agency's leaders), it_officer (its IT officer),
-- so_on_duty and so_leadership (the Sở TT&TT's on-duty officer and leaders, told on escalation).
-- A contact is reached by email, by a webhook named in the config, or both.
CREATE TABLE contacts (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    unit_id    BIGINT  NOT NULL REFERENCES units (id),
    name       TEXT    NOT NULL,
    role       TEXT    NOT NULL,
    position   TEXT    NOT NULL DEFAULT '',
    phone      TEXT    NOT NULL DEFAULT '',
    email      TEXT,
    webhook    TEXT,
    active     BIGINT  NOT NULL DEFAULT 1,
    created_at BIGINT  NOT NULL,
    updated_at BIGINT  NOT NULL,
    UNIQUE (unit_id, name, role)
);

-- Who is told of what, when. An incident matches a rule when its unit is the rule's unit or below
-- it (null: every unit), its kind is listed (or '*'), and its severity is at least min_severity.
-- after_ms = 0 is the opening notice (after the grace period); more is an escalation after that
-- long open. With no rule at all, the built-in defaults apply (see notify::rules).
CREATE TABLE notify_rules (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    unit_id      BIGINT  REFERENCES units (id),
    kinds        TEXT    NOT NULL DEFAULT '*',
    min_severity TEXT    NOT NULL DEFAULT 'low',
    role         TEXT    NOT NULL,
    after_ms     BIGINT  NOT NULL DEFAULT 0,
    created_at   BIGINT  NOT NULL
);

-- Every notice, written first and then sent. (incident, contact, channel, kind, step) is unique,
-- so however many collectors plan, a notice exists once. step: 0, the escalation's delay, or the
-- reminder's number. state: pending -> sent, or failed after the last attempt. A sender claims a
-- notice until claimed_until; a claim that runs out (the sender died) is taken over.
CREATE TABLE notices (
    id              TEXT    PRIMARY KEY,
    incident_id     TEXT    REFERENCES incidents (id),
    contact_id      BIGINT  REFERENCES contacts (id),
    channel         TEXT    NOT NULL,
    address         TEXT    NOT NULL,
    kind            TEXT    NOT NULL,
    step            BIGINT  NOT NULL DEFAULT 0,
    subject         TEXT    NOT NULL,
    body_text       TEXT    NOT NULL,
    body_html       TEXT    NOT NULL,
    state           TEXT    NOT NULL DEFAULT 'pending',
    attempts        BIGINT  NOT NULL DEFAULT 0,
    next_attempt_at BIGINT  NOT NULL,
    claimed_by      TEXT,
    claimed_until   BIGINT,
    last_error      TEXT,
    created_at      BIGINT  NOT NULL,
    sent_at         BIGINT
);
CREATE UNIQUE INDEX notices_once ON notices (incident_id, contact_id, channel, kind, step);
CREATE INDEX notices_due ON notices (state, next_attempt_at);
CREATE INDEX notices_incident ON notices (incident_id);

INSERT INTO job_locks (name) VALUES ('notify');
