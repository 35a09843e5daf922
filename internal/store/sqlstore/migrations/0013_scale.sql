-- Indexes for a catalogue of 10,000 VMs and a million backups (issue 16):
-- every list query reads its page in the order of an index, and ends after
-- the page (keyset paging on the order's columns, then the id).
DROP INDEX backups_vm;
CREATE INDEX backups_vm ON backups(vm_id, created, id);
CREATE INDEX backups_account ON backups(account_id, created, id);
CREATE INDEX backups_status ON backups(status, created, id);
CREATE INDEX backups_created ON backups(created, id);

DROP INDEX vms_name;
CREATE INDEX vms_name ON vms(name, id);
CREATE INDEX vms_account ON vms(account_id, name, id);
CREATE INDEX vms_host ON vms(host_id, name, id);

DROP INDEX jobs_state;
CREATE INDEX jobs_state ON jobs(state, scheduled, id);
CREATE INDEX jobs_open ON jobs(scheduled, id) WHERE state IN ('Queued', 'Running');
CREATE INDEX jobs_scheduled ON jobs(scheduled, id);
CREATE INDEX jobs_backup ON jobs(backup_id, scheduled, id);

DROP INDEX operations_state;
CREATE INDEX operations_open ON operations(created, id) WHERE state IN ('Pending', 'Running');
CREATE INDEX operations_created ON operations(created, id);

CREATE INDEX schedules_due ON schedules(next_run, id);
CREATE INDEX schedules_vm ON schedules(vm_id, created, id);

-- A storage's used bytes sum its live backups from the index alone.
DROP INDEX backups_storage;
CREATE INDEX backups_storage ON backups(storage_id, status, size);

-- The lease loop reads the busy VMs, few of 10,000; removing an offering
-- names the VMs that still use it.
CREATE INDEX vms_busy ON vms(busy_owner, id) WHERE busy <> '';
CREATE INDEX vms_offering ON vms(offering_id);
