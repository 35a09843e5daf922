-- Compression and validation status of backups.
ALTER TABLE backups ADD COLUMN compression_status TEXT NOT NULL DEFAULT 'Uncompressed';
ALTER TABLE backups ADD COLUMN uncompressed_size BIGINT NOT NULL DEFAULT 0;
ALTER TABLE backups ADD COLUMN validation_status TEXT NOT NULL DEFAULT 'NotValidated';
ALTER TABLE backups ADD COLUMN validation_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE backups ADD COLUMN has_screenshot BOOLEAN NOT NULL DEFAULT FALSE;
