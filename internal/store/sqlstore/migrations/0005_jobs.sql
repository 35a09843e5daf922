-- The background service-job queue (compression, validation). A running
-- job is claimed by one server process with a lease (lease_owner until
-- lease_until); the claim is one conditional UPDATE, correct on SQLite and
-- on PostgreSQL alike.
CREATE TABLE jobs (
    id          TEXT PRIMARY KEY,
    type        TEXT NOT NULL,
    backup_id   TEXT NOT NULL,
    vm_id       TEXT NOT NULL,
    host_id     TEXT NOT NULL DEFAULT '',
    zone_id     TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    scheduled   TEXT NOT NULL,
    started     TEXT NOT NULL DEFAULT '',
    ended       TEXT NOT NULL DEFAULT '',
    state       TEXT NOT NULL,
    last_error  TEXT NOT NULL DEFAULT '',
    lease_owner TEXT NOT NULL DEFAULT '',
    lease_until TEXT NOT NULL DEFAULT ''
);
CREATE INDEX jobs_state ON jobs(state, scheduled);
