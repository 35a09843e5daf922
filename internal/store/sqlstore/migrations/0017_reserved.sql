-- Placeholder: version 17 belongs to a sibling branch (issue 14) merged
-- separately. Delete this file when that branch's 0017 migration is merged
-- (two files numbered 0017 make migrationsFor fail, so it can't be missed).
SELECT 1;
