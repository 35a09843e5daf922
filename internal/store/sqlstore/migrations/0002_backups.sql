-- Backups, their files, and the chain state of each VM.
ALTER TABLE vms ADD COLUMN busy TEXT NOT NULL DEFAULT '';
ALTER TABLE vms ADD COLUMN chain_head TEXT NOT NULL DEFAULT '';
ALTER TABLE vms ADD COLUMN last_error TEXT NOT NULL DEFAULT '';

CREATE TABLE backups (
    id           TEXT PRIMARY KEY,
    vm_id        TEXT NOT NULL,
    vm_name      TEXT NOT NULL,
    account_id   TEXT NOT NULL,
    offering_id  TEXT NOT NULL DEFAULT '',
    host_id      TEXT NOT NULL DEFAULT '',
    type         TEXT NOT NULL,
    isolated     BOOLEAN NOT NULL DEFAULT FALSE,
    parent_id    TEXT NOT NULL DEFAULT '',
    position     INTEGER NOT NULL DEFAULT 1,
    end_of_chain BOOLEAN NOT NULL DEFAULT FALSE,
    status       TEXT NOT NULL,
    size         BIGINT NOT NULL DEFAULT 0,
    virtual_size BIGINT NOT NULL DEFAULT 0,
    dir          TEXT NOT NULL,
    plan         TEXT NOT NULL DEFAULT '{}',
    error        TEXT NOT NULL DEFAULT '',
    created      TEXT NOT NULL,
    updated      TEXT NOT NULL
);
CREATE INDEX backups_vm ON backups(vm_id, created);

CREATE TABLE backup_files (
    backup_id    TEXT NOT NULL REFERENCES backups(id) ON DELETE CASCADE,
    disk         TEXT NOT NULL,
    path         TEXT NOT NULL,
    full_copy    BOOLEAN NOT NULL,
    size         BIGINT NOT NULL DEFAULT 0,
    virtual_size BIGINT NOT NULL DEFAULT 0,
    hash         TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (backup_id, disk)
);

-- The deltas the chain head keeps on primary storage: at most one per disk.
CREATE TABLE vm_deltas (
    vm_id     TEXT NOT NULL,
    disk      TEXT NOT NULL,
    backup_id TEXT NOT NULL,
    delta     TEXT NOT NULL,
    base      TEXT NOT NULL,
    PRIMARY KEY (vm_id, disk)
);
