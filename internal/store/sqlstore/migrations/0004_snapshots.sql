-- Disk-only VM snapshots: external qcow2 overlays, like backup deltas.
CREATE TABLE snapshots (
    id      TEXT PRIMARY KEY,
    vm_id   TEXT NOT NULL,
    name    TEXT NOT NULL,
    status  TEXT NOT NULL,
    files   TEXT NOT NULL DEFAULT '[]',
    created TEXT NOT NULL
);
CREATE INDEX snapshots_vm ON snapshots(vm_id, created);
