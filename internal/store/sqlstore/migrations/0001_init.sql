-- knib catalogue, version 1. Times are TEXT in fixed-width RFC 3339 UTC
-- (see timeFormat), so they sort and compare the same on every engine.
CREATE TABLE accounts (
    id      TEXT PRIMARY KEY,
    name    TEXT NOT NULL UNIQUE,
    created TEXT NOT NULL
);

CREATE TABLE tokens (
    id         TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    role       TEXT NOT NULL,
    name       TEXT NOT NULL,
    hash       TEXT NOT NULL UNIQUE,
    created    TEXT NOT NULL
);

CREATE TABLE zones (
    id   TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);

CREATE TABLE hosts (
    id                 TEXT PRIMARY KEY,
    name               TEXT NOT NULL UNIQUE,
    zone_id            TEXT NOT NULL REFERENCES zones(id),
    uri                TEXT NOT NULL,
    libvirt_version    TEXT NOT NULL DEFAULT '',
    hypervisor_version TEXT NOT NULL DEFAULT '',
    cpus               INTEGER NOT NULL DEFAULT 0,
    memory_bytes       BIGINT NOT NULL DEFAULT 0,
    storage_capacity   BIGINT NOT NULL DEFAULT 0,
    storage_free       BIGINT NOT NULL DEFAULT 0,
    enabled            BOOLEAN NOT NULL DEFAULT TRUE,
    local              BOOLEAN NOT NULL DEFAULT FALSE,
    agent_settings     TEXT NOT NULL DEFAULT '{}',
    last_seen          TEXT NOT NULL
);

CREATE TABLE offerings (
    id                  TEXT PRIMARY KEY,
    name                TEXT NOT NULL,
    description         TEXT NOT NULL DEFAULT '',
    compress            BOOLEAN NOT NULL,
    validate            BOOLEAN NOT NULL,
    validation_steps    TEXT NOT NULL DEFAULT '',
    allow_quick_restore BOOLEAN NOT NULL,
    allow_extract_file  BOOLEAN NOT NULL,
    backup_chain_size   INTEGER,
    compression_library TEXT NOT NULL,
    created             TEXT NOT NULL,
    removed             TEXT
);
-- names are unique among offerings not removed
CREATE UNIQUE INDEX offerings_live_name ON offerings(name) WHERE removed IS NULL;

CREATE TABLE vms (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    host_id     TEXT NOT NULL REFERENCES hosts(id),
    state       TEXT NOT NULL,
    work_state  TEXT NOT NULL DEFAULT '',
    account_id  TEXT NOT NULL REFERENCES accounts(id),
    offering_id TEXT REFERENCES offerings(id),
    disks       TEXT NOT NULL DEFAULT '[]',
    seen        TEXT NOT NULL
);
CREATE INDEX vms_name ON vms(name);

CREATE TABLE settings (
    scope    TEXT NOT NULL,
    scope_id TEXT NOT NULL,
    key      TEXT NOT NULL,
    value    TEXT NOT NULL,
    PRIMARY KEY (scope, scope_id, key)
);

CREATE TABLE vm_details (
    vm_id TEXT NOT NULL REFERENCES vms(id),
    key   TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (vm_id, key)
);

CREATE TABLE operations (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    vm_id      TEXT NOT NULL DEFAULT '',
    account_id TEXT NOT NULL DEFAULT '',
    state      TEXT NOT NULL,
    progress   DOUBLE PRECISION NOT NULL DEFAULT 0,
    message    TEXT NOT NULL DEFAULT '',
    result     TEXT NOT NULL DEFAULT '',
    error      TEXT NOT NULL DEFAULT '',
    created    TEXT NOT NULL,
    updated    TEXT NOT NULL
);
CREATE INDEX operations_state ON operations(state);
