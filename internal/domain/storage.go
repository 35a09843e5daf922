package domain

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Storage is a backup storage: a directory (typically an NFS mount) present
// at the same absolute Path on every host of its zone. Backups live in it
// under paths relative to Path (see docs/storage-layout.md).
type Storage struct {
	ID      string
	Name    string
	ZoneID  string
	Path    string // absolute and clean, the same on every host of the zone
	Tag     string // offerings with a storage tag place new chains only on storages with that tag
	Enabled bool   // a disabled storage receives no new chain; its backups stay usable
	// Measured by an agent of the zone (statfs), or 0 when never measured.
	Capacity int64
	Free     int64
	// Used is what knib's backups take on it (catalogue sizes).
	Used     int64
	Measured time.Time
	Created  time.Time
}

// DefaultStorageName is the storage the server creates for its own data
// directory, and to which backups taken before storages existed belong.
const DefaultStorageName = "default"

// ValidateStoragePath checks a backup storage path: absolute, clean (no "..",
// "." or doubled separators), not the file system root, without control
// characters.
func ValidateStoragePath(field, p string) error {
	if p == "" {
		return Invalid(field, "must not be empty")
	}
	if len(p) > 1024 {
		return Invalid(field, "must be at most 1024 characters")
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f {
			return Invalid(field, "must not contain control characters")
		}
	}
	if !filepath.IsAbs(p) {
		return Invalid(field, "must be an absolute path, got %q", p)
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return Invalid(field, "must not contain \"..\", got %q", p)
		}
	}
	if filepath.Clean(p) != p {
		return Invalid(field, "must be a clean path (want %q), got %q", filepath.Clean(p), p)
	}
	if p == "/" {
		return Invalid(field, "must not be the file system root")
	}
	for _, sys := range systemDirs {
		if p == sys || (sys != "/var" && sys != "/var/lib" && Within(p, sys)) {
			return Invalid(field, "must not be or lie inside the system directory %s, got %q", sys, p)
		}
	}
	return nil
}

// systemDirs are directories no storage may be (nor, but for /var and
// /var/lib, lie inside): their contents are the system's, and the
// validation cleanup removes what it finds under a storage.
var systemDirs = []string{"/bin", "/boot", "/dev", "/etc", "/lib", "/lib64", "/proc", "/run", "/sbin", "/sys", "/usr", "/var", "/var/lib"}

// Within reports whether path p is dir or lies below it (both clean).
func Within(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}

// StorageOverlap says why a new storage path cannot sit next to an
// existing one: the same directory, or one inside the other (the
// validation cleanup of one would remove the other's backups).
func StorageOverlap(newPath, existing, existingName string) error {
	switch {
	case newPath == existing:
		return Invalid("path", "a storage with this path exists already (%s)", existingName)
	case Within(newPath, existing):
		return Invalid("path", "%s lies inside storage %s (%s)", newPath, existingName, existing)
	case Within(existing, newPath):
		return Invalid("path", "storage %s (%s) lies inside %s", existingName, existing, newPath)
	}
	return nil
}

// ValidateStorageTag checks an optional storage tag.
func ValidateStorageTag(field, tag string) error {
	if tag == "" {
		return nil
	}
	if len(tag) > 64 {
		return Invalid(field, "must be at most 64 characters")
	}
	for _, r := range tag {
		ok := r == '-' || r == '_' || r == '.' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')
		if !ok {
			return Invalid(field, "may contain letters, digits, '-', '_' and '.' only, got %q", tag)
		}
	}
	return nil
}

// ErrNoStorage is wrapped by PlaceChain when no storage can take a new chain.
var ErrNoStorage = fmt.Errorf("no backup storage available: %w", ErrConflict)

// PlaceChain chooses the storage of a new backup chain in a zone: among the
// enabled storages of the zone, those with the offering's tag when tag is not
// empty (a tag is a requirement, as in CloudStack), the one with the most free
// space (ties: the name first). It returns an error wrapping ErrConflict when
// no storage qualifies, saying why.
func PlaceChain(storages []Storage, zoneID, zoneName, tag string) (Storage, error) {
	var cands []Storage
	inZone, enabled := 0, 0
	for _, st := range storages {
		if st.ZoneID != zoneID {
			continue
		}
		inZone++
		if !st.Enabled {
			continue
		}
		enabled++
		if tag != "" && st.Tag != tag {
			continue
		}
		cands = append(cands, st)
	}
	switch {
	case inZone == 0:
		return Storage{}, fmt.Errorf("zone %s has no backup storage; add one with `knib storage add --zone %s --path P`: %w", zoneName, zoneName, ErrNoStorage)
	case enabled == 0:
		return Storage{}, fmt.Errorf("every backup storage of zone %s is disabled: %w", zoneName, ErrNoStorage)
	case len(cands) == 0:
		return Storage{}, fmt.Errorf("no enabled backup storage of zone %s has the offering's storage tag %q: %w", zoneName, tag, ErrNoStorage)
	}
	sort.SliceStable(cands, func(i, j int) bool {
		if cands[i].Free != cands[j].Free {
			return cands[i].Free > cands[j].Free
		}
		return cands[i].Name < cands[j].Name
	})
	return cands[0], nil
}
