package integration

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/knib/knib/internal/store"
	"github.com/knib/knib/internal/store/sqlstore"
	"github.com/knib/knib/internal/testbed"
)

// TestMoveAllInOneToPostgres: an all-in-one server on SQLite backs up a VM
// (full, then incremental after writes), is stopped; knib db export and
// knib db import move the catalogue to a fresh PostgreSQL database; a server
// on the same data directory with --database lists the same backups,
// continues the same chain with another incremental, and restores it with
// the data.
func TestMoveAllInOneToPostgres(t *testing.T) {
	testbed.Require(t)
	pgURL := testbed.PostgresDB(t)
	dom := testbed.NewDomain(t, testbed.DomainOptions{Name: "knib-t-pgmove", DiskSizes: []int64{64 << 20, 32 << 20}, Start: true})
	s := StartServer(t, "")
	var off struct{ ID string }
	s.MustJSON(&off, "offering", "create", "--name", "pgmove")
	s.CLI("host", "refresh")
	s.CLI("vm", "assign", dom.Name, "--offering", off.ID)

	// On SQLite: b1 full, data, b2 incremental.
	b1 := s.backup(dom.Name)
	guest(t, dom, "echo before-move > /data/f1 && sync")
	if err := dom.WriteDisk(ctxT(t), 1, 0x5a, 1<<20, 1<<20); err != nil {
		t.Fatal(err)
	}
	b2 := s.backup(dom.Name)
	if b1.Type != "full" || b2.Type != "incremental" || b2.ParentID != b1.ID || !b2.ChainHead {
		t.Fatalf("on SQLite: b1 %+v b2 %+v", b1, b2)
	}
	before := s.backups(dom.Name)
	s.Stop()

	// Export from the data directory, import into PostgreSQL.
	dump := filepath.Join(t.TempDir(), "knib-dump.json")
	s.CLI("db", "export", "--data-dir", s.DataDir, "--file", dump)
	var imported struct {
		Engine        string         `json:"engine"`
		SchemaVersion int            `json:"schema_version"`
		Rows          map[string]int `json:"rows"`
	}
	out := s.CLI("db", "import", "--database", pgURL, "--file", dump, "-o", "json")
	if err := json.Unmarshal([]byte(out), &imported); err != nil {
		t.Fatalf("import output %q: %v", out, err)
	}
	if imported.Engine != "postgres" || imported.Rows["backups"] != 2 || imported.Rows["backup_files"] != 4 || imported.Rows["vm_deltas"] != 2 {
		t.Fatalf("import: %+v", imported)
	}
	if strings.Contains(out, strings.TrimPrefix(pgURL, "postgres://")) {
		t.Fatalf("the import output shows the password: %s", out)
	}
	// A second import is refused and says why.
	if msg := s.Fail(nil, 1, "db", "import", "--database", pgURL, "--file", dump); !strings.Contains(msg, "not empty") {
		t.Fatalf("second import: %s", msg)
	}
	var mig struct {
		Engine        string `json:"engine"`
		SchemaVersion int    `json:"schema_version"`
	}
	s.MustJSON(&mig, "db", "migrate", "--database", pgURL)
	if mig.Engine != "postgres" || mig.SchemaVersion != imported.SchemaVersion {
		t.Fatalf("db migrate: %+v", mig)
	}

	// The same data directory, the catalogue on PostgreSQL.
	s.Database = pgURL
	s.Restart()
	if !strings.Contains(s.Log(), "engine=postgres") {
		t.Fatalf("the server does not say it runs on PostgreSQL:\n%s", s.Log())
	}
	after := s.backups(dom.Name)
	if len(after) != len(before) {
		t.Fatalf("backups on PostgreSQL: %d, on SQLite: %d", len(after), len(before))
	}
	for id, b := range before {
		a, ok := after[id]
		if !ok || a.Type != b.Type || a.ParentID != b.ParentID || a.Size != b.Size || a.ChainHead != b.ChainHead ||
			len(a.Files) != len(b.Files) || a.Files[0].Hash != b.Files[0].Hash || a.Files[0].Path != b.Files[0].Path {
			t.Fatalf("backup %s after the move: %+v, before %+v", id, a, b)
		}
	}

	// The chain goes on: b3 is an incremental on b2.
	guest(t, dom, "echo after-move > /data/f2 && sync")
	if err := dom.WriteDisk(ctxT(t), 1, 0x3c, 4<<20, 1<<20); err != nil {
		t.Fatal(err)
	}
	b3 := s.backup(dom.Name)
	if b3.Type != "incremental" || b3.ParentID != b2.ID || !b3.ChainHead {
		t.Fatalf("b3 on PostgreSQL: %+v", b3)
	}
	// b3 is in PostgreSQL and not in the old SQLite file.
	ctx := context.Background()
	pg, err := sqlstore.OpenExisting(ctx, pgURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	if got, err := pg.Backup(ctx, b3.ID); err != nil || got.ParentID != b2.ID {
		t.Fatalf("b3 in PostgreSQL: %+v %v", got, err)
	}
	lite, err := sqlstore.OpenExisting(ctx, filepath.Join(s.DataDir, "knib.db"))
	if err != nil {
		t.Fatal(err)
	}
	old, err := lite.ListBackups(ctx, store.BackupFilter{})
	lite.Close()
	if err != nil || len(old) != 2 {
		t.Fatalf("the SQLite file changed after the move: %d backups, %v", len(old), err)
	}

	// Restore b3: both writes of before and after the move are there.
	if err := dom.Destroy(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	s.CLI("backup", "restore", b3.ID)
	if err := dom.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if got := guest(t, dom, "cat /data/f1 /data/f2"); got != "before-move\nafter-move\n" {
		t.Fatalf("after restoring b3: %q", got)
	}
	vdb := flatten(t, dom.Disks[1])
	if !pattern(t, vdb, 0x5a, 1<<20, 1<<20) || !pattern(t, vdb, 0x3c, 4<<20, 1<<20) {
		t.Fatal("after restoring b3, vdb misses a pattern")
	}
}
