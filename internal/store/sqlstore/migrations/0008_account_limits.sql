-- Account resource limits (-1: unlimited) and the size of each VM they count.
ALTER TABLE accounts ADD COLUMN max_vms BIGINT NOT NULL DEFAULT -1;
ALTER TABLE accounts ADD COLUMN max_vcpus BIGINT NOT NULL DEFAULT -1;
ALTER TABLE accounts ADD COLUMN max_memory_bytes BIGINT NOT NULL DEFAULT -1;
ALTER TABLE vms ADD COLUMN vcpus INTEGER NOT NULL DEFAULT 0;
ALTER TABLE vms ADD COLUMN memory_bytes BIGINT NOT NULL DEFAULT 0;
