-- The steps a backup's last validation ran, each with its outcome
-- (passed, failed or skipped) and detail: a JSON array (issue 11).
ALTER TABLE backups ADD COLUMN validation_steps TEXT NOT NULL DEFAULT '[]';
