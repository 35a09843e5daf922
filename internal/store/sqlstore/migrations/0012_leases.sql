-- Several servers on one database (issue 6): an operation and a VM lock
-- belong to the server process that runs them (owner: node/pid/random) and
-- hold a lease it renews while it lives. Recovery takes over only what a
-- dead owner left: lease run out, or a previous life of the same node.
ALTER TABLE operations ADD COLUMN owner TEXT NOT NULL DEFAULT '';
ALTER TABLE operations ADD COLUMN lease_until TEXT NOT NULL DEFAULT '';
ALTER TABLE vms ADD COLUMN busy_owner TEXT NOT NULL DEFAULT '';
ALTER TABLE vms ADD COLUMN busy_until TEXT NOT NULL DEFAULT '';
