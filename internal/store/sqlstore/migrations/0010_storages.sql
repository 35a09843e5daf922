-- Backup storages (issue 6): directories, typically NFS mounts present at the
-- same path on every host of a zone. Backups name the storage holding them;
-- '' (rows written before this version) means the default storage, which the
-- server creates for <data dir>/storage at start and assigns them to.
CREATE TABLE storages (
    id       TEXT PRIMARY KEY,
    name     TEXT NOT NULL UNIQUE,
    zone_id  TEXT NOT NULL REFERENCES zones(id),
    path     TEXT NOT NULL,
    tag      TEXT NOT NULL DEFAULT '',
    enabled  BOOLEAN NOT NULL DEFAULT TRUE,
    capacity BIGINT NOT NULL DEFAULT 0,
    free     BIGINT NOT NULL DEFAULT 0,
    measured TEXT NOT NULL DEFAULT '',
    created  TEXT NOT NULL
);
CREATE UNIQUE INDEX storages_zone_path ON storages(zone_id, path);

ALTER TABLE backups ADD COLUMN storage_id TEXT NOT NULL DEFAULT '';
CREATE INDEX backups_storage ON backups(storage_id);

ALTER TABLE offerings ADD COLUMN storage_tag TEXT NOT NULL DEFAULT '';

-- A backup being moved between storages (knib storage migrate): recorded
-- before any file is copied; state 'copying' (the catalogue still names the
-- source) or 'switched' (it names the target; the source files go next). The
-- row goes when the move is complete, so a left-over row is an interrupted
-- move that reconciliation finishes or rolls back.
CREATE TABLE storage_moves (
    backup_id    TEXT PRIMARY KEY,
    vm_id        TEXT NOT NULL,
    from_storage TEXT NOT NULL,
    to_storage   TEXT NOT NULL,
    state        TEXT NOT NULL,
    operation_id TEXT NOT NULL DEFAULT '',
    created      TEXT NOT NULL
);
