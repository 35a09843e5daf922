package testbed

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers driver "pgx"
)

// EnvPostgresURL names the PostgreSQL the tests use; without it they read
// PostgresURLFile (written by scripts/setup-postgres.sh).
const EnvPostgresURL = "KNIB_TEST_POSTGRES_URL"

// PostgresURLFile holds the URL of the knib role's database.
const PostgresURLFile = "/etc/knib/postgres.url"

// PostgresURL returns the URL of the test PostgreSQL (role knib, CREATEDB).
// When none is configured or it does not answer, the test skips, or fails
// under KNIB_TEST_REQUIRE_INFRA=1.
func PostgresURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvPostgresURL)
	if u == "" {
		raw, err := os.ReadFile(PostgresURLFile)
		if err != nil {
			unavailablePG(t, fmt.Sprintf("no PostgreSQL: %s unset and %v", EnvPostgresURL, err))
			return ""
		}
		u = strings.TrimSpace(string(raw))
	}
	db, err := sql.Open("pgx", u)
	if err != nil {
		unavailablePG(t, fmt.Sprintf("PostgreSQL URL: %v", err))
		return ""
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		unavailablePG(t, fmt.Sprintf("PostgreSQL does not answer: %v", err))
		return ""
	}
	return u
}

func unavailablePG(t testing.TB, reason string) {
	t.Helper()
	if os.Getenv(EnvRequireInfra) == "1" {
		t.Fatalf("testbed: infrastructure missing (%s=1): %s", EnvRequireInfra, reason)
	}
	t.Skipf("testbed: infra skip: %s (run scripts/setup-postgres.sh as root; set %s=1 to fail instead)", reason, EnvRequireInfra)
}

// PostgresDB creates a fresh, empty database for the test (C collation,
// like scripts/setup-postgres.sh makes) and drops it when the test ends.
// It returns the database's URL.
func PostgresDB(t testing.TB) string {
	t.Helper()
	base := PostgresURL(t)
	if base == "" {
		return ""
	}
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	// Lower-case letters, digits and _ only: safe as an identifier.
	name := "knib_test_" + hex.EncodeToString(b[:])
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, `CREATE DATABASE `+name+` TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'`); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("pgx", base)
		if err != nil {
			t.Errorf("drop test database %s: %v", name, err)
			return
		}
		defer db.Close()
		if _, err := db.ExecContext(context.Background(), `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}
