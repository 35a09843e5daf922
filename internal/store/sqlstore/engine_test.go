package sqlstore

import (
	"context"
	"io/fs"
	"path"
	"path/filepath"
	"strings"
	"testing"
)

func TestEngineOf(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://knib:pw@127.0.0.1/knib":         EnginePostgres,
		"postgresql://knib@db.example/knib?x=y":     EnginePostgres,
		"POSTGRES://u@h/d":                          EnginePostgres,
		"/var/lib/knib/knib.db":                     EngineSQLite,
		"knib.db":                                   EngineSQLite,
		"postgres.db":                               EngineSQLite,
		"./postgres://not-a-url-but-a-relative-dir": EngineSQLite,
	} {
		if got := EngineOf(in); got != want {
			t.Errorf("EngineOf(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestOpenPicksSQLiteForAPath(t *testing.T) {
	file := filepath.Join(t.TempDir(), "knib.db")
	s, err := Open(context.Background(), file)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Engine() != EngineSQLite {
		t.Fatalf("engine %q", s.Engine())
	}
	v, err := s.SchemaVersion(context.Background())
	if err != nil || v != LatestVersion() || v < 7 {
		t.Fatalf("schema version %d (%v), latest %d", v, err, LatestVersion())
	}
	if _, err := Open(context.Background(), ""); err == nil {
		t.Fatal("an empty database string was accepted")
	}
}

func TestRedactHidesThePassword(t *testing.T) {
	got := Redact("postgres://knib:s3cret@127.0.0.1:5432/knib?sslmode=disable")
	if strings.Contains(got, "s3cret") || !strings.Contains(got, "127.0.0.1:5432/knib") {
		t.Fatalf("redacted: %s", got)
	}
}

// Every migration exists for every engine, under the same name.
func TestMigrationsHaveTwins(t *testing.T) {
	names := map[string][]string{}
	for _, eng := range []string{EngineSQLite, EnginePostgres} {
		entries, err := fs.ReadDir(migrations, path.Join("migrations", eng))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			names[eng] = append(names[eng], e.Name())
		}
	}
	if strings.Join(names[EngineSQLite], ",") != strings.Join(names[EnginePostgres], ",") {
		t.Fatalf("migrations differ:\nsqlite:   %v\npostgres: %v", names[EngineSQLite], names[EnginePostgres])
	}
}
