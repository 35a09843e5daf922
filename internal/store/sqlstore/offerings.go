package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/store"
)

const offeringCols = `id, name, description, compress, validate, validation_steps, allow_quick_restore, allow_extract_file, backup_chain_size, compression_library, created, removed, storage_tag`

func scanOffering(r scanner) (domain.Offering, error) {
	var o domain.Offering
	var steps, lib, created string
	var chain sql.NullInt64
	var removed sql.NullString
	err := r.Scan(&o.ID, &o.Name, &o.Description, &o.Compress, &o.Validate, &steps, &o.AllowQuickRestore, &o.AllowExtractFile, &chain, &lib, &created, &removed, &o.StorageTag)
	if err != nil {
		return o, err
	}
	if steps != "" {
		for _, s := range strings.Split(steps, ",") {
			o.ValidationSteps = append(o.ValidationSteps, domain.ValidationStep(s))
		}
	}
	if chain.Valid {
		n := int(chain.Int64)
		o.BackupChainSize = &n
	}
	o.CompressionLibrary = domain.CompressionLibrary(lib)
	o.Created = parseTime(created)
	if removed.Valid {
		t := parseTime(removed.String)
		o.Removed = &t
	}
	return o, nil
}

// CreateOffering inserts an offering; ErrConflict when a live offering has the name.
func (s *DB) CreateOffering(ctx context.Context, o domain.Offering) error {
	steps := make([]string, len(o.ValidationSteps))
	for i, st := range o.ValidationSteps {
		steps[i] = string(st)
	}
	var chain sql.NullInt64
	if o.BackupChainSize != nil {
		chain = sql.NullInt64{Int64: int64(*o.BackupChainSize), Valid: true}
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO offerings(`+offeringCols+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,NULL,$12)`,
		o.ID, o.Name, o.Description, o.Compress, o.Validate, strings.Join(steps, ","), o.AllowQuickRestore, o.AllowExtractFile,
		chain, string(o.CompressionLibrary), fmtTime(o.Created), o.StorageTag)
	if isUnique(err) {
		return fmt.Errorf("an offering named %q exists already: %w", o.Name, domain.ErrConflict)
	}
	return err
}

// Offering finds an offering by id, removed or not.
func (s *DB) Offering(ctx context.Context, id string) (domain.Offering, error) {
	o, err := scanOffering(s.db.QueryRowContext(ctx, `SELECT `+offeringCols+` FROM offerings WHERE id = $1`, id))
	if noRows(err) {
		return o, notFound("offering", id)
	}
	return o, err
}

// ListOfferings returns offerings matching f, by name.
func (s *DB) ListOfferings(ctx context.Context, f store.OfferingFilter) ([]domain.Offering, error) {
	q := `SELECT ` + offeringCols + ` FROM offerings WHERE 1=1`
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		q += fmt.Sprintf(" AND "+cond, len(args))
	}
	if f.ID != "" {
		add("id = $%d", f.ID)
	}
	if !f.ShowRemoved {
		q += " AND removed IS NULL"
	}
	for _, c := range []struct {
		on  bool
		col string
	}{{f.Compress, "compress"}, {f.Validate, "validate"}, {f.AllowQuickRestore, "allow_quick_restore"}, {f.AllowExtractFile, "allow_extract_file"}} {
		if c.on {
			add(c.col+" = $%d", true)
		}
	}
	q += " ORDER BY name, created"
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []domain.Offering
	for rows.Next() {
		o, err := scanOffering(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// RemoveOffering marks a live offering removed unless VMs are assigned to it.
func (s *DB) RemoveOffering(ctx context.Context, id string, at time.Time) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM offerings WHERE id = $1 AND removed IS NULL`, id).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return notFound("offering", id)
		}
		var names []string
		rows, err := tx.QueryContext(ctx, `SELECT name FROM vms WHERE offering_id = $1 ORDER BY name`, id)
		if err != nil {
			return err
		}
		for rows.Next() {
			var name string
			if err := rows.Scan(&name); err != nil {
				rows.Close()
				return err
			}
			names = append(names, name)
		}
		rows.Close()
		if len(names) > 0 {
			return fmt.Errorf("offering %s is assigned to %d VM(s) (%s); unassign them first: %w", id, len(names), strings.Join(names, ", "), domain.ErrConflict)
		}
		_, err = tx.ExecContext(ctx, `UPDATE offerings SET removed = $2 WHERE id = $1`, id, fmtTime(at))
		return err
	})
}
