-- Backup schedules; backups remember the schedule that took them (retention).
CREATE TABLE schedules (
    id          TEXT PRIMARY KEY,
    vm_id       TEXT NOT NULL,
    interval    TEXT NOT NULL,
    at          TEXT NOT NULL,
    timezone    TEXT NOT NULL DEFAULT '',
    max_backups INTEGER NOT NULL DEFAULT 0,
    isolated    BOOLEAN NOT NULL DEFAULT FALSE,
    next_run    TEXT NOT NULL,
    created     TEXT NOT NULL
);
ALTER TABLE backups ADD COLUMN schedule_id TEXT NOT NULL DEFAULT '';
