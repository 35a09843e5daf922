package agentapi

// Task kinds of disk-only VM snapshots.
const (
	KindSnapshotCreate = "snapshot.create"
	KindSnapshotRevert = "snapshot.revert"
	KindSnapshotDelete = "snapshot.delete"
)

// SnapshotPrefix starts the file name of every VM snapshot overlay:
// knib-snap.<vm uuid>.<disk>.<snapshot id>[-<suffix>].qcow2.
const SnapshotPrefix = "knib-snap."

// SnapshotFile is one disk's frozen file of a snapshot.
type SnapshotFile struct {
	Disk   string `json:"disk"`
	Frozen string `json:"frozen"`
}

// SnapshotCreateRequest puts a new overlay on every disk (one atomic
// disk-only snapshot when the VM runs); the files below are the snapshot.
type SnapshotCreateRequest struct {
	DomainUUID string `json:"domain_uuid"`
	SnapshotID string `json:"snapshot_id"`
}

// SnapshotCreateResult lists the frozen files.
type SnapshotCreateResult struct {
	Files []SnapshotFile `json:"files"`
}

// SnapshotRevertRequest points every disk of a stopped VM at a new overlay on
// the snapshot's frozen file, and removes the VM's knib files that neither
// the new chains nor Keep (other snapshots' frozen files) use any more.
type SnapshotRevertRequest struct {
	DomainUUID string         `json:"domain_uuid"`
	SnapshotID string         `json:"snapshot_id"`
	Suffix     string         `json:"suffix"` // makes the new overlays' names unique
	Files      []SnapshotFile `json:"files"`
	Keep       []string       `json:"keep"`
}

// SnapshotDeleteRequest removes a snapshot's layer boundary where nothing
// else needs it: when its frozen file has one child, the child is merged into
// it; with more children (branches) the removal is only logical.
type SnapshotDeleteRequest struct {
	DomainUUID string         `json:"domain_uuid"`
	Files      []SnapshotFile `json:"files"`
	// Others are the frozen files of the VM's other snapshots.
	Others []string `json:"others"`
	// Keep are files that must not be merged away (the chain head's deltas).
	Keep []string `json:"keep"`
}

// SnapshotDeleteResult says what happened.
type SnapshotDeleteResult struct {
	// Merged: the snapshot's files were merged and it can leave the catalogue.
	Merged bool `json:"merged"`
	// Repoint maps merged-away files to the files that now hold their state
	// (snapshots frozen on them follow).
	Repoint map[string]string `json:"repoint"`
	// EndChain: a backup delta was merged, so the backup chain ends.
	EndChain bool `json:"end_chain"`
}
