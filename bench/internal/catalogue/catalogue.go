// Package catalogue generates knib catalogues of any size as dumps for
// knib db import (the benchmarks' fixtures): accounts, hosts, offerings,
// VMs with chains of ChainSize backups a day apart, their files, jobs and
// operations, following the migrations' schema.
package catalogue

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/store/sqlstore"
)

// Catalogue is the size of a generated catalogue.
type Catalogue struct {
	VMs          int `json:"vms"`
	BackupsPerVM int `json:"backups_per_vm"`
	QueuedJobs   int `json:"queued_jobs"`
	Hosts        int `json:"hosts"`
	Accounts     int `json:"accounts"`
}

// Backups is the number of backups.
func (c Catalogue) Backups() int { return c.VMs * c.BackupsPerVM }

// ChainSize is the offerings' chain length: a full, then incrementals.
const ChainSize = 10

// GenTime is the time of the newest generated backup.
var GenTime = time.Date(2026, 11, 30, 2, 0, 0, 0, time.UTC)

// ID is the n-th generated id of a kind (KVM, KBackup, ...).
func ID(kind, n int) string { return fmt.Sprintf("%08x-0000-4000-8000-%012x", kind, n) }

// Id kinds.
const (
	KAccount = iota + 1
	KZone
	KHost
	KOffering
	KVM
	KBackup
	KJob
	KOperation
	KStorage
	KSchedule
)

func ts(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000000Z") }

// schema returns the tables and their columns in dump order, read from an
// empty catalogue's export (so the generator follows the migrations).
func schema(ctx context.Context, dir string) ([]sqlstore.DumpTable, int, error) {
	s, err := sqlstore.Open(ctx, filepath.Join(dir, "schema.db"))
	if err != nil {
		return nil, 0, err
	}
	defer s.Close()
	pr, pw := io.Pipe()
	go func() {
		_, err := s.Export(ctx, pw)
		pw.CloseWithError(err)
	}()
	d, err := sqlstore.ReadDump(pr)
	if err != nil {
		return nil, 0, err
	}
	return d.Tables, d.SchemaVersion, nil
}

// rowWriter writes the rows of one table, filling columns a row leaves out
// with their type's zero value.
type rowWriter struct {
	w       *bufio.Writer
	columns []string
	n       int
	err     error
	buf     []any
}

func (r *rowWriter) row(vals map[string]any) {
	if r.err != nil {
		return
	}
	r.buf = r.buf[:0]
	for _, c := range r.columns {
		v, ok := vals[c]
		if !ok {
			v = zeroOf(c)
		}
		r.buf = append(r.buf, v)
	}
	raw, err := json.Marshal(r.buf)
	if err != nil {
		r.err = err
		return
	}
	if r.n > 0 {
		r.w.WriteString(",")
	}
	r.w.WriteString("\n")
	r.w.Write(raw)
	r.n++
}

// zeroOf is a column's value when a generated row does not set it.
func zeroOf(col string) any {
	switch col {
	case "max_vms", "max_vcpus", "max_memory_bytes":
		return -1
	case "attempts", "position", "size", "virtual_size", "uncompressed_size", "cpus", "memory_bytes", "storage_capacity",
		"storage_free", "vcpus", "capacity", "free", "max_backups":
		return 0
	case "isolated", "end_of_chain", "has_screenshot", "compress", "validate", "allow_quick_restore", "allow_extract_file",
		"enabled", "local", "full_copy", "revoked", "quick":
		return false
	case "removed", "backup_chain_size", "offering_id":
		return nil
	case "plan", "agent_settings":
		return "{}"
	case "validation_steps", "disks", "files":
		return "[]"
	case "progress":
		return 0.0
	}
	return ""
}

// Generate writes a dump of a catalogue of the given size to file.
func Generate(ctx context.Context, c Catalogue, storage, file string) error {
	tables, version, err := schema(ctx, filepath.Dir(file))
	if err != nil {
		return fmt.Errorf("read the schema: %w", err)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	head, _ := json.Marshal(map[string]any{"knib_dump": sqlstore.DumpFormat})
	w.Write(head[:len(head)-1])
	fmt.Fprintf(w, `,"schema_version":%d,"engine":"generated","created":%q,"tables":[`, version, ts(GenTime))
	for i, t := range tables {
		if i > 0 {
			w.WriteString(",")
		}
		cols, _ := json.Marshal(t.Columns)
		name, _ := json.Marshal(t.Name)
		fmt.Fprintf(w, "\n{\"name\":%s,\"columns\":%s,\"rows\":[", name, cols)
		rw := &rowWriter{w: w, columns: t.Columns}
		fill(c, storage, t.Name, rw)
		if rw.err != nil {
			return rw.err
		}
		w.WriteString("]}")
	}
	w.WriteString("]}\n")
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Sync()
}

// fill writes the generated rows of one table.
func fill(c Catalogue, storage, table string, rw *rowWriter) {
	day := 24 * time.Hour
	switch table {
	case "accounts":
		rw.row(map[string]any{"id": ID(KAccount, 0), "name": "admin", "created": ts(GenTime.Add(-400 * day))})
		for i := 1; i <= c.Accounts; i++ {
			rw.row(map[string]any{"id": ID(KAccount, i), "name": fmt.Sprintf("tenant-%03d", i), "created": ts(GenTime.Add(-400 * day))})
		}
	case "zones":
		rw.row(map[string]any{"id": ID(KZone, 0), "name": "default"})
	case "hosts":
		for i := range c.Hosts {
			rw.row(map[string]any{"id": ID(KHost, i), "name": fmt.Sprintf("kvm-%03d", i), "zone_id": ID(KZone, 0),
				"uri": "qemu:///system", "libvirt_version": "9.0.0", "hypervisor_version": "7.2.0", "cpus": 64, "memory_bytes": int64(512) << 30,
				"storage_capacity": int64(8) << 40, "storage_free": int64(4) << 40, "enabled": true, "last_seen": ts(GenTime),
				"storage_path": "/var/lib/knib/storage"})
		}
	case "offerings":
		for i := range 4 {
			rw.row(map[string]any{"id": ID(KOffering, i), "name": fmt.Sprintf("offering-%d", i), "description": "generated",
				"compress": i%2 == 0, "validate": i < 2, "allow_quick_restore": true, "allow_extract_file": true,
				"backup_chain_size": ChainSize, "compression_library": "zstd", "created": ts(GenTime.Add(-400 * day))})
		}
	case "storages":
		rw.row(map[string]any{"id": ID(KStorage, 0), "name": domain.DefaultStorageName, "zone_id": ID(KZone, 0), "path": storage,
			"enabled": true, "created": ts(GenTime.Add(-400 * day))})
	case "vms":
		for v := range c.VMs {
			disks, _ := json.Marshal([]domain.Disk{
				{Target: "vda", Device: "disk", Bus: "virtio", SourceType: "file", Source: fmt.Sprintf("/var/lib/libvirt/images/vm-%05d.qcow2", v),
					Format: "qcow2", VirtualSize: 20 << 30},
				{Target: "vdb", Device: "disk", Bus: "virtio", SourceType: "file", Source: fmt.Sprintf("/var/lib/libvirt/images/vm-%05d-data.qcow2", v),
					Format: "qcow2", VirtualSize: 100 << 30}})
			head := ""
			if c.BackupsPerVM > 0 {
				head = ID(KBackup, v*c.BackupsPerVM+c.BackupsPerVM-1)
			}
			rw.row(map[string]any{"id": ID(KVM, v), "name": fmt.Sprintf("vm-%05d", v), "host_id": ID(KHost, v%c.Hosts), "state": "Running",
				"account_id": ID(KAccount, 1+v%c.Accounts), "offering_id": ID(KOffering, v%4), "disks": string(disks), "seen": ts(GenTime),
				"chain_head": head, "vcpus": 4, "memory_bytes": int64(8) << 30})
		}
	case "vm_deltas":
		for v := range c.VMs {
			if c.BackupsPerVM == 0 {
				continue
			}
			for _, d := range []string{"vda", "vdb"} {
				rw.row(map[string]any{"vm_id": ID(KVM, v), "disk": d, "backup_id": ID(KBackup, v*c.BackupsPerVM+c.BackupsPerVM-1),
					"delta": fmt.Sprintf("/var/lib/libvirt/images/vm-%05d-%s.knib-delta.qcow2", v, d), "base": fmt.Sprintf("/var/lib/libvirt/images/vm-%05d.qcow2", v)})
			}
		}
	case "backups":
		for v := range c.VMs {
			for k := range c.BackupsPerVM {
				rw.row(backupRow(c, v, k))
			}
		}
	case "backup_files":
		for v := range c.VMs {
			for k := range c.BackupsPerVM {
				n := v*c.BackupsPerVM + k
				full := k%ChainSize == 0
				dir := fmt.Sprintf("backups/vm-%05d/%s", v, ID(KBackup, n))
				for _, d := range []string{"vda", "vdb"} {
					size := int64(1+n%97) << 20
					if full {
						size <<= 6
					}
					rw.row(map[string]any{"backup_id": ID(KBackup, n), "disk": d, "path": dir + "/" + d + ".qcow2", "full_copy": full,
						"size": size, "virtual_size": int64(20) << 30, "hash": fmt.Sprintf("xxh3-128:%032x", n*2+len(d))})
				}
			}
		}
	case "jobs":
		types := []string{"StartCompression", "BackupValidation"}
		for j := range c.QueuedJobs {
			v := j % c.VMs
			b := v*c.BackupsPerVM + (j/c.VMs)%max(1, c.BackupsPerVM)
			rw.row(map[string]any{"id": ID(KJob, j), "type": types[j%2], "backup_id": ID(KBackup, b), "vm_id": ID(KVM, v),
				"zone_id": ID(KZone, 0), "scheduled": ts(GenTime.Add(-time.Duration(c.QueuedJobs-j) * time.Second)), "state": "Queued"})
		}
		// As many finished ones, as a queue keeps.
		for j := range c.QueuedJobs / 5 {
			v := j % c.VMs
			rw.row(map[string]any{"id": ID(KJob, c.QueuedJobs+j), "type": types[j%2], "backup_id": ID(KBackup, v*c.BackupsPerVM), "vm_id": ID(KVM, v),
				"host_id": ID(KHost, v%c.Hosts), "zone_id": ID(KZone, 0), "attempts": 1,
				"scheduled": ts(GenTime.Add(-time.Duration(10*c.QueuedJobs-j) * time.Second)), "started": ts(GenTime.Add(-day)),
				"ended": ts(GenTime.Add(-day + time.Minute)), "state": map[bool]string{true: "Failed", false: "Succeeded"}[j%13 == 0]})
		}
	case "schedules":
		// A daily backup per VM, spread over the day; the first runs lie years
		// ahead so that no server serving the catalogue starts backups.
		for v := range c.VMs {
			rw.row(map[string]any{"id": ID(KSchedule, v), "vm_id": ID(KVM, v), "interval": "daily", "at": fmt.Sprintf("%02d:%02d", v%24, v%60),
				"timezone": "UTC", "max_backups": c.BackupsPerVM, "next_run": ts(GenTime.AddDate(5, 0, 0).Add(time.Duration(v%1440) * time.Minute)), "created": ts(GenTime.Add(-400 * day))})
		}
	case "operations":
		for o := range c.VMs {
			at := GenTime.Add(-time.Duration(c.VMs-o) * time.Minute)
			rw.row(map[string]any{"id": ID(KOperation, o), "kind": "backup.create", "vm_id": ID(KVM, o), "account_id": ID(KAccount, 1+o%c.Accounts),
				"state": "Succeeded", "progress": 100.0, "message": "done", "created": ts(at), "updated": ts(at.Add(time.Minute))})
		}
	}
}

// backupRow is the k-th backup of VM v: chains of ChainSize, one a day,
// the newest at GenTime; a few failed, older chains compressed and
// validated.
func backupRow(c Catalogue, v, k int) map[string]any {
	n := v*c.BackupsPerVM + k
	pos := k%ChainSize + 1
	typ, parent := "incremental", ID(KBackup, n-1)
	if pos == 1 {
		typ, parent = "full", ""
	}
	created := GenTime.Add(-time.Duration(c.BackupsPerVM-1-k)*24*time.Hour + time.Duration(v)*time.Second)
	status, comp, valid := "BackedUp", "Uncompressed", "NotValidated"
	if k < c.BackupsPerVM-ChainSize {
		comp, valid = "Compressed", "Valid"
	}
	if n%211 == 0 && pos != 1 {
		status = "Error"
	}
	return map[string]any{"id": ID(KBackup, n), "vm_id": ID(KVM, v), "vm_name": fmt.Sprintf("vm-%05d", v), "account_id": ID(KAccount, 1+v%c.Accounts),
		"offering_id": ID(KOffering, v%4), "host_id": ID(KHost, v%c.Hosts), "type": typ, "parent_id": parent, "position": pos,
		"end_of_chain": pos == ChainSize, "status": status, "size": int64(1+n%97) << 21, "virtual_size": int64(120) << 30,
		"dir": fmt.Sprintf("backups/vm-%05d/%s", v, ID(KBackup, n)), "plan": `{"disks":["vda","vdb"]}`, "created": ts(created),
		"updated": ts(created.Add(3 * time.Minute)), "compression_status": comp, "uncompressed_size": int64(1+n%97) << 22,
		"validation_status": valid, "storage_id": ID(KStorage, 0)}
}
