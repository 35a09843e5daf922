package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/knib/knib/internal/clock"
)

// DumpFormat identifies the dump format (knib_dump in the JSON).
const DumpFormat = 1

// Dump is the engine-neutral copy of a catalogue that db export writes and
// db import reads: every table but schema_migrations, parents before the
// tables whose foreign keys point at them. Values are JSON null, booleans,
// numbers or strings according to the column's kind, whatever the engine
// stored, so a dump of SQLite loads into PostgreSQL and back.
type Dump struct {
	Format        int         `json:"knib_dump"`
	SchemaVersion int         `json:"schema_version"`
	Engine        string      `json:"engine"`
	Created       string      `json:"created"`
	Tables        []DumpTable `json:"tables"`
}

// DumpTable is one table's columns and rows (each row in column order).
type DumpTable struct {
	Name    string   `json:"name"`
	Columns []string `json:"columns"`
	Rows    [][]any  `json:"rows"`
}

// Column kinds, from the declared SQL types.
const (
	kindText  = "text"
	kindInt   = "integer"
	kindBool  = "boolean"
	kindFloat = "float"
)

type column struct{ name, kind string }

type table struct {
	name    string
	columns []column
	parents []string // tables this one's foreign keys point at
}

// querier is what both *sql.DB and *sql.Tx offer.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func kindOf(declared string) string {
	d := strings.ToLower(declared)
	switch {
	case strings.Contains(d, "bool"):
		return kindBool
	case strings.Contains(d, "int"):
		return kindInt
	case strings.Contains(d, "double"), strings.Contains(d, "real"), strings.Contains(d, "float"), strings.Contains(d, "numeric"):
		return kindFloat
	}
	return kindText
}

// quote makes an identifier safe to put in SQL text (both engines).
func quote(ident string) string { return `"` + strings.ReplaceAll(ident, `"`, `""`) + `"` }

func queryStrings(ctx context.Context, q querier, query string, args ...any) ([][]string, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out [][]string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		row := make([]string, len(cols))
		for i, v := range vals {
			row[i] = v.String
		}
		out = append(out, row)
	}
	return out, rows.Err()
}

// schema discovers the tables (but schema_migrations), their columns and
// foreign keys, in an order where parents come first.
func (s *DB) schema(ctx context.Context, q querier) ([]table, error) {
	var tables []table
	if s.engine == EnginePostgres {
		names, err := queryStrings(ctx, q, `SELECT table_name FROM information_schema.tables
 WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' AND table_name <> 'schema_migrations' ORDER BY table_name`)
		if err != nil {
			return nil, fmt.Errorf("list tables: %w", err)
		}
		fks, err := queryStrings(ctx, q, `SELECT cl.relname, pcl.relname FROM pg_constraint c
 JOIN pg_class cl ON cl.oid = c.conrelid JOIN pg_class pcl ON pcl.oid = c.confrelid
 JOIN pg_namespace n ON n.oid = cl.relnamespace WHERE c.contype = 'f' AND n.nspname = current_schema()`)
		if err != nil {
			return nil, fmt.Errorf("list foreign keys: %w", err)
		}
		for _, n := range names {
			t := table{name: n[0]}
			cols, err := queryStrings(ctx, q, `SELECT column_name, data_type FROM information_schema.columns
 WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position`, t.name)
			if err != nil {
				return nil, fmt.Errorf("columns of %s: %w", t.name, err)
			}
			for _, c := range cols {
				t.columns = append(t.columns, column{name: c[0], kind: kindOf(c[1])})
			}
			for _, fk := range fks {
				if fk[0] == t.name {
					t.parents = append(t.parents, fk[1])
				}
			}
			tables = append(tables, t)
		}
	} else {
		names, err := queryStrings(ctx, q, `SELECT name FROM sqlite_master WHERE type = 'table'
 AND name NOT LIKE 'sqlite\_%' ESCAPE '\' AND name <> 'schema_migrations' ORDER BY name`)
		if err != nil {
			return nil, fmt.Errorf("list tables: %w", err)
		}
		for _, n := range names {
			t := table{name: n[0]}
			cols, err := queryStrings(ctx, q, `SELECT name, type FROM pragma_table_info($1) ORDER BY cid`, t.name)
			if err != nil {
				return nil, fmt.Errorf("columns of %s: %w", t.name, err)
			}
			for _, c := range cols {
				t.columns = append(t.columns, column{name: c[0], kind: kindOf(c[1])})
			}
			fks, err := queryStrings(ctx, q, `SELECT "table" FROM pragma_foreign_key_list($1)`, t.name)
			if err != nil {
				return nil, fmt.Errorf("foreign keys of %s: %w", t.name, err)
			}
			for _, fk := range fks {
				t.parents = append(t.parents, fk[0])
			}
			tables = append(tables, t)
		}
	}
	return orderByParents(tables), nil
}

// orderByParents sorts tables so that each comes after the tables its
// foreign keys point at (self references ignored), by name otherwise. A
// cycle, which the schema does not have, leaves its tables by name.
func orderByParents(tables []table) []table {
	sort.Slice(tables, func(i, j int) bool { return tables[i].name < tables[j].name })
	placed := map[string]bool{}
	var out []table
	for len(out) < len(tables) {
		progress := false
		for _, t := range tables {
			if placed[t.name] {
				continue
			}
			ready := true
			for _, p := range t.parents {
				if p != t.name && !placed[p] && exists(tables, p) {
					ready = false
				}
			}
			if ready {
				placed[t.name] = true
				out = append(out, t)
				progress = true
				break // restart: keeps the order by name among ready tables
			}
		}
		if !progress {
			for _, t := range tables {
				if !placed[t.name] {
					placed[t.name] = true
					out = append(out, t)
				}
			}
		}
	}
	return out
}

func exists(tables []table, name string) bool {
	for _, t := range tables {
		if t.name == name {
			return true
		}
	}
	return false
}

// normalize turns what a driver returned into the JSON value of a kind.
func normalize(kind string, v any) (any, error) {
	if b, ok := v.([]byte); ok {
		v = string(b)
	}
	if v == nil {
		return nil, nil
	}
	switch kind {
	case kindBool:
		switch x := v.(type) {
		case bool:
			return x, nil
		case int64:
			return x != 0, nil
		case int32:
			return x != 0, nil
		case string:
			return strconv.ParseBool(x)
		}
	case kindInt:
		switch x := v.(type) {
		case int64:
			return x, nil
		case int32:
			return int64(x), nil
		case int16:
			return int64(x), nil
		case bool:
			if x {
				return int64(1), nil
			}
			return int64(0), nil
		case float64:
			if x == math.Trunc(x) {
				return int64(x), nil
			}
		case string:
			return strconv.ParseInt(x, 10, 64)
		}
	case kindFloat:
		switch x := v.(type) {
		case float64:
			return x, nil
		case float32:
			return float64(x), nil
		case int64:
			return float64(x), nil
		case int32:
			return float64(x), nil
		case string:
			return strconv.ParseFloat(x, 64)
		}
	default:
		switch x := v.(type) {
		case string:
			return x, nil
		case int64:
			return strconv.FormatInt(x, 10), nil
		case float64:
			return strconv.FormatFloat(x, 'g', -1, 64), nil
		case bool:
			return strconv.FormatBool(x), nil
		case time.Time:
			return fmtTime(x), nil
		}
	}
	return nil, fmt.Errorf("a %T value (%v) in a %s column", v, v, kind)
}

// fromJSON turns a decoded JSON value into the argument for a column kind.
func fromJSON(kind string, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch kind {
	case kindBool:
		if b, ok := v.(bool); ok {
			return b, nil
		}
	case kindInt:
		if n, ok := v.(json.Number); ok {
			return n.Int64()
		}
	case kindFloat:
		if n, ok := v.(json.Number); ok {
			return n.Float64()
		}
	default:
		if s, ok := v.(string); ok {
			return s, nil
		}
	}
	return nil, fmt.Errorf("a JSON %T (%v) for a %s column", v, v, kind)
}

// Export writes every table of the catalogue to w as one JSON Dump, read in
// one transaction so that it is consistent while a server runs.
func (s *DB) Export(ctx context.Context, w io.Writer) (Dump, error) {
	d := Dump{Format: DumpFormat, Engine: s.engine, Created: fmtTime(clock.Real{}.Now())}
	opts := &sql.TxOptions{}
	if s.engine == EnginePostgres {
		opts = &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}
	}
	tx, err := s.db.BeginTx(ctx, opts)
	if err != nil {
		return d, err
	}
	defer tx.Rollback()
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&d.SchemaVersion); err != nil {
		return d, fmt.Errorf("read schema version: %w", err)
	}
	tables, err := s.schema(ctx, tx)
	if err != nil {
		return d, err
	}
	for _, t := range tables {
		dt, err := exportTable(ctx, tx, t)
		if err != nil {
			return d, err
		}
		d.Tables = append(d.Tables, dt)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	if err := enc.Encode(d); err != nil {
		return d, fmt.Errorf("write the dump: %w", err)
	}
	return d, nil
}

func exportTable(ctx context.Context, tx *sql.Tx, t table) (DumpTable, error) {
	dt := DumpTable{Name: t.name, Rows: [][]any{}}
	var sel, order []string
	for i, c := range t.columns {
		dt.Columns = append(dt.Columns, c.name)
		sel = append(sel, quote(c.name))
		order = append(order, strconv.Itoa(i+1))
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+strings.Join(sel, ", ")+` FROM `+quote(t.name)+` ORDER BY `+strings.Join(order, ", "))
	if err != nil {
		return dt, fmt.Errorf("read %s: %w", t.name, err)
	}
	defer rows.Close()
	for rows.Next() {
		vals := make([]any, len(t.columns))
		ptrs := make([]any, len(vals))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return dt, fmt.Errorf("read %s: %w", t.name, err)
		}
		for i, c := range t.columns {
			if vals[i], err = normalize(c.kind, vals[i]); err != nil {
				return dt, fmt.Errorf("table %s column %s: %w", t.name, c.name, err)
			}
		}
		dt.Rows = append(dt.Rows, vals)
	}
	return dt, rows.Err()
}

// ReadDump decodes a dump, numbers kept exact.
func ReadDump(r io.Reader) (Dump, error) {
	var d Dump
	dec := json.NewDecoder(r)
	dec.UseNumber()
	if err := dec.Decode(&d); err != nil {
		return d, fmt.Errorf("not a knib dump: %w", err)
	}
	if d.Format != DumpFormat {
		return d, fmt.Errorf("not a knib dump (format %d, want %d)", d.Format, DumpFormat)
	}
	return d, nil
}

// ErrNotEmpty is returned by Import when the target already holds data.
var ErrNotEmpty = errors.New("the target database is not empty")

// Import loads a dump into this database, which must be empty (migrations
// applied, no rows) and at the dump's schema version. It runs in one
// transaction: on any error nothing is loaded. It returns the number of
// rows loaded per table.
func (s *DB) Import(ctx context.Context, d Dump) (map[string]int, error) {
	counts := map[string]int{}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var version int
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&version); err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		if d.SchemaVersion != version {
			return fmt.Errorf("the dump has schema version %d and the target database %d: export and import with the same knib version", d.SchemaVersion, version)
		}
		tables, err := s.schema(ctx, tx)
		if err != nil {
			return err
		}
		byName := map[string]table{}
		for _, t := range tables {
			byName[t.name] = t
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+quote(t.name)).Scan(&n); err != nil {
				return fmt.Errorf("count %s: %w", t.name, err)
			}
			if n > 0 {
				return fmt.Errorf("%w: table %s has %d row(s); import needs a new, empty database", ErrNotEmpty, t.name, n)
			}
		}
		dumped := map[string]DumpTable{}
		for _, dt := range d.Tables {
			if _, ok := byName[dt.Name]; !ok {
				return fmt.Errorf("the dump has a table %q the target database does not have", dt.Name)
			}
			if _, dup := dumped[dt.Name]; dup {
				return fmt.Errorf("the dump has table %q twice", dt.Name)
			}
			dumped[dt.Name] = dt
		}
		// The target's order: parents first.
		for _, t := range tables {
			dt, ok := dumped[t.name]
			if !ok {
				continue
			}
			n, err := importTable(ctx, tx, t, dt)
			if err != nil {
				return err
			}
			counts[t.name] = n
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return counts, nil
}

func importTable(ctx context.Context, tx *sql.Tx, t table, dt DumpTable) (int, error) {
	kinds := map[string]string{}
	for _, c := range t.columns {
		kinds[c.name] = c.kind
	}
	var cols, marks []string
	seen := map[string]bool{}
	for i, name := range dt.Columns {
		if _, ok := kinds[name]; !ok {
			return 0, fmt.Errorf("table %s: the dump has a column %q the target database does not have", t.name, name)
		}
		if seen[name] {
			return 0, fmt.Errorf("table %s: column %q twice in the dump", t.name, name)
		}
		seen[name] = true
		cols = append(cols, quote(name))
		marks = append(marks, "$"+strconv.Itoa(i+1))
	}
	if len(dt.Rows) == 0 {
		return 0, nil
	}
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO `+quote(t.name)+`(`+strings.Join(cols, ", ")+`) VALUES (`+strings.Join(marks, ", ")+`)`)
	if err != nil {
		return 0, fmt.Errorf("table %s: %w", t.name, err)
	}
	defer stmt.Close()
	for r, row := range dt.Rows {
		if len(row) != len(dt.Columns) {
			return 0, fmt.Errorf("table %s row %d: %d values for %d columns", t.name, r+1, len(row), len(dt.Columns))
		}
		args := make([]any, len(row))
		for i, v := range row {
			if args[i], err = fromJSON(kinds[dt.Columns[i]], v); err != nil {
				return 0, fmt.Errorf("table %s row %d column %s: %w", t.name, r+1, dt.Columns[i], err)
			}
		}
		if _, err := stmt.ExecContext(ctx, args...); err != nil {
			return 0, fmt.Errorf("table %s row %d: %w", t.name, r+1, err)
		}
	}
	return len(dt.Rows), nil
}
