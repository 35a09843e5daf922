package sqlstore

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/knib/knib/internal/testbed"
)

// The catalogue's big tables: a hot query must never read one of them
// whole.
var bigTables = []string{"backups", "backup_files", "vms", "jobs", "operations", "vm_deltas"}

// TestHotQueriesUseIndexes checks the plan of every hot query on SQLite: no
// full scan of a big table, and no sort of the match when the query is a
// list page (its order must come from an index, so that a page reads only
// its rows).
func TestHotQueriesUseIndexes(t *testing.T) {
	ctx := context.Background()
	s := openPlanDB(t)
	for _, q := range hotQueries(EngineSQLite) {
		lines, err := explainSQLite(ctx, s.db, q)
		if err != nil {
			t.Fatalf("%s: %v", q.name, err)
		}
		plan := strings.Join(lines, "\n")
		for _, l := range lines {
			for _, tb := range bigTables {
				if l == "SCAN "+tb || strings.HasPrefix(l, "SCAN "+tb+" ") && !strings.Contains(l, "INDEX") {
					t.Errorf("%s: reads table %s whole:\n%s\n%s", q.name, tb, q.sql, plan)
				}
			}
			if q.ordered && strings.Contains(l, "TEMP B-TREE") {
				t.Errorf("%s: sorts its whole match instead of reading an index in order:\n%s\n%s", q.name, q.sql, plan)
			}
		}
		if !strings.Contains(plan, "INDEX") {
			t.Errorf("%s: uses no index:\n%s\n%s", q.name, q.sql, plan)
		}
	}
}

func explainSQLite(ctx context.Context, db *sql.DB, q hotQuery) ([]string, error) {
	rows, err := db.QueryContext(ctx, "EXPLAIN QUERY PLAN "+q.sql, q.args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			return nil, err
		}
		out = append(out, detail)
	}
	return out, rows.Err()
}

// TestHotQueriesUseIndexesPostgres checks the same on PostgreSQL. Its
// planner prefers a sequential scan on a small table, so the test forbids
// sequential scans and sorts: a plan without either exists only when an
// index serves the filter and the order.
func TestHotQueriesUseIndexesPostgres(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, testbed.PostgresDB(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	conn, err := s.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, set := range []string{"SET enable_seqscan = off", "SET enable_sort = off"} {
		if _, err := conn.ExecContext(ctx, set); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range hotQueries(EnginePostgres) {
		plan, err := explainPostgres(ctx, conn, q)
		if err != nil {
			t.Fatalf("%s: %v", q.name, err)
		}
		for _, tb := range bigTables {
			if strings.Contains(plan, "Seq Scan on "+tb) {
				t.Errorf("%s: reads table %s whole:\n%s\n%s", q.name, tb, q.sql, plan)
			}
		}
		if q.ordered && strings.Contains(plan, "Sort") {
			t.Errorf("%s: sorts its whole match instead of reading an index in order:\n%s\n%s", q.name, q.sql, plan)
		}
		if !strings.Contains(plan, "Index") {
			t.Errorf("%s: uses no index:\n%s\n%s", q.name, q.sql, plan)
		}
	}
}

func explainPostgres(ctx context.Context, conn *sql.Conn, q hotQuery) (string, error) {
	rows, err := conn.QueryContext(ctx, "EXPLAIN (FORMAT TEXT) "+q.sql, q.args...)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var l string
		if err := rows.Scan(&l); err != nil {
			return "", err
		}
		lines = append(lines, l)
	}
	return strings.Join(lines, "\n"), rows.Err()
}

// The checks can fail: the optional-filter form that this store used
// before keeps both engines from an index.
func TestPlanCheckCatchesAScan(t *testing.T) {
	ctx := context.Background()
	s := openPlanDB(t)
	lines, err := explainSQLite(ctx, s.db, hotQuery{sql: `SELECT id FROM backups WHERE ($1 = '' OR vm_id = $1) ORDER BY created, id`, args: []any{"vm"}})
	if err != nil {
		t.Fatal(err)
	}
	if plan := strings.Join(lines, "\n"); !strings.Contains(plan, "SCAN backups") {
		t.Fatalf("the old form's plan shows no scan:\n%s", plan)
	}
}

// An import drops the secondary indexes for the load and creates them
// again: afterwards the database has every index a migrated one has, on
// both engines.
func TestImportKeepsTheIndexes(t *testing.T) {
	ctx := context.Background()
	src, err := OpenSQLite(ctx, filepath.Join(t.TempDir(), "src.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var dump strings.Builder
	if _, err := src.Export(ctx, &dump); err != nil {
		t.Fatal(err)
	}
	for name, open := range map[string]func() (*DB, error){
		"sqlite":   func() (*DB, error) { return OpenSQLite(ctx, filepath.Join(t.TempDir(), "dst.db")) },
		"postgres": func() (*DB, error) { return Open(ctx, testbed.PostgresDB(t)) },
	} {
		dst, err := open()
		if err != nil {
			t.Fatal(err)
		}
		before := indexNames(t, dst)
		if len(before) < 10 {
			t.Fatalf("%s: only %d secondary indexes: %v", name, len(before), before)
		}
		if _, err := dst.Import(ctx, strings.NewReader(dump.String())); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if after := indexNames(t, dst); strings.Join(after, ",") != strings.Join(before, ",") {
			t.Fatalf("%s: indexes after the import %v, before %v", name, after, before)
		}
		dst.Close()
	}
}

func indexNames(t *testing.T, s *DB) []string {
	t.Helper()
	tx, err := s.db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	list, err := s.secondaryIndexes(context.Background(), tx)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ix := range list {
		out = append(out, ix.name+"="+ix.create)
	}
	return out
}

func openPlanDB(t *testing.T) *DB {
	t.Helper()
	s, err := OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "plan.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// A database path with '#', '?' or '%' opens that very file: the path is
// part of a URI, where '#' would cut it short and open another file.
func TestSQLitePathWithURICharacters(t *testing.T) {
	for _, name := range []string{"a#b", "c?d", "e%20f"} {
		dir := filepath.Join(t.TempDir(), name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(dir, "knib.db")
		s, err := OpenSQLite(context.Background(), file)
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		if _, err := os.Stat(file); err != nil {
			t.Fatalf("%s: the database is not at its path: %v", name, err)
		}
	}
}
