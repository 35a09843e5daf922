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
//
// Export and Import stream it: a dump of a million backups never sits in
// memory. The streamed form is this struct's JSON with its fields in this
// order (the header before the tables; in a table, name and columns before
// the rows), which encoding/json writes too.
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

// DumpSummary is what an export wrote or an import loaded.
type DumpSummary struct {
	Engine        string
	SchemaVersion int
	Rows          map[string]int // per table
}

// Export writes every table of the catalogue to w as one JSON Dump, read in
// one transaction so that it is consistent while a server runs. Rows are
// written as they are read.
func (s *DB) Export(ctx context.Context, w io.Writer) (DumpSummary, error) {
	sum := DumpSummary{Engine: s.engine, Rows: map[string]int{}}
	opts := &sql.TxOptions{}
	if s.engine == EnginePostgres {
		opts = &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}
	}
	tx, err := s.db.BeginTx(ctx, opts)
	if err != nil {
		return sum, err
	}
	defer tx.Rollback()
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&sum.SchemaVersion); err != nil {
		return sum, fmt.Errorf("read schema version: %w", err)
	}
	tables, err := s.schema(ctx, tx)
	if err != nil {
		return sum, err
	}
	jw := &jsonWriter{w: w}
	jw.raw(`{"knib_dump":`)
	jw.value(DumpFormat)
	jw.raw(`,"schema_version":`)
	jw.value(sum.SchemaVersion)
	jw.raw(`,"engine":`)
	jw.value(s.engine)
	jw.raw(`,"created":`)
	jw.value(fmtTime(clock.Real{}.Now()))
	jw.raw(`,"tables":[`)
	for i, t := range tables {
		if i > 0 {
			jw.raw(",")
		}
		n, err := exportTable(ctx, tx, t, jw)
		if err != nil {
			return sum, err
		}
		sum.Rows[t.name] = n
	}
	jw.raw("]}\n")
	if jw.err != nil {
		return sum, fmt.Errorf("write the dump: %w", jw.err)
	}
	return sum, nil
}

// jsonWriter writes JSON pieces and keeps the first error.
type jsonWriter struct {
	w   io.Writer
	err error
}

func (j *jsonWriter) raw(s string) {
	if j.err == nil {
		_, j.err = io.WriteString(j.w, s)
	}
}

func (j *jsonWriter) value(v any) {
	if j.err != nil {
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		j.err = err
		return
	}
	_, j.err = j.w.Write(b)
}

func exportTable(ctx context.Context, tx *sql.Tx, t table, jw *jsonWriter) (int, error) {
	var names, sel, order []string
	for i, c := range t.columns {
		names = append(names, c.name)
		sel = append(sel, quote(c.name))
		order = append(order, strconv.Itoa(i+1))
	}
	jw.raw("\n{\"name\":")
	jw.value(t.name)
	jw.raw(`,"columns":`)
	jw.value(names)
	jw.raw(`,"rows":[`)
	rows, err := tx.QueryContext(ctx, `SELECT `+strings.Join(sel, ", ")+` FROM `+quote(t.name)+` ORDER BY `+strings.Join(order, ", "))
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", t.name, err)
	}
	defer rows.Close()
	n := 0
	vals := make([]any, len(t.columns))
	ptrs := make([]any, len(vals))
	for rows.Next() {
		for i := range vals {
			vals[i] = nil
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return n, fmt.Errorf("read %s: %w", t.name, err)
		}
		for i, c := range t.columns {
			if vals[i], err = normalize(c.kind, vals[i]); err != nil {
				return n, fmt.Errorf("table %s column %s: %w", t.name, c.name, err)
			}
		}
		if n > 0 {
			jw.raw(",")
		}
		jw.raw("\n")
		jw.value(vals)
		n++
		if jw.err != nil {
			return n, fmt.Errorf("write the dump: %w", jw.err)
		}
	}
	jw.raw("]}")
	return n, rows.Err()
}

// ReadDump decodes a whole dump in memory, numbers kept exact (for small
// dumps and tests; Import streams).
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

// dumpReader walks a streamed dump with a JSON token decoder.
type dumpReader struct {
	dec *json.Decoder
}

func (d *dumpReader) delim(want json.Delim) error {
	tok, err := d.dec.Token()
	if err != nil {
		return fmt.Errorf("not a knib dump: %w", err)
	}
	if got, ok := tok.(json.Delim); !ok || got != want {
		return fmt.Errorf("not a knib dump: want %q, got %v", want, tok)
	}
	return nil
}

// key reads the next key of an object; "" at its end (the closing brace
// read).
func (d *dumpReader) key() (string, error) {
	if !d.dec.More() {
		if _, err := d.dec.Token(); err != nil {
			return "", fmt.Errorf("not a knib dump: %w", err)
		}
		return "", nil
	}
	tok, err := d.dec.Token()
	if err != nil {
		return "", fmt.Errorf("not a knib dump: %w", err)
	}
	k, ok := tok.(string)
	if !ok {
		return "", fmt.Errorf("not a knib dump: want a key, got %v", tok)
	}
	return k, nil
}

// Import loads a streamed dump into this database, which must be empty
// (migrations applied, no rows) and at the dump's schema version. It runs
// in one transaction: on any error nothing is loaded. Rows go in by
// batches of several hundred per statement. It returns the number of rows
// loaded per table.
func (s *DB) Import(ctx context.Context, r io.Reader) (map[string]int, error) {
	d := &dumpReader{dec: json.NewDecoder(r)}
	d.dec.UseNumber()
	if err := d.delim('{'); err != nil {
		return nil, err
	}
	format, version := 0, -1
	for {
		k, err := d.key()
		if err != nil {
			return nil, err
		}
		switch k {
		case "":
			return nil, fmt.Errorf("not a knib dump: no tables")
		case "knib_dump":
			err = d.dec.Decode(&format)
		case "schema_version":
			err = d.dec.Decode(&version)
		case "engine", "created":
			var skip string
			err = d.dec.Decode(&skip)
		case "tables":
			if format != DumpFormat {
				return nil, fmt.Errorf("not a knib dump (format %d, want %d; knib_dump comes first)", format, DumpFormat)
			}
			if version < 0 {
				return nil, fmt.Errorf("not a knib dump: schema_version must come before the tables")
			}
			return s.importTables(ctx, d, version)
		default:
			return nil, fmt.Errorf("not a knib dump: unknown field %q", k)
		}
		if err != nil {
			return nil, fmt.Errorf("not a knib dump: field %s: %w", k, err)
		}
	}
}

// index is a secondary index: its name and the statement that creates it.
type index struct{ name, create string }

// secondaryIndexes lists the indexes that are not a table's primary key or
// a unique constraint (those stay: they check the rows as they come).
func (s *DB) secondaryIndexes(ctx context.Context, tx *sql.Tx) ([]index, error) {
	q := `SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL ORDER BY name`
	if s.engine == EnginePostgres {
		q = `SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()
 AND indexname NOT IN (SELECT conname FROM pg_constraint) ORDER BY indexname`
	}
	rows, err := queryStrings(ctx, tx, q)
	if err != nil {
		return nil, fmt.Errorf("list indexes: %w", err)
	}
	out := make([]index, 0, len(rows))
	for _, r := range rows {
		out = append(out, index{name: r[0], create: r[1]})
	}
	return out, nil
}

// importCache is SQLite's page cache during an import, in KiB: the load
// rewrites the same pages of the growing tables, which a small cache spills
// to the WAL again and again.
const importCache = 64 << 10

func (s *DB) importTables(ctx context.Context, d *dumpReader, dumpVersion int) (map[string]int, error) {
	counts := map[string]int{}
	if s.engine == EngineSQLite {
		if _, err := s.db.ExecContext(ctx, `PRAGMA cache_size = -`+strconv.Itoa(importCache)); err != nil {
			return nil, err
		}
		defer s.db.ExecContext(context.WithoutCancel(ctx), `PRAGMA cache_size = -2000`)
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var version int
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&version); err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		if dumpVersion != version {
			return fmt.Errorf("the dump has schema version %d and the target database %d: export and import with the same knib version", dumpVersion, version)
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
		// A bulk load builds each secondary index once at the end, not a
		// row at a time: dropped here, created again below, all inside the
		// transaction.
		indexes, err := s.secondaryIndexes(ctx, tx)
		if err != nil {
			return err
		}
		for _, ix := range indexes {
			if _, err := tx.ExecContext(ctx, `DROP INDEX `+quote(ix.name)); err != nil {
				return fmt.Errorf("drop index %s for the load: %w", ix.name, err)
			}
		}
		if err := d.delim('['); err != nil {
			return err
		}
		for d.dec.More() {
			name, n, err := importTable(ctx, tx, s.engine, d, byName, counts)
			if err != nil {
				return err
			}
			counts[name] = n
		}
		if err := d.delim(']'); err != nil {
			return err
		}
		for _, ix := range indexes {
			if _, err := tx.ExecContext(ctx, ix.create); err != nil {
				return fmt.Errorf("index %s: %w", ix.name, err)
			}
		}
		if s.engine == EnginePostgres {
			// Fresh tables have no statistics until autovacuum comes by:
			// without them the planner guesses, and a page of one VM's
			// backups takes ten times longer.
			if _, err := tx.ExecContext(ctx, `ANALYZE`); err != nil {
				return fmt.Errorf("analyze the loaded tables: %w", err)
			}
		}
		if k, err := d.key(); err != nil || k != "" {
			return fmt.Errorf("not a knib dump: the tables must come last (then %q, %v)", k, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if s.engine == EnginePostgres {
		// Freshly loaded rows are not yet marked all-visible: until
		// (auto)vacuum comes by, every index-only scan (the dashboard's
		// aggregate, for one) still reads the table. VACUUM cannot run in
		// a transaction, so it runs after the commit; the data is in.
		if _, err := s.db.ExecContext(ctx, `VACUUM`); err != nil {
			return nil, fmt.Errorf("vacuum the loaded tables: %w", err)
		}
	}
	return counts, nil
}

// maxParams bounds the parameters of one INSERT (SQLite allows 32766,
// PostgreSQL 65535).
const maxParams = 30000

// importTable loads one table object of the dump: name and columns first,
// then its rows, inserted by batches.
func importTable(ctx context.Context, tx *sql.Tx, engine string, d *dumpReader, byName map[string]table, done map[string]int) (string, int, error) {
	if err := d.delim('{'); err != nil {
		return "", 0, err
	}
	var name string
	var columns []string
	var t table
	n := 0
	for {
		k, err := d.key()
		if err != nil {
			return name, n, err
		}
		switch k {
		case "":
			if name == "" {
				return name, n, fmt.Errorf("not a knib dump: a table without a name")
			}
			return name, n, nil
		case "name":
			if err := d.dec.Decode(&name); err != nil {
				return name, n, fmt.Errorf("not a knib dump: table name: %w", err)
			}
			var ok bool
			if t, ok = byName[name]; !ok {
				return name, n, fmt.Errorf("the dump has a table %q the target database does not have", name)
			}
			if _, dup := done[name]; dup {
				return name, n, fmt.Errorf("the dump has table %q twice", name)
			}
		case "columns":
			if name == "" {
				return name, n, fmt.Errorf("not a knib dump: a table's name must come before its columns")
			}
			if err := d.dec.Decode(&columns); err != nil {
				return name, n, fmt.Errorf("not a knib dump: columns of %s: %w", name, err)
			}
		case "rows":
			if name == "" || columns == nil {
				return name, n, fmt.Errorf("not a knib dump: table %s: name and columns must come before the rows", name)
			}
			if n, err = importRows(ctx, tx, engine, d, t, columns); err != nil {
				return name, n, err
			}
		default:
			return name, n, fmt.Errorf("not a knib dump: table %s: unknown field %q", name, k)
		}
	}
}

func importRows(ctx context.Context, tx *sql.Tx, engine string, d *dumpReader, t table, columns []string) (int, error) {
	kinds := map[string]string{}
	for _, c := range t.columns {
		kinds[c.name] = c.kind
	}
	var cols []string
	seen := map[string]bool{}
	for _, name := range columns {
		if _, ok := kinds[name]; !ok {
			return 0, fmt.Errorf("table %s: the dump has a column %q the target database does not have", t.name, name)
		}
		if seen[name] {
			return 0, fmt.Errorf("table %s: column %q twice in the dump", t.name, name)
		}
		seen[name] = true
		cols = append(cols, quote(name))
	}
	if len(columns) == 0 {
		return 0, fmt.Errorf("table %s: no columns", t.name)
	}
	perStmt := max(1, min(500, maxParams/len(columns)))
	head := `INSERT INTO ` + quote(t.name) + `(` + strings.Join(cols, ", ") + `) VALUES `
	var args []any
	var values strings.Builder
	rowsInBatch, n := 0, 0
	flush := func() error {
		if rowsInBatch == 0 {
			return nil
		}
		if _, err := tx.ExecContext(ctx, head+values.String(), args...); err != nil {
			return fmt.Errorf("table %s rows %d to %d: %w", t.name, n-rowsInBatch+1, n, err)
		}
		args, rowsInBatch = args[:0], 0
		values.Reset()
		return nil
	}
	if err := d.delim('['); err != nil {
		return 0, err
	}
	var row []any
	for d.dec.More() {
		row = row[:0]
		if err := d.dec.Decode(&row); err != nil {
			return n, fmt.Errorf("not a knib dump: table %s row %d: %w", t.name, n+1, err)
		}
		n++
		if len(row) != len(columns) {
			return n, fmt.Errorf("table %s row %d: %d values for %d columns", t.name, n, len(row), len(columns))
		}
		if rowsInBatch > 0 {
			values.WriteString(", ")
		}
		values.WriteByte('(')
		for i, v := range row {
			a, err := fromJSON(kinds[columns[i]], v)
			if err != nil {
				return n, fmt.Errorf("table %s row %d column %s: %w", t.name, n, columns[i], err)
			}
			args = append(args, a)
			if i > 0 {
				values.WriteString(", ")
			}
			if engine == EngineSQLite {
				// SQLite looks a numbered parameter up by name, which is
				// quadratic in a statement of thousands of them.
				values.WriteByte('?')
			} else {
				values.WriteString("$" + strconv.Itoa(len(args)))
			}
		}
		values.WriteByte(')')
		rowsInBatch++
		if rowsInBatch == perStmt {
			if err := flush(); err != nil {
				return n, err
			}
		}
	}
	if err := d.delim(']'); err != nil {
		return n, err
	}
	return n, flush()
}
