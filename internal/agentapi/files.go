package agentapi

import (
	"context"
	"errors"
	"io"
	"time"
)

// KindRestoreFiles writes files of a backup into a running VM through its
// guest agent.
const KindRestoreFiles = "files.restore"

// Files reads the file systems inside a backup's disks (file-level restore).
// The agent reads them in an isolated helper, never in the host's kernel;
// a helper serves one backup, is reused by the calls that name the same
// backup, and ends after Source.IdleTimeout without a call. At most
// Source.MaxHelpers run on the host: a call that needs one more ends the
// longest idle helper, or fails with an error wrapping domain.ErrUnavailable
// when every helper is busy.
//
//   - ListFiles lists the backup's volumes (a request without Volume) or
//     one directory of a volume's file system.
//   - ExtractFiles writes a tar stream of the named paths (files,
//     directories with their whole trees, symlinks as symlinks, hard links
//     inside a tree as hard links; numeric owners, modes, times) to w. An
//     error after the first byte is returned after w got a truncated
//     stream; callers must report it.
//   - CloseFiles ends the backup's helper, if any.
type Files interface {
	ListFiles(ctx context.Context, req ListFilesRequest) (ListFilesResult, error)
	ExtractFiles(ctx context.Context, req ExtractFilesRequest, w io.Writer) error
	CloseFiles(ctx context.Context, backupID string) error
}

// FileSource is the backup whose file systems a request reads.
type FileSource struct {
	InStorage
	BackupID string `json:"backup_id"`
	// Files are the backup's disk files in disk order (incrementals read
	// their whole chain through their backing files).
	Files []RestoreFile `json:"files"`
	// IdleTimeout and MaxHelpers are the host's helper rules.
	IdleTimeout time.Duration `json:"idle_timeout"`
	MaxHelpers  int           `json:"max_helpers"`
}

// FileVolume is a device of the backup that holds a file system.
type FileVolume struct {
	// Name is how requests name it: the disk ("vda") for a file system on
	// the whole disk, the disk and partition number ("vda1"), or "VG/LV".
	Name      string `json:"name"`
	Disk      string `json:"disk,omitempty"` // empty for a logical volume
	Partition int    `json:"partition,omitempty"`
	Table     string `json:"table,omitempty"` // gpt or msdos
	FSType    string `json:"fs_type"`
	Label     string `json:"label,omitempty"`
	Size      int64  `json:"size"`
	// Total and Used: the file system's bytes (0 when it can't be mounted).
	Total     int64 `json:"total,omitempty"`
	Used      int64 `json:"used,omitempty"`
	Browsable bool  `json:"browsable"`
}

// FileEntry is one directory entry (a symlink is described, not followed).
type FileEntry struct {
	Name   string    `json:"name"`
	Type   string    `json:"type"` // file, dir, symlink, char, block, fifo, socket
	Size   int64     `json:"size"`
	Mode   uint32    `json:"mode"` // permission bits with setuid, setgid, sticky
	UID    int64     `json:"uid"`
	GID    int64     `json:"gid"`
	MTime  time.Time `json:"mtime"`
	Links  int64     `json:"links"`
	Target string    `json:"target,omitempty"`
}

// ListFilesRequest lists Path of Volume; without Volume (and Path) it lists
// the volumes.
type ListFilesRequest struct {
	FileSource
	Volume string `json:"volume,omitempty"`
	Path   string `json:"path,omitempty"`
}

// ListFilesResult holds the volumes, or the directory's entries sorted by
// name (Path: the directory as resolved, Volume: the volume read).
type ListFilesResult struct {
	Volumes []FileVolume `json:"volumes,omitempty"`
	Volume  string       `json:"volume,omitempty"`
	Path    string       `json:"path,omitempty"`
	Entries []FileEntry  `json:"entries,omitempty"`
}

// ExtractFilesRequest names paths of one volume to extract. The tar members
// are named by the paths without their leading "/" (the root is ".").
type ExtractFilesRequest struct {
	FileSource
	Volume string   `json:"volume,omitempty"`
	Paths  []string `json:"paths"`
}

// RestoreFilesRequest writes the extracted paths into the running domain
// under To (a path in the guest: To + "/" + the member's name), through its
// guest agent. Without Overwrite nothing is written when any target exists.
type RestoreFilesRequest struct {
	ExtractFilesRequest
	DomainUUID string `json:"domain_uuid"`
	To         string `json:"to"`
	Overwrite  bool   `json:"overwrite,omitempty"`
}

// RestoreFilesResult counts what was written.
type RestoreFilesResult struct {
	Files   int   `json:"files"`
	Dirs    int   `json:"dirs"`
	Links   int   `json:"links"`
	Bytes   int64 `json:"bytes"`
	Skipped int   `json:"skipped,omitempty"` // devices, fifos, sockets
}

// NoFiles is the Files of an agent that reads no file systems (test and
// benchmark agents embed it): every call fails with ErrNoFiles.
type NoFiles struct{}

// ErrNoFiles is NoFiles' answer.
var ErrNoFiles = errors.New("this agent reads no file systems")

func (NoFiles) ListFiles(context.Context, ListFilesRequest) (ListFilesResult, error) {
	return ListFilesResult{}, ErrNoFiles
}
func (NoFiles) ExtractFiles(context.Context, ExtractFilesRequest, io.Writer) error { return ErrNoFiles }
func (NoFiles) CloseFiles(context.Context, string) error                           { return nil }
