package sqlstore

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// FuzzImport: no dump makes the import panic, and a refused dump leaves
// the target empty.
func FuzzImport(f *testing.F) {
	v := strconv.Itoa(LatestVersion())
	f.Add(`{"knib_dump":1,"schema_version":` + v + `,"engine":"sqlite","created":"x","tables":[{"name":"zones","columns":["id","name"],"rows":[["z1","default"]]}]}`)
	f.Add(`{"knib_dump":1,"schema_version":` + v + `,"tables":[{"name":"accounts","columns":["id","name","created","max_vms","max_vcpus","max_memory_bytes"],"rows":[["a","b","c",1,2,3],["a"]]}]}`)
	f.Add(`{"knib_dump":1,"schema_version":` + v + `,"tables":[{"name":"zones; DROP TABLE accounts","columns":["x"],"rows":[]}]}`)
	f.Add(`{"tables":[]}`)
	// A migrated, empty catalogue, copied for each input: migrating anew
	// would take most of each run.
	tmpl := filepath.Join(f.TempDir(), "template.db")
	t0, err := OpenSQLite(context.Background(), tmpl)
	if err != nil {
		f.Fatal(err)
	}
	if _, err := t0.db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		f.Fatal(err)
	}
	t0.Close()
	empty, err := os.ReadFile(tmpl)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, dump string) {
		ctx := context.Background()
		file := filepath.Join(t.TempDir(), "f.db")
		if err := os.WriteFile(file, empty, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := OpenSQLite(ctx, file)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		_, ierr := s.Import(ctx, strings.NewReader(dump))
		if ierr == nil {
			return
		}
		var n int
		for _, table := range []string{"zones", "accounts", "backups", "vms"} {
			var c int
			if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+table).Scan(&c); err != nil {
				t.Fatal(err)
			}
			n += c
		}
		if n != 0 {
			t.Fatalf("a refused import (%v) left %d rows", ierr, n)
		}
	})
}
