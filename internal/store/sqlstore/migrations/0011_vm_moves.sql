-- Restores onto another host: the intent, recorded before any host is
-- touched, until the VM runs on its new host and its old definition is gone.
CREATE TABLE vm_moves (
    vm_id     TEXT PRIMARY KEY,
    from_host TEXT NOT NULL,
    to_host   TEXT NOT NULL,
    backup_id TEXT NOT NULL,
    quick     BOOLEAN NOT NULL DEFAULT FALSE,
    created   TEXT NOT NULL
);
