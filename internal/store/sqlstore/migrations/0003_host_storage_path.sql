-- Where the host mounts the backup storage, to recognise disks that still
-- depend on backup files (quick restore before consolidation).
ALTER TABLE hosts ADD COLUMN storage_path TEXT NOT NULL DEFAULT '';
