package sqlstore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/jobs"
	"github.com/knib/knib/internal/store"
	"github.com/knib/knib/internal/store/sqlstore"
)

var d0 = time.Date(2026, 11, 27, 10, 0, 0, 123456789, time.UTC)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func openSQLite(t *testing.T) *sqlstore.DB {
	t.Helper()
	s, err := sqlstore.Open(context.Background(), filepath.Join(t.TempDir(), "knib.db"))
	must(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

// populate puts rows in every table of the catalogue, with the awkward
// values: NULLs, booleans both ways, sizes above 2^32, fractions, quotes,
// non-ASCII text, JSON in TEXT columns.
func populate(t *testing.T, s store.Store) {
	ctx := context.Background()
	acc := domain.Account{ID: domain.NewID(), Name: "admin", Created: d0}
	must(t, s.CreateAccount(ctx, acc))
	must(t, s.CreateAccount(ctx, domain.Account{ID: domain.NewID(), Name: `Zoë "quoted" o'brien`, Created: d0.Add(time.Second)}))
	must(t, s.CreateToken(ctx, store.Token{ID: domain.NewID(), AccountID: acc.ID, Role: domain.RoleAdmin, Name: "admin", Hash: "sha256:ab", Created: d0}))
	z, err := s.EnsureZone(ctx, "default")
	must(t, err)
	h, err := s.UpsertHost(ctx, domain.Host{Name: "localhost", ZoneID: z.ID, URI: "qemu:///system", CPUs: 4, MemoryBytes: 1 << 34,
		StorageCapacity: 1 << 41, StorageFree: 1 << 40, Local: true, LastSeen: d0, StoragePath: "/var/lib/knib/storage",
		AgentSettings: map[string]string{"backup.validation.max.concurrent.operations.per.host": "2"}})
	must(t, err)
	n := 3
	gold, err := domain.NewOffering(domain.NewID(), domain.OfferingSpec{Name: "gold", Compress: true, Validate: true, BackupChainSize: &n}, d0)
	must(t, err)
	must(t, s.CreateOffering(ctx, gold))
	old, err := domain.NewOffering(domain.NewID(), domain.OfferingSpec{Name: "old", AllowQuickRestore: true}, d0)
	must(t, err)
	must(t, s.CreateOffering(ctx, old))
	must(t, s.RemoveOffering(ctx, old.ID, d0.Add(time.Hour)))
	disks := []domain.Disk{{Target: "vda", Device: "disk", SourceType: "file", Source: "/a.qcow2", Format: "qcow2", VirtualSize: 1 << 33}}
	v1 := domain.VM{ID: domain.NewID(), Name: "web", State: domain.VMRunning, Disks: disks}
	v2 := domain.VM{ID: domain.NewID(), Name: "db", State: domain.VMStopped}
	must(t, s.SyncHostVMs(ctx, h.ID, []domain.VM{v1, v2}, acc.ID, d0))
	must(t, s.SetVMOffering(ctx, v1.ID, gold.ID))
	must(t, s.SetVMError(ctx, v2.ID, "needs attention: ünïcode"))
	must(t, s.SetSetting(ctx, store.Setting{Scope: "global", Key: "backup.chain.size", Value: "4"}))
	must(t, s.SetSetting(ctx, store.Setting{Scope: "host", ScopeID: h.ID, Key: "k", Value: "-1"}))
	must(t, s.SetVMDetail(ctx, v1.ID, "backupValidationCommand", "cat /etc/hostname"))
	op := domain.Operation{ID: domain.NewID(), Kind: "backup.create", VMID: v1.ID, AccountID: acc.ID, State: domain.OpSucceeded,
		Progress: 42.5, Message: "done", Result: `{"id":"x"}`, Created: d0, Updated: d0.Add(time.Minute)}
	must(t, s.CreateOperation(ctx, op))
	b := domain.Backup{ID: domain.NewID(), VMID: v1.ID, VMName: "web", AccountID: acc.ID, OfferingID: gold.ID, HostID: h.ID,
		Type: domain.BackupFull, Position: 1, Status: domain.BackupBackingUp, Dir: "backups/web/b1", Plan: `{"disks":["vda"]}`, Created: d0, Updated: d0}
	must(t, s.CreateBackup(ctx, b))
	b.Status, b.Size, b.VirtualSize = domain.BackupBackedUp, 5<<30, 1<<33
	b.Files = []domain.BackupFile{{Disk: "vda", Path: "backups/web/b1/vda.qcow2", Full: true, Size: 5 << 30, VirtualSize: 1 << 33, Hash: "xxh3-128:00"}}
	must(t, s.SaveBackup(ctx, b, &store.Chain{Head: b.ID, Deltas: []domain.Delta{{VMID: v1.ID, Disk: "vda", BackupID: b.ID, Delta: "/d", Base: "/a.qcow2"}}}))
	must(t, s.SetValidation(ctx, b.ID, domain.Valid, "booted", nil, true, nil))
	must(t, s.SaveSnapshot(ctx, domain.Snapshot{ID: domain.NewID(), VMID: v1.ID, Name: "s1", Status: domain.SnapshotReady,
		Files: []domain.SnapshotFile{{Disk: "vda", Frozen: "/a.qcow2"}}, Created: d0}))
	must(t, s.EnqueueJob(ctx, jobs.Job{ID: domain.NewID(), Type: jobs.BackupValidation, BackupID: b.ID, VMID: v1.ID, ZoneID: z.ID,
		State: jobs.Queued, Scheduled: d0}))
	must(t, s.SaveSchedule(ctx, domain.Schedule{ID: domain.NewID(), VMID: v1.ID, Interval: "daily", At: "02:00", Timezone: "UTC",
		MaxBackups: 7, Isolated: true, NextRun: d0.Add(24 * time.Hour), Created: d0}))
}

func export(t *testing.T, s *sqlstore.DB) (sqlstore.Dump, []byte) {
	t.Helper()
	var buf bytes.Buffer
	d, err := s.Export(context.Background(), &buf)
	must(t, err)
	back, err := sqlstore.ReadDump(bytes.NewReader(buf.Bytes()))
	must(t, err)
	if back.SchemaVersion != d.SchemaVersion || len(back.Tables) != len(d.Rows) {
		t.Fatalf("the written dump reads back differently")
	}
	for _, tb := range back.Tables {
		if len(tb.Rows) != d.Rows[tb.Name] {
			t.Fatalf("table %s: %d rows written, %d counted", tb.Name, len(tb.Rows), d.Rows[tb.Name])
		}
	}
	return back, buf.Bytes()
}

// load imports a dump (as db import streams it).
func load(s *sqlstore.DB, d sqlstore.Dump) (map[string]int, error) {
	raw, err := json.Marshal(d)
	if err != nil {
		return nil, err
	}
	return s.Import(context.Background(), bytes.NewReader(raw))
}

func tablesJSON(t *testing.T, d sqlstore.Dump) string {
	t.Helper()
	raw, err := json.Marshal(d.Tables)
	must(t, err)
	return string(raw)
}

// The catalogue's tables the dump must carry (others may be added later).
var knownTables = []string{"accounts", "tokens", "zones", "hosts", "offerings", "vms", "settings", "vm_details", "operations",
	"backups", "backup_files", "vm_deltas", "snapshots", "jobs", "schedules"}

func TestExportImportRoundTripSQLitePostgresSQLite(t *testing.T) {
	ctx := context.Background()
	src := openSQLite(t)
	populate(t, src)
	d1, raw1 := export(t, src)
	if d1.Engine != sqlstore.EngineSQLite || d1.SchemaVersion != sqlstore.LatestVersion() {
		t.Fatalf("dump header: engine %s version %d", d1.Engine, d1.SchemaVersion)
	}
	// Every known table is there with rows, parents before children, and
	// schema_migrations is not.
	pos := map[string]int{}
	for i, tb := range d1.Tables {
		pos[tb.Name] = i
	}
	if _, ok := pos["schema_migrations"]; ok {
		t.Fatal("schema_migrations is in the dump")
	}
	for _, name := range knownTables {
		i, ok := pos[name]
		if !ok || len(d1.Tables[i].Rows) == 0 {
			t.Fatalf("table %s missing or empty in the dump", name)
		}
	}
	for _, fk := range [][2]string{{"tokens", "accounts"}, {"hosts", "zones"}, {"vms", "hosts"}, {"vms", "accounts"}, {"vms", "offerings"},
		{"vm_details", "vms"}, {"backup_files", "backups"}} {
		if pos[fk[0]] < pos[fk[1]] {
			t.Fatalf("%s comes before %s, which its foreign key points at", fk[0], fk[1])
		}
	}
	if !strings.Contains(string(raw1), `"progress"`) {
		t.Fatal("the dump lacks column names")
	}

	pg := openPostgres(t)
	counts, err := load(pg, d1)
	must(t, err)
	if counts["backups"] != 1 || counts["accounts"] != 2 {
		t.Fatalf("import counts: %v", counts)
	}
	d2, _ := export(t, pg)
	if d2.Engine != sqlstore.EnginePostgres {
		t.Fatalf("engine %s", d2.Engine)
	}
	if a, b := tablesJSON(t, d1), tablesJSON(t, d2); a != b {
		t.Fatalf("SQLite and PostgreSQL rows differ:\n%s\n%s", a, b)
	}
	// The store reads the imported rows as it wrote them.
	got, err := pg.ListBackups(ctx, store.BackupFilter{})
	must(t, err)
	if len(got) != 1 || got[0].Size != 5<<30 || !got[0].HasScreenshot || got[0].Files[0].VirtualSize != 1<<33 || !got[0].Created.Equal(d0) {
		t.Fatalf("backups on PostgreSQL: %+v", got)
	}
	offs, err := pg.ListOfferings(ctx, store.OfferingFilter{ShowRemoved: true})
	must(t, err)
	if len(offs) != 2 || offs[0].BackupChainSize == nil || *offs[0].BackupChainSize != 3 || offs[1].Removed == nil || offs[1].BackupChainSize != nil {
		t.Fatalf("offerings on PostgreSQL: %+v", offs)
	}

	back := openSQLite(t)
	_, err = load(back, d2)
	must(t, err)
	d3, _ := export(t, back)
	if a, b := tablesJSON(t, d1), tablesJSON(t, d3); a != b {
		t.Fatalf("rows differ after SQLite -> PostgreSQL -> SQLite:\n%s\n%s", a, b)
	}
	op, err := back.ListOperations(ctx, store.OperationFilter{All: true})
	must(t, err)
	if len(op) != 1 || op[0].Progress != 42.5 {
		t.Fatalf("operations: %+v", op)
	}
}

// Import refuses a non-empty target, another schema version and a broken
// dump, and loads nothing then.
func TestImportRefusals(t *testing.T) {
	ctx := context.Background()
	src := openSQLite(t)
	populate(t, src)
	d, raw := export(t, src)

	for name, target := range map[string]*sqlstore.DB{"sqlite": openSQLite(t), "postgres": openPostgres(t)} {
		t.Run(name, func(t *testing.T) {
			// A dump of another schema version.
			other := d
			other.SchemaVersion = d.SchemaVersion + 1
			_, err := load(target, other)
			if err == nil || !strings.Contains(err.Error(), "schema version") {
				t.Fatalf("another schema version: %v", err)
			}
			// A dump whose last table has a bad row: nothing at all stays.
			bad, err := sqlstore.ReadDump(bytes.NewReader(raw))
			must(t, err)
			last := &bad.Tables[len(bad.Tables)-1]
			last.Rows = append(last.Rows, []any{"too few"})
			if _, err := load(target, bad); err == nil {
				t.Fatal("a row with too few values was accepted")
			}
			bad2, _ := sqlstore.ReadDump(bytes.NewReader(raw))
			bad2.Tables = append(bad2.Tables, sqlstore.DumpTable{Name: "no_such_table; DROP TABLE accounts", Columns: []string{"x"}})
			if _, err := load(target, bad2); err == nil || !strings.Contains(err.Error(), "does not have") {
				t.Fatalf("an unknown table: %v", err)
			}
			empty, _ := export(t, target)
			for _, tb := range empty.Tables {
				if len(tb.Rows) != 0 {
					t.Fatalf("a refused import left %d rows in %s", len(tb.Rows), tb.Name)
				}
			}
			// The real thing, then a second import into the now full target.
			_, err = load(target, d)
			must(t, err)
			_, err = load(target, d)
			if !errors.Is(err, sqlstore.ErrNotEmpty) {
				t.Fatalf("import into a non-empty database: %v", err)
			}
			after, _ := export(t, target)
			if tablesJSON(t, after) != tablesJSON(t, d) {
				t.Fatal("a refused import changed the database")
			}
		})
	}
	if _, err := sqlstore.ReadDump(strings.NewReader(`{"tables":[]}`)); err == nil {
		t.Fatal("a JSON document without knib_dump was accepted")
	}
	if _, err := sqlstore.ReadDump(strings.NewReader(`not json`)); err == nil {
		t.Fatal("garbage was accepted")
	}
	// The streamed import refuses the same, and a header after the tables.
	target := openSQLite(t)
	for _, bad := range []string{`{"tables":[]}`, `not json`, `{"tables":[],"knib_dump":1,"schema_version":1}`,
		`{"knib_dump":1,"schema_version":` + strconv.Itoa(sqlstore.LatestVersion()) + `,"tables":[{"rows":[[1]],"name":"accounts","columns":["id"]}]}`} {
		if _, err := target.Import(ctx, strings.NewReader(bad)); err == nil {
			t.Fatalf("import accepted %s", bad)
		}
	}
}
