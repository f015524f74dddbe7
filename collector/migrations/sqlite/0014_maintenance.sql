-- Planned maintenance (issue 17): windows during which problems are recorded and shown but nobody
-- is told (see domain::maintenance). Keep in step with migrations/postgres/0014_maintenance.sql.
-- scope_kind: unit (unit_id, with subtree = 1 every unit under it too) | agent (agent_id) |
-- target (target, on the agents of unit_id and below when set) | system (system_code).
-- recurrence: once | daily | weekly from starts_at; until_at: no occurrence starts at or after it.
-- A cancelled window covers nothing from cancelled_at on; rows are never deleted (audit).
-- remind_to: the planner's email for the reminder before a long occurrence ends (none: the Sở's
-- on-duty contacts); reminded_for: the start of the occurrence last reminded of.
CREATE TABLE maintenance_windows (
    id           TEXT    PRIMARY KEY,
    scope_kind   TEXT    NOT NULL,
    unit_id      INTEGER REFERENCES units (id),
    subtree      INTEGER NOT NULL DEFAULT 1,
    agent_id     TEXT,
    target       TEXT,
    system_code  TEXT,
    starts_at    INTEGER NOT NULL,
    duration_ms  INTEGER NOT NULL,
    recurrence   TEXT    NOT NULL DEFAULT 'once',
    until_at     INTEGER,
    reason       TEXT    NOT NULL,
    planned_by   TEXT    NOT NULL,
    remind_to    TEXT,
    created_at   INTEGER NOT NULL,
    cancelled_at INTEGER,
    cancelled_by TEXT,
    reminded_for INTEGER
);
CREATE INDEX maintenance_windows_live ON maintenance_windows (cancelled_at, until_at);
