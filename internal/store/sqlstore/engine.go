package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"strings"

	_ "github.com/jackc/pgx/v5/stdlib" // registers driver "pgx"
)

// Engine names, as used for the migrations directories.
const (
	EngineSQLite   = "sqlite"
	EnginePostgres = "postgres"
)

// migrationLockKey is the PostgreSQL advisory lock held while migrating
// (any fixed number; "knib" in ASCII).
const migrationLockKey = 0x6b6e6962

// EngineOf names the engine a database string selects: a postgres:// or
// postgresql:// URL selects PostgreSQL, anything else is a SQLite file.
func EngineOf(database string) string {
	l := strings.ToLower(database)
	if strings.HasPrefix(l, "postgres://") || strings.HasPrefix(l, "postgresql://") {
		return EnginePostgres
	}
	return EngineSQLite
}

// Open opens the database the string names (see EngineOf) and applies
// pending migrations.
func Open(ctx context.Context, database string) (*DB, error) {
	if database == "" {
		return nil, fmt.Errorf("no database given")
	}
	if EngineOf(database) == EnginePostgres {
		return OpenPostgres(ctx, database)
	}
	return OpenSQLite(ctx, database)
}

// OpenPostgres connects to the PostgreSQL database at the URL and applies
// pending migrations. The database must exist; knib creates its tables.
func OpenPostgres(ctx context.Context, dbURL string) (*DB, error) {
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		return nil, fmt.Errorf("open postgres %s: %w", Redact(dbURL), err)
	}
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(4)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to postgres %s: %w", Redact(dbURL), err)
	}
	s := &DB{db: db, engine: EnginePostgres}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// Redact returns the database string without a password, for messages and
// logs.
func Redact(database string) string {
	if EngineOf(database) != EnginePostgres {
		return database
	}
	u, err := url.Parse(database)
	if err != nil {
		return "postgres://(unparsable URL)"
	}
	return u.Redacted()
}

// Engine names the engine: EngineSQLite or EnginePostgres.
func (s *DB) Engine() string { return s.engine }

// migrationLock serialises migrations of several processes. SQLite needs
// nothing: its single connection and immediate transactions already do.
func (s *DB) migrationLock(ctx context.Context) (func(), error) {
	if s.engine != EnginePostgres {
		return func() {}, nil
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, int64(migrationLockKey)); err != nil {
		conn.Close()
		return nil, fmt.Errorf("take the migration lock: %w", err)
	}
	return func() {
		conn.ExecContext(context.Background(), `SELECT pg_advisory_unlock($1)`, int64(migrationLockKey))
		conn.Close()
	}, nil
}

// SchemaVersion is the number of the newest applied migration.
func (s *DB) SchemaVersion(ctx context.Context) (int, error) {
	var v sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return int(v.Int64), nil
}

// LatestVersion is the number of the newest migration this program carries
// (the same for every engine).
func LatestVersion() int {
	v, _ := latestVersion(EngineSQLite)
	return v
}

func latestVersion(engine string) (int, error) {
	list, err := migrationsFor(engine)
	if err != nil || len(list) == 0 {
		return 0, err
	}
	return list[len(list)-1].version, nil
}

// OpenExisting opens a knib database without creating or migrating
// anything (for export): a SQLite file must exist, and either engine must
// hold knib's schema_migrations table.
func OpenExisting(ctx context.Context, database string) (*DB, error) {
	if database == "" {
		return nil, fmt.Errorf("no database given")
	}
	var s *DB
	if EngineOf(database) == EnginePostgres {
		db, err := sql.Open("pgx", database)
		if err != nil {
			return nil, fmt.Errorf("open postgres %s: %w", Redact(database), err)
		}
		if err := db.PingContext(ctx); err != nil {
			db.Close()
			return nil, fmt.Errorf("connect to postgres %s: %w", Redact(database), err)
		}
		s = &DB{db: db, engine: EnginePostgres}
	} else {
		if _, err := os.Stat(database); err != nil {
			return nil, fmt.Errorf("no SQLite database at %s: %w", database, err)
		}
		var err error
		if s, err = openSQLiteFile(database); err != nil {
			return nil, err
		}
	}
	if _, err := s.SchemaVersion(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("%s is not a knib database: %w", Redact(database), err)
	}
	return s, nil
}
