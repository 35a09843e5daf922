-- The dashboard (issue 12) aggregates every VM's backups in one pass: this
-- index holds every column the aggregate reads, so the pass reads the
-- index alone, in VM order, not the backups' rows.
CREATE INDEX backups_summary ON backups(vm_id, status, validation_status, created, size);
