package api

import "time"

// Dashboard is GET /dashboard: every VM the caller may see with its
// protection, worst first, and (for admins) the backup storages' space.
type Dashboard struct {
	VMs       []DashboardVM      `json:"vms"`
	Storages  []DashboardStorage `json:"storages" doc:"admins only; empty for users"`
	Generated time.Time          `json:"generated"`
}

// DashboardVM is one VM's row of the dashboard.
type DashboardVM struct {
	ID          string          `json:"id"`
	Name        string          `json:"name"`
	Account     string          `json:"account"`
	Host        string          `json:"host"`
	State       string          `json:"state"`
	Offering    string          `json:"offering" doc:"empty when the VM is not assigned"`
	ChainHead   string          `json:"chain_head" doc:"the backup the next incremental builds on; empty when no chain is open"`
	ChainLength int             `json:"chain_length" doc:"backups in the open chain, full one included"`
	Backups     int             `json:"backups" doc:"recorded backups, Removed ones included"`
	LastBackup  *DashboardEvent `json:"last_backup" doc:"the newest backup, whatever its status; null without backups"`
	LastGood    *time.Time      `json:"last_good" doc:"when the newest BackedUp backup was taken"`
	Proven      *DashboardEvent `json:"proven" doc:"the newest proof that a backup restores: a validation found it Valid (the VM booted from it and answered), or a restore of it succeeded (its disks checked against it)"`
	StoredBytes int64           `json:"stored_bytes" doc:"bytes of its backups whose files are kept"`
	NextRun     *time.Time      `json:"next_run" doc:"the next scheduled backup; null without schedules"`
	Severity    int             `json:"severity" doc:"the worst attention item: 3 data at risk, 2 protection in doubt, 1 worth a look, 0 all well"`
	Attention   []Attention     `json:"attention"`
}

// DashboardEvent is a backup and when it happened.
type DashboardEvent struct {
	BackupID string    `json:"backup_id"`
	Status   string    `json:"status,omitempty" doc:"the backup's status (last_backup); Valid for a proof by validation"`
	At       time.Time `json:"at"`
	How      string    `json:"how,omitempty" doc:"what proved it: validation or restore"`
}

// Attention is something that needs a human.
type Attention struct {
	Severity int    `json:"severity"`
	What     string `json:"what"`
}

// DashboardStorage is a backup storage's space.
type DashboardStorage struct {
	Name     string     `json:"name"`
	Capacity int64      `json:"capacity"`
	Free     int64      `json:"free"`
	Used     int64      `json:"used"`
	Measured *time.Time `json:"measured"`
	Low      bool       `json:"low" doc:"less than a tenth of the capacity is free"`
}
