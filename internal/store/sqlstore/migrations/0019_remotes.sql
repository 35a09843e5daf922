-- Offsite copies (issue 15): remotes (an S3 bucket, its credentials and
-- sealing key, never listed; its lock period and mode; the last lock
-- check), copy policies of offerings, and every backup's copies with the
-- objects they wrote and their lock. A copy is recorded (with its salt)
-- before anything is uploaded.
CREATE TABLE remotes (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    endpoint      TEXT NOT NULL,
    bucket        TEXT NOT NULL,
    region        TEXT NOT NULL DEFAULT '',
    access_key    TEXT NOT NULL,
    secret_key    TEXT NOT NULL,
    seal_key      TEXT NOT NULL,
    lock_days     INTEGER NOT NULL DEFAULT 0,
    lock_mode     TEXT NOT NULL DEFAULT '',
    bandwidth_bps BIGINT NOT NULL DEFAULT 0,
    lock_check    TEXT NOT NULL DEFAULT '',
    checked_at    TEXT NOT NULL DEFAULT '',
    created       TEXT NOT NULL
);

CREATE TABLE copy_policies (
    offering_id TEXT PRIMARY KEY REFERENCES offerings(id),
    remote_id   TEXT NOT NULL REFERENCES remotes(id),
    every       TEXT NOT NULL,
    keep_days   INTEGER NOT NULL DEFAULT 0,
    swept_until TEXT NOT NULL DEFAULT ''
);

CREATE TABLE backup_copies (
    id               TEXT PRIMARY KEY,
    backup_id        TEXT NOT NULL,
    remote_id        TEXT NOT NULL REFERENCES remotes(id),
    state            TEXT NOT NULL,
    salt             TEXT NOT NULL,
    objects          TEXT NOT NULL DEFAULT '[]',
    manifest_key     TEXT NOT NULL DEFAULT '',
    manifest_version TEXT NOT NULL DEFAULT '',
    lock_until       TEXT NOT NULL DEFAULT '',
    keep_until       TEXT NOT NULL DEFAULT '',
    size             BIGINT NOT NULL DEFAULT 0,
    error            TEXT NOT NULL DEFAULT '',
    created          TEXT NOT NULL,
    copied           TEXT NOT NULL DEFAULT ''
);
CREATE INDEX backup_copies_backup ON backup_copies(backup_id, remote_id);
CREATE INDEX backup_copies_remote ON backup_copies(remote_id, created);
