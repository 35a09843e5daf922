package domain

import "time"

// OperationState is the life cycle of a long-running request.
type OperationState string

// Operation states. Pending → Running → Succeeded | Failed.
const (
	OpPending   OperationState = "Pending"
	OpRunning   OperationState = "Running"
	OpSucceeded OperationState = "Succeeded"
	OpFailed    OperationState = "Failed"
)

// Done reports whether the state is final.
func (s OperationState) Done() bool { return s == OpSucceeded || s == OpFailed }

// Operation is a long-running request. It is recorded before any work starts,
// so a restarted server knows what was in flight.
type Operation struct {
	ID        string
	Kind      string // e.g. "backup.create", "inventory.refresh"
	VMID      string // empty when not about one VM
	AccountID string // who asked
	State     OperationState
	Progress  float64 // 0..100
	Message   string  // human-readable current step
	Result    string  // JSON document describing the result, set when Succeeded
	Error     string  // set when Failed
	Created   time.Time
	Updated   time.Time
	// Owner is the server process running the operation; it renews
	// LeaseUntil while it lives (several servers, see docs/architecture.md).
	Owner      string
	LeaseUntil time.Time
}
