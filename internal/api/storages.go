package api

import "time"

// StorageCreate is the body of POST /storages.
type StorageCreate struct {
	Zone string `json:"zone" doc:"zone name or id; an agent of the zone must find the directory"`
	Path string `json:"path" doc:"absolute, clean path of an existing directory, the same on every host of the zone"`
	Name string `json:"name,omitempty" doc:"unique; default the last element of the path"`
	Tag  string `json:"tag,omitempty" doc:"offerings with this storage_tag place new chains here"`
}

// Storage is a backup storage with its capacity and usage.
type Storage struct {
	ID       string     `json:"id"`
	Name     string     `json:"name"`
	Zone     string     `json:"zone"`
	Path     string     `json:"path"`
	Tag      string     `json:"tag"`
	Enabled  bool       `json:"enabled" doc:"a disabled storage receives no new chain"`
	Capacity int64      `json:"capacity" doc:"bytes (statfs by an agent of the zone)"`
	Free     int64      `json:"free" doc:"bytes available"`
	Used     int64      `json:"used" doc:"bytes of knib backups on it (catalogue)"`
	Measured *time.Time `json:"measured"`
	Created  time.Time  `json:"created"`
}

// StorageQuery filters GET /storages.
type StorageQuery struct {
	Zone string `query:"zone"`
}

// StorageMigrate is the body of POST /storages/migrate.
type StorageMigrate struct {
	From string `json:"from" doc:"source storage name or id"`
	To   string `json:"to" doc:"target storage name or id, same zone"`
	VM   string `json:"vm,omitempty" doc:"only this VM's backups (name or uuid)"`
}

// Zone groups hosts and backup storages.
type Zone struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Hosts    int    `json:"hosts"`
	Storages int    `json:"storages"`
}

// ZoneCreate is the body of POST /zones.
type ZoneCreate struct {
	Name string `json:"name"`
}
