package sqlstore_test

import (
	"context"
	"testing"

	"github.com/knib/knib/internal/store"
	"github.com/knib/knib/internal/store/sqlstore"
	"github.com/knib/knib/internal/store/storetest"
	"github.com/knib/knib/internal/testbed"
)

// openPostgres opens a store on a fresh PostgreSQL database of its own.
func openPostgres(t *testing.T) *sqlstore.DB {
	t.Helper()
	u := testbed.PostgresDB(t)
	s, err := sqlstore.Open(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if s.Engine() != sqlstore.EnginePostgres {
		t.Fatalf("engine %q for %s", s.Engine(), sqlstore.Redact(u))
	}
	return s
}

func TestPostgresConformance(t *testing.T) {
	testbed.PostgresURL(t)
	storetest.Run(t, func(t *testing.T) store.Store { return openPostgres(t) })
}

func TestPostgresMigrationsAreIdempotent(t *testing.T) {
	u := testbed.PostgresDB(t)
	for i := 0; i < 2; i++ {
		s, err := sqlstore.Open(context.Background(), u)
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		v, err := s.SchemaVersion(context.Background())
		s.Close()
		if err != nil || v != sqlstore.LatestVersion() {
			t.Fatalf("open %d: schema version %d (%v), want %d", i, v, err, sqlstore.LatestVersion())
		}
	}
}
