package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/store"
)

const vmCols = `id, name, host_id, state, work_state, account_id, offering_id, disks, seen, busy, chain_head, last_error, vcpus, memory_bytes`

func scanVM(r scanner) (domain.VM, error) {
	var v domain.VM
	var state, work, disks, seen string
	var offering sql.NullString
	var mem int64
	if err := r.Scan(&v.ID, &v.Name, &v.HostID, &state, &work, &v.AccountID, &offering, &disks, &seen, &v.Busy, &v.ChainHead, &v.LastError, &v.VCPUs, &mem); err != nil {
		return v, err
	}
	v.State, v.WorkState, v.OfferingID = domain.VMState(state), domain.VMState(work), offering.String
	v.Seen, v.MemoryBytes = parseTime(seen), uint64(mem)
	if err := json.Unmarshal([]byte(disks), &v.Disks); err != nil {
		return v, fmt.Errorf("vm %s disks: %w", v.Name, err)
	}
	return v, nil
}

// SyncHostVMs records what a host reports (see store.Store).
func (s *DB) SyncHostVMs(ctx context.Context, hostID string, vms []domain.VM, defaultAccountID string, at time.Time) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		for _, v := range vms {
			disks, err := json.Marshal(v.Disks)
			if err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx, `INSERT INTO vms(`+vmCols+`) VALUES ($1,$2,$3,$4,'',$5,NULL,$6,$7,'','','',$8,$9)
ON CONFLICT (id) DO UPDATE SET name=excluded.name, host_id=excluded.host_id, state=excluded.state, disks=excluded.disks, seen=excluded.seen,
  vcpus=excluded.vcpus, memory_bytes=excluded.memory_bytes
WHERE vms.seen <= excluded.seen`,
				v.ID, v.Name, hostID, string(v.State), defaultAccountID, string(disks), fmtTime(at), v.VCPUs, int64(v.MemoryBytes))
			if err != nil {
				return fmt.Errorf("record vm %s: %w", v.Name, err)
			}
		}
		_, err := tx.ExecContext(ctx, `UPDATE vms SET state = $2 WHERE host_id = $1 AND seen < $3`, hostID, string(domain.VMMissing), fmtTime(at))
		return err
	})
}

// RecordVMDisks records one VM's state and disks (see store.Store).
func (s *DB) RecordVMDisks(ctx context.Context, vmID string, state domain.VMState, disks []domain.Disk, at time.Time) error {
	raw, err := json.Marshal(disks)
	if err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx, `UPDATE vms SET state = $2, disks = $3, seen = $4 WHERE id = $1`, vmID, string(state), string(raw), fmtTime(at))
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound("vm", vmID)
	}
	return nil
}

// vmByRef reads the VMs whose id or name is the reference (through the
// primary key and vms_name).
const vmByRef = `SELECT ` + vmCols + ` FROM vms WHERE id = $1 OR name = $1 ORDER BY (id = $1) DESC`

// VM finds a VM by uuid or name. Names are unique per host only; when several
// VMs share a name the reference is ambiguous and ErrConflict is returned.
func (s *DB) VM(ctx context.Context, ref string) (domain.VM, error) {
	rows, err := s.db.QueryContext(ctx, vmByRef, ref)
	if err != nil {
		return domain.VM{}, err
	}
	defer rows.Close()
	var found []domain.VM
	for rows.Next() {
		v, err := scanVM(rows)
		if err != nil {
			return v, err
		}
		found = append(found, v)
	}
	if err := rows.Err(); err != nil {
		return domain.VM{}, err
	}
	switch {
	case len(found) == 0:
		return domain.VM{}, notFound("vm", ref)
	case found[0].ID == ref || len(found) == 1:
		return found[0], nil
	}
	// A name reused after a VM was deleted: the defined one wins.
	var live []domain.VM
	for _, v := range found {
		if v.State != domain.VMMissing {
			live = append(live, v)
		}
	}
	if len(live) == 1 {
		return live[0], nil
	}
	return domain.VM{}, fmt.Errorf("%d VMs are named %q; use the uuid: %w", len(found), ref, domain.ErrConflict)
}

// vmsQuery is ListVMs' statement: ordered by name through vms_name,
// vms_account or vms_host.
func vmsQuery(f store.VMFilter, engine string) (string, []any) {
	var q query
	q.eq("account_id", f.AccountID)
	q.eq("host_id", f.HostID)
	if f.UsingPath != "" {
		// A plain substring test: the disks column is JSON text, and the
		// caller confirms each match with domain.VM.DependsOn.
		find := "instr(disks, "
		if engine == EnginePostgres {
			find = "strpos(disks, "
		}
		q.where(find + q.arg(f.UsingPath) + ") > 0")
	}
	if f.After != nil {
		q.after("name", f.After.Name, "id", f.After.ID, false)
	}
	return q.sql(vmCols, "vms", "name, id", f.Limit), q.args
}

// ListVMs returns VMs matching f, by name.
func (s *DB) ListVMs(ctx context.Context, f store.VMFilter) ([]domain.VM, error) {
	stmt, args := vmsQuery(f, s.engine)
	rows, err := s.db.QueryContext(ctx, stmt, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []domain.VM
	for rows.Next() {
		v, err := scanVM(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// HostsOfVMs maps VM ids to host ids, 500 ids per query.
func (s *DB) HostsOfVMs(ctx context.Context, vmIDs []string) (map[string]string, error) {
	out := map[string]string{}
	for len(vmIDs) > 0 {
		n := min(len(vmIDs), 500)
		stmt, args := hostsOfVMsQuery(vmIDs[:n])
		vmIDs = vmIDs[n:]
		rows, err := s.db.QueryContext(ctx, stmt, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id, host string
			if err := rows.Scan(&id, &host); err != nil {
				rows.Close()
				return nil, err
			}
			out[id] = host
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func hostsOfVMsQuery(ids []string) (string, []any) {
	var q query
	marks := make([]string, len(ids))
	for i, id := range ids {
		marks[i] = q.arg(id)
	}
	return `SELECT id, host_id FROM vms WHERE id IN (` + strings.Join(marks, ", ") + `)`, q.args
}

func (s *DB) updateVM(ctx context.Context, vmID, set string, arg any) error {
	res, err := s.db.ExecContext(ctx, `UPDATE vms SET `+set+` = $2 WHERE id = $1`, vmID, arg)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound("vm", vmID)
	}
	return nil
}

// SetVMOffering assigns or unassigns a VM.
func (s *DB) SetVMOffering(ctx context.Context, vmID, offeringID string) error {
	if offeringID == "" {
		return s.updateVM(ctx, vmID, "offering_id", nil)
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM offerings WHERE id = $1 AND removed IS NULL`, offeringID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return notFound("offering", offeringID)
		}
		res, err := tx.ExecContext(ctx, `UPDATE vms SET offering_id = $2 WHERE id = $1`, vmID, offeringID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return notFound("vm", vmID)
		}
		return nil
	})
}

// SetVMOwner changes the owning account.
func (s *DB) SetVMOwner(ctx context.Context, vmID, accountID string) error {
	return s.updateVM(ctx, vmID, "account_id", accountID)
}

// SetVMWorkState sets knib's own state of the VM ("" when idle).
func (s *DB) SetVMWorkState(ctx context.Context, vmID string, st domain.VMState) error {
	return s.updateVM(ctx, vmID, "work_state", string(st))
}
