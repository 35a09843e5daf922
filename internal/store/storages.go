package store

import (
	"context"
	"time"

	"github.com/knib/knib/internal/domain"
)

// Storages is the catalogue of backup storages and of backups moving between
// them (knib storage migrate).
type Storages interface {
	// CreateStorage inserts a storage; ErrConflict when the name, or the
	// path in the same zone, is taken.
	CreateStorage(ctx context.Context, st domain.Storage) error
	// Storage finds a storage by id or name. It does not fill Used, a
	// sum over the storage's backups: ListStorages and StorageUsed do.
	Storage(ctx context.Context, idOrName string) (domain.Storage, error)
	// StorageUsed returns the bytes of a storage's live backups.
	StorageUsed(ctx context.Context, id string) (int64, error)
	// ListStorages lists the storages of a zone (all with zoneID ""), by name.
	ListStorages(ctx context.Context, zoneID string) ([]domain.Storage, error)
	SetStorageEnabled(ctx context.Context, id string, enabled bool) error
	// SetStorageCapacity records a measurement (statfs) of the storage.
	SetStorageCapacity(ctx context.Context, id string, capacity, free int64, at time.Time) error
	// RemoveStorage deletes a storage; ErrConflict while a live backup (one
	// whose files exist: not Failed or Error) is on it or a move involves it.
	// Catalogue-only backups that name it are detached ("").
	RemoveStorage(ctx context.Context, id string) error
	// AdoptBackups assigns backups recorded without a storage to storageID
	// and reports how many.
	AdoptBackups(ctx context.Context, storageID string) (int, error)

	// StartStorageMoves records moves (state MoveCopying) before any file is
	// copied, all or none; ErrConflict when a backup is being moved already.
	StartStorageMoves(ctx context.Context, moves []StorageMove) error
	// SwitchStorageMoves points the moved backups at their target storage
	// and marks the moves MoveSwitched, in one transaction.
	SwitchStorageMoves(ctx context.Context, backupIDs []string) error
	// StorageMoves lists unfinished moves, oldest first.
	StorageMoves(ctx context.Context) ([]StorageMove, error)
	// EndStorageMove forgets a move (complete or rolled back).
	EndStorageMove(ctx context.Context, backupID string) error
}

// MoveState is where a backup's move between storages is.
type MoveState string

// Move states: while copying, the catalogue names the source storage; once
// switched, the target (the source files are deleted next).
const (
	MoveCopying  MoveState = "copying"
	MoveSwitched MoveState = "switched"
)

// StorageMove is one backup being moved between storages.
type StorageMove struct {
	BackupID    string
	VMID        string
	From, To    string // storage ids
	State       MoveState
	OperationID string
	Created     time.Time
}
