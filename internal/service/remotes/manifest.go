package remotes

import (
	"context"
	"time"

	"github.com/knib/knib/internal/domain"
)

// manifestFormat names the manifest's JSON layout.
const manifestFormat = "knib-manifest-v1"

// manifest is what a copy's sealed manifest holds: enough to rebuild the
// catalogue's view of the backup, its VM and its objects from the bucket
// alone (knib remote import).
type manifest struct {
	Format  string              `json:"format"`
	CopyID  string              `json:"copy_id"`
	Backup  manifestBackup      `json:"backup"`
	VM      manifestVM          `json:"vm"`
	Objects []domain.CopyObject `json:"objects"`
	// LockUntil is the lock the objects were written with (a child's copy
	// may have extended it since).
	LockUntil time.Time `json:"lock_until,omitzero"`
	KeepUntil time.Time `json:"keep_until,omitzero"`
	Copied    time.Time `json:"copied"`

	// Where the manifest was read from (not in the JSON).
	manifestKey, manifestVersion string
}

type manifestBackup struct {
	ID                string              `json:"id"`
	Type              domain.BackupType   `json:"type"`
	Isolated          bool                `json:"isolated,omitempty"`
	ParentID          string              `json:"parent_id,omitempty"`
	Position          int                 `json:"position"`
	Size              int64               `json:"size"`
	VirtualSize       int64               `json:"virtual_size"`
	Dir               string              `json:"dir"`
	Files             []domain.BackupFile `json:"files"`
	CompressionStatus string              `json:"compression_status"`
	UncompressedSize  int64               `json:"uncompressed_size,omitempty"`
	AccountID         string              `json:"account_id"`
	AccountName       string              `json:"account_name"`
	Offering          manifestOffering    `json:"offering"`
	Created           time.Time           `json:"created"`
}

type manifestOffering struct {
	ID                string `json:"id"`
	Name              string `json:"name"`
	Compress          bool   `json:"compress,omitempty"`
	AllowQuickRestore bool   `json:"allow_quick_restore,omitempty"`
	AllowExtractFile  bool   `json:"allow_extract_file,omitempty"`
	Library           string `json:"compression_library,omitempty"`
}

type manifestVM struct {
	UUID        string        `json:"uuid"`
	Name        string        `json:"name"`
	VCPUs       int           `json:"vcpus,omitempty"`
	MemoryBytes uint64        `json:"memory_bytes,omitempty"`
	Disks       []domain.Disk `json:"disks"`
}

// manifestOf describes a copy of b.
func (s *Service) manifestOf(ctx context.Context, b domain.Backup, c domain.BackupCopy) (manifest, error) {
	m := manifest{Format: manifestFormat, CopyID: c.ID, Objects: c.Objects, LockUntil: c.LockUntil, KeepUntil: c.KeepUntil, Copied: c.Copied,
		Backup: manifestBackup{ID: b.ID, Type: b.Type, Isolated: b.Isolated, ParentID: b.ParentID, Position: b.Position, Size: b.Size,
			VirtualSize: b.VirtualSize, Dir: b.Dir, Files: b.Files, CompressionStatus: string(b.CompressionStatus), UncompressedSize: b.UncompressedSize,
			AccountID: b.AccountID, AccountName: s.k.AccountName(ctx, b.AccountID), Created: b.Created},
		VM: manifestVM{UUID: b.VMID, Name: b.VMName}}
	if off, err := s.store.Offering(ctx, b.OfferingID); err == nil {
		m.Backup.Offering = manifestOffering{ID: off.ID, Name: off.Name, Compress: off.Compress, AllowQuickRestore: off.AllowQuickRestore,
			AllowExtractFile: off.AllowExtractFile, Library: string(off.CompressionLibrary)}
	} else {
		m.Backup.Offering = manifestOffering{ID: b.OfferingID}
	}
	if vm, err := s.store.VM(ctx, b.VMID); err == nil {
		m.VM.VCPUs, m.VM.MemoryBytes = vm.VCPUs, vm.MemoryBytes
		for _, d := range vm.Disks {
			m.VM.Disks = append(m.VM.Disks, domain.Disk{Target: d.Target, Device: d.Device, Bus: d.Bus, SourceType: d.SourceType, Source: d.Source, Format: d.Format, VirtualSize: d.VirtualSize})
		}
	}
	return m, nil
}
