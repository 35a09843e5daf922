package store

import (
	"context"
	"time"
)

// VMMove is the recorded intent of restoring a VM onto another host of its
// zone: written before any host is touched, removed once the VM is defined
// on ToHost, recorded there, and its definition on FromHost is gone.
type VMMove struct {
	VMID     string
	FromHost string
	ToHost   string
	BackupID string
	Quick    bool
	Created  time.Time
}

// VMMoveStore records VM moves.
type VMMoveStore interface {
	// RecordVMMove stores a move; ErrConflict when the VM is moving already.
	RecordVMMove(ctx context.Context, m VMMove) error
	// VMMoves returns the moves not finished, oldest first.
	VMMoves(ctx context.Context) ([]VMMove, error)
	// FinishVMMove removes the VM's move; absent is fine.
	FinishVMMove(ctx context.Context, vmID string) error
	// SetVMHost records the host a VM now lives on.
	SetVMHost(ctx context.Context, vmID, hostID string) error
}
