package agentapi

// Task kinds of backup storages. Both work in the request's Storage root.
const (
	// KindStorageStat measures the storage (statfs); it also checks that
	// the root exists on the host and is a directory.
	KindStorageStat = "storage.stat"
	// KindStorageCopy copies backups from another storage root into this
	// one and verifies them (knib storage migrate). The source is not
	// changed; the server deletes it after switching the catalogue.
	KindStorageCopy = "storage.copy"
)

// StorageStatResult is a storage's size as the host sees it.
type StorageStatResult struct {
	Path     string `json:"path"`
	Capacity int64  `json:"capacity"`
	Free     int64  `json:"free"`
}

// StorageCopyRequest copies whole backup directories, parents before their
// children, from the storage at From (an absolute path on the host, checked
// like TaskRequest.Storage) to the same relative directories in the task's
// storage. Every step is idempotent: files are written as .part and renamed.
type StorageCopyRequest struct {
	InStorage
	From    string              `json:"from"`
	Backups []StorageCopyBackup `json:"backups"`
}

// StorageCopyBackup is one backup directory and its disk files with the
// hashes the catalogue recorded ("" when none was recorded).
type StorageCopyBackup struct {
	ID    string            `json:"id"`
	Dir   string            `json:"dir"`
	Files []StorageCopyFile `json:"files"`
}

// StorageCopyFile is one disk file of a backup.
type StorageCopyFile struct {
	Disk string `json:"disk"`
	Path string `json:"path"`
	Hash string `json:"hash"`
}

// StorageCopyResult says what was copied. Hashes holds, per backup and disk,
// the new hash of files whose backing pointer had to be rewritten (an
// absolute pointer into the source storage made relative).
type StorageCopyResult struct {
	Copied  int                          `json:"copied"` // files
	Bytes   int64                        `json:"bytes"`
	Rebased []string                     `json:"rebased"`
	Hashes  map[string]map[string]string `json:"hashes"`
}
