package sqlstore

import (
	"time"

	"github.com/knib/knib/internal/store"
)

// hotQuery is a statement on a hot path of the control plane: a list page
// or a lookup that the API, the scheduler or the reconcile pass runs all
// the time. Each must be served by an index (the query-plan test checks
// every one on both engines); an ordered one must also read its rows in the
// index's order, with no sort of the whole match.
type hotQuery struct {
	name    string
	sql     string
	args    []any
	ordered bool
}

// hotQueries lists the hot statements, built as the store builds them.
func hotQueries(engine string) []hotQuery {
	after := &store.Cursor{Time: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), Name: "vm-42", ID: "00000000-0000-0000-0000-000000000042"}
	page := store.Page{Limit: 101}
	next := store.Page{Limit: 101, After: after}
	var out []hotQuery
	list := func(name, sql string, args []any) {
		out = append(out, hotQuery{name: name, sql: sql, args: args, ordered: true})
	}
	lookup := func(name, sql string, args ...any) {
		out = append(out, hotQuery{name: name, sql: sql, args: args})
	}
	for name, f := range map[string]store.BackupFilter{
		"backups of a VM":              {VMID: "vm", Page: page},
		"backups of a VM, next page":   {VMID: "vm", Page: next},
		"backups of a VM, whole chain": {VMID: "vm"},
		"backups of an account":        {AccountID: "acc", Page: page},
		"backups of an account, next":  {AccountID: "acc", Page: next},
		"backups, all":                 {Page: page},
		"backups, all, next page":      {Page: next},
		"backups in a state":           {Status: "BackingUp"},
	} {
		sql, args := backupsQuery(f)
		list(name, sql, args)
	}
	for name, f := range map[string]store.VMFilter{
		"VMs":                     {Page: page},
		"VMs, next page":          {Page: next},
		"VMs of an account":       {AccountID: "acc", Page: page},
		"VMs of an account, next": {AccountID: "acc", Page: next},
		"VMs of a host":           {HostID: "host", Page: page},
	} {
		sql, args := vmsQuery(f, engine)
		list(name, sql, args)
	}
	now := after.Time
	for name, f := range map[string]store.JobFilter{
		"jobs unfinished":            {Page: page},
		"jobs unfinished, next page": {Page: next},
		"jobs all":                   {All: true, Page: page},
		"jobs running":               {Executing: true},
		"jobs due (scheduler)":       {Due: true, Now: now, Page: store.Page{Limit: 500}},
		"jobs due, next page":        {Due: true, Now: now, Page: store.Page{Limit: 500, After: after}},
		"jobs queued for later":      {Scheduled: true, Now: now, Page: page},
		"jobs of a backup":           {BackupID: "b", All: true},
	} {
		sql, args := jobsQuery(f, engine)
		list(name, sql, args)
	}
	for name, f := range map[string]store.OperationFilter{
		"operations unfinished": {Page: page},
		"operations all":        {All: true, Page: page},
		"operations all, next":  {All: true, Page: next},
	} {
		sql, args := operationsQuery(f)
		list(name, sql, args)
	}
	sql, args := dueSchedulesQuery(now, 1000)
	list("due schedules (scheduler)", sql, args)
	sql, args = schedulesQuery("vm")
	list("schedules of a VM", sql, args)
	sql, args = hostsOfVMsQuery([]string{"a", "b"})
	lookup("hosts of VMs (scheduler)", sql, args...)
	lookup("VM locks (lease loop)", vmLocks)
	lookup("renew operations (lease loop)", renewOperations, "owner", "t")
	lookup("renew VM locks (lease loop)", renewVMLocks, "owner", "t")
	lookup("one backup", `SELECT `+backupCols+` FROM backups WHERE id = $1`, "b")
	lookup("files of backups", `SELECT backup_id, disk, path, full_copy, size, virtual_size, hash FROM backup_files
 WHERE backup_id IN ($1, $2) ORDER BY backup_id, disk`, "a", "b")
	lookup("one VM", vmByRef, "vm")
	lookup("one job", `SELECT `+jobReadCols+` FROM jobs WHERE id = $1`, "j")
	lookup("one operation", `SELECT `+opCols+` FROM operations WHERE id = $1`, "o")
	lookup("a VM's deltas", `SELECT disk, backup_id, delta, base FROM vm_deltas WHERE vm_id = $1 ORDER BY disk`, "vm")
	return out
}
