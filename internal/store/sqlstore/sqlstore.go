package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/knib/knib/internal/clock"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/store"

	_ "modernc.org/sqlite" // registers driver "sqlite"
)

//go:embed migrations
var migrations embed.FS

// timeFormat is fixed-width so that TEXT comparison orders times correctly.
const timeFormat = "2006-01-02T15:04:05.000000000Z"

func fmtTime(t time.Time) string { return t.UTC().Format(timeFormat) }

func parseTime(s string) time.Time {
	t, err := time.Parse(timeFormat, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

// DB is a store.Store backed by a SQL database.
type DB struct {
	db     *sql.DB
	engine string
}

var _ store.Store = (*DB)(nil)

// OpenSQLite opens (creating if needed) the SQLite database at file and
// applies pending migrations.
func OpenSQLite(ctx context.Context, file string) (*DB, error) {
	s, err := openSQLiteFile(file)
	if err != nil {
		return nil, err
	}
	db := s.db
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	// The catalogue is private to the server.
	for _, f := range []string{file, file + "-wal", file + "-shm"} {
		if err := os.Chmod(f, 0o600); err != nil && !errors.Is(err, os.ErrNotExist) {
			db.Close()
			return nil, err
		}
	}
	return s, nil
}

func openSQLiteFile(file string) (*DB, error) {
	// The path is part of a URI: a '#' or '?' in it would cut it short
	// (and open another file), so they and '%' are escaped.
	path := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(file)
	dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", file, err)
	}
	// One writer at a time is SQLite's model; a single connection also makes
	// every transaction serializable, which the job claims rely on.
	db.SetMaxOpenConns(1)
	return &DB{db: db, engine: EngineSQLite}, nil
}

// Close closes the database.
func (s *DB) Close() error { return s.db.Close() }

func (s *DB) migrate(ctx context.Context) error {
	// Several servers may start at once on one PostgreSQL: one migrates,
	// the others wait and then find nothing to do.
	unlock, err := s.migrationLock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied TEXT NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	list, err := migrationsFor(s.engine)
	if err != nil {
		return err
	}
	for _, m := range list {
		version := m.version
		var n int
		if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = $1`, version).Scan(&n); err != nil {
			return fmt.Errorf("check migration %d: %w", version, err)
		}
		if n > 0 {
			continue
		}
		err = s.tx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, m.body); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations(version, applied) VALUES ($1, $2)`, version, fmtTime(clock.Real{}.Now()))
			return err
		})
		if err != nil {
			return fmt.Errorf("apply migration %s: %w", m.name, err)
		}
	}
	return nil
}

func (s *DB) tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// isUnique reports whether err is a unique-constraint violation.
func isUnique(err error) bool {
	if err == nil {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505" // unique_violation
	}
	m := strings.ToLower(err.Error())
	return strings.Contains(m, "unique constraint") || strings.Contains(m, "duplicate key")
}

func notFound(what, ref string) error {
	return fmt.Errorf("%s %q: %w", what, ref, domain.ErrNotFound)
}

func noRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }
