package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/knib/knib/internal/domain"
)

// EnsureZone returns the zone with that name, creating it when absent.
func (s *DB) EnsureZone(ctx context.Context, name string) (domain.Zone, error) {
	z, err := s.Zone(ctx, name)
	if err == nil {
		return z, nil
	}
	z = domain.Zone{ID: domain.NewID(), Name: name}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO zones(id, name) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`, z.ID, z.Name); err != nil {
		return z, fmt.Errorf("create zone %s: %w", name, err)
	}
	return s.Zone(ctx, name)
}

// Zone finds a zone by id or name.
func (s *DB) Zone(ctx context.Context, ref string) (domain.Zone, error) {
	var z domain.Zone
	err := s.db.QueryRowContext(ctx, `SELECT id, name FROM zones WHERE id = $1 OR name = $1 ORDER BY (id = $1) DESC LIMIT 1`, ref).Scan(&z.ID, &z.Name)
	if noRows(err) {
		return z, notFound("zone", ref)
	}
	return z, err
}

// ListZones returns all zones by name.
func (s *DB) ListZones(ctx context.Context) ([]domain.Zone, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, name FROM zones ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []domain.Zone
	for rows.Next() {
		var z domain.Zone
		if err := rows.Scan(&z.ID, &z.Name); err != nil {
			return nil, err
		}
		out = append(out, z)
	}
	return out, rows.Err()
}

const hostCols = `id, name, zone_id, uri, libvirt_version, hypervisor_version, cpus, memory_bytes, storage_capacity, storage_free, enabled, local, agent_settings, last_seen, storage_path`

type scanner interface{ Scan(dest ...any) error }

func scanHost(r scanner) (domain.Host, error) {
	var h domain.Host
	var settings, seen string
	var mem, capa, free int64
	err := r.Scan(&h.ID, &h.Name, &h.ZoneID, &h.URI, &h.LibvirtVersion, &h.HypervisorVersion, &h.CPUs, &mem, &capa, &free, &h.Enabled, &h.Local, &settings, &seen, &h.StoragePath)
	if err != nil {
		return h, err
	}
	h.MemoryBytes, h.StorageCapacity, h.StorageFree = uint64(mem), uint64(capa), uint64(free)
	h.LastSeen = parseTime(seen)
	if err := json.Unmarshal([]byte(settings), &h.AgentSettings); err != nil {
		return h, fmt.Errorf("host %s agent settings: %w", h.Name, err)
	}
	return h, nil
}

// UpsertHost inserts or updates a host by name, keeping its id and Enabled.
func (s *DB) UpsertHost(ctx context.Context, h domain.Host) (domain.Host, error) {
	settings, err := json.Marshal(h.AgentSettings)
	if err != nil {
		return h, err
	}
	if h.AgentSettings == nil {
		settings = []byte("{}")
	}
	if h.ID == "" {
		h.ID = domain.NewID()
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO hosts(`+hostCols+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,TRUE,$11,$12,$13,$14)
ON CONFLICT (name) DO UPDATE SET zone_id=excluded.zone_id, uri=excluded.uri, libvirt_version=excluded.libvirt_version,
 hypervisor_version=excluded.hypervisor_version, cpus=excluded.cpus, memory_bytes=excluded.memory_bytes,
 storage_capacity=excluded.storage_capacity, storage_free=excluded.storage_free, local=excluded.local,
 agent_settings=excluded.agent_settings, last_seen=excluded.last_seen, storage_path=excluded.storage_path`,
		h.ID, h.Name, h.ZoneID, h.URI, h.LibvirtVersion, h.HypervisorVersion, h.CPUs, int64(h.MemoryBytes),
		int64(h.StorageCapacity), int64(h.StorageFree), h.Local, string(settings), fmtTime(h.LastSeen), h.StoragePath)
	if err != nil {
		return h, fmt.Errorf("upsert host %s: %w", h.Name, err)
	}
	return s.Host(ctx, h.Name)
}

// Host finds a host by id or name.
func (s *DB) Host(ctx context.Context, ref string) (domain.Host, error) {
	h, err := scanHost(s.db.QueryRowContext(ctx, `SELECT `+hostCols+` FROM hosts WHERE id = $1 OR name = $1 ORDER BY (id = $1) DESC LIMIT 1`, ref))
	if noRows(err) {
		return h, notFound("host", ref)
	}
	return h, err
}

// ListHosts returns all hosts by name.
func (s *DB) ListHosts(ctx context.Context) ([]domain.Host, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+hostCols+` FROM hosts ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []domain.Host
	for rows.Next() {
		h, err := scanHost(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, rows.Err()
}
