package sqlstore_test

import (
	"bytes"
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

// Servers starting together on a new PostgreSQL database migrate it once.
func TestPostgresConcurrentMigrations(t *testing.T) {
	u := testbed.PostgresDB(t)
	const n = 6
	errs := make(chan error, n)
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		go func() {
			<-start
			s, err := sqlstore.Open(context.Background(), u)
			if err == nil {
				s.Close()
			}
			errs <- err
		}()
	}
	close(start)
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Errorf("open %d: %v", i, err)
		}
	}
	s, err := sqlstore.OpenExisting(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var buf bytes.Buffer
	d, err := s.Export(context.Background(), &buf)
	if err != nil || d.SchemaVersion != sqlstore.LatestVersion() {
		t.Fatalf("schema version %d (%v)", d.SchemaVersion, err)
	}
}
