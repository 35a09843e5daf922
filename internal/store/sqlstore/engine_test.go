package sqlstore

import (
	"context"
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
// TestMigrationsAreNumbered: every engine gets every migration once, in
// order, numbered from 1 without a gap, and LatestVersion is the last.
func TestMigrationsAreNumbered(t *testing.T) {
	for _, eng := range []string{EngineSQLite, EnginePostgres} {
		list, err := migrationsFor(eng)
		if err != nil {
			t.Fatal(err)
		}
		for i, m := range list {
			if m.version != i+1 || m.body == "" {
				t.Fatalf("%s: migration %d is %s (version %d)", eng, i+1, m.name, m.version)
			}
		}
		if len(list) == 0 || list[len(list)-1].version != LatestVersion() {
			t.Fatalf("%s: %d migrations, latest version %d", eng, len(list), LatestVersion())
		}
	}
}
