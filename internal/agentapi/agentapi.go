package agentapi

import (
	"context"
	"errors"
	"time"
)

// Agent is the command interface of one host.
//
// Contract:
//   - HostReport, Inventory, Domain and GuestExec answer at once; they
//     honour ctx. Domain reads one domain as Inventory reports it (its
//     cost does not grow with the host's other domains); a domain the
//     host does not define is ErrUnknownDomain.
//   - StartTask starts a long command (Task.Command names it, Task.Request
//     is its typed request: the Req of its Command descriptor) and returns
//     at once. Starting a task whose ID is already known returns nil and
//     starts nothing. A request of the wrong type for its command, or an
//     unknown command (ErrUnknownKind), is refused and starts nothing. A
//     request that embeds InStorage must name a valid storage root: there
//     is no default storage.
//   - TaskStatus reports a task's state and progress; a succeeded task's
//     Result is the typed result (the Res of its Command descriptor). Once
//     TaskStatus has returned a finished state, the agent may forget the
//     task: a later TaskStatus of that id may answer ErrUnknownTask.
//   - CancelTask asks a running task to stop; it is a no-op for finished
//     tasks.
//   - WaitInventoryChange is a long poll for changes of the host's
//     domains (defined, undefined, started, stopped, ... by anyone, knib
//     or not). It returns the agent's latest ChangeMark as soon as it
//     differs from since, and at once when since is not of the agent's
//     current life (the zero mark, or one from before the agent
//     restarted); the caller re-reads the Inventory whenever the mark it
//     gets differs from the one it passed, and passes the new mark next
//     time. Without a change it returns since unchanged after about
//     MaxChangeWait, or ctx's error when ctx ends first. A mark the
//     agent returned covers every change before it: when the agent
//     itself may have missed changes (its hypervisor connection dropped),
//     it moves the mark on.
//
// Errors: an error wrapping ErrUnknownDomain means the domain is not defined
// on the host; ErrUnknownTask means no task has that id; any other error
// means the command did not complete and may be retried.
type Agent interface {
	HostReport(ctx context.Context) (HostReport, error)
	Inventory(ctx context.Context) ([]Domain, error)
	Domain(ctx context.Context, uuid string) (Domain, error)
	GuestExec(ctx context.Context, req GuestExecRequest) (GuestExecResult, error)

	StartTask(ctx context.Context, t Task) error
	TaskStatus(ctx context.Context, id string) (TaskStatus, error)
	CancelTask(ctx context.Context, id string) error

	WaitInventoryChange(ctx context.Context, since ChangeMark) (ChangeMark, error)

	Files
}

// TaskWaiter is an agent that pushes task changes (the in-process agent):
// WaitTask answers as soon as the task's state or message differs from
// last (or ctx ends), so that a caller does not poll. Agents without it
// are polled with TaskStatus.
type TaskWaiter interface {
	WaitTask(ctx context.Context, id string, last TaskStatus) (TaskStatus, error)
}

// ChangeMark says how far an agent's inventory changes went: the agent's
// life (Epoch, chosen at random when the agent starts) and the number of
// changes it saw in it. Marks are compared for equality only.
type ChangeMark struct {
	Epoch string `json:"epoch"`
	Seq   uint64 `json:"seq"`
}

// MaxChangeWait is how long WaitInventoryChange waits at most without a
// change before it answers (so that no call outlives the connection it
// travels on unnoticed).
const MaxChangeWait = 25 * time.Second

// Errors agents return.
var (
	ErrUnknownDomain = errors.New("unknown domain")
	ErrUnknownTask   = errors.New("unknown task")
	ErrUnknownKind   = errors.New("unknown task kind")
)

// HostReport describes a host.
type HostReport struct {
	Name              string            `json:"name"`
	URI               string            `json:"uri"`
	LibvirtVersion    string            `json:"libvirt_version"`
	HypervisorVersion string            `json:"hypervisor_version"`
	CPUs              int               `json:"cpus"`
	MemoryBytes       uint64            `json:"memory_bytes"`
	StoragePath       string            `json:"storage_path"`
	StorageCapacity   uint64            `json:"storage_capacity"`
	StorageFree       uint64            `json:"storage_free"`
	Settings          map[string]string `json:"settings"` // from the agent configuration file
}

// Domain is a libvirt domain as the host sees it.
type Domain struct {
	UUID  string `json:"uuid"`
	Name  string `json:"name"`
	State string `json:"state"` // running, paused, shutoff, crashed, pmsuspended, other
	// VCPUs and MemoryBytes: the domain's configured size.
	VCPUs       int    `json:"vcpus"`
	MemoryBytes uint64 `json:"memory_bytes"`
	Disks       []Disk `json:"disks"`
	// Snapshots are the domain's snapshots made outside knib (knib's own
	// disk-only snapshots leave no hypervisor metadata).
	Snapshots []ForeignSnapshot `json:"snapshots,omitempty"`
}

// ForeignSnapshot is a snapshot of a domain that knib did not make.
type ForeignSnapshot struct {
	Name     string `json:"name"`
	Memory   bool   `json:"memory"`
	DiskOnly bool   `json:"disk_only"`
}

// Disk is a domain disk with its backing chain.
type Disk struct {
	Target       string  `json:"target"`
	Device       string  `json:"device"`
	Bus          string  `json:"bus"`
	SourceType   string  `json:"source_type"`
	Source       string  `json:"source"`
	Format       string  `json:"format"`
	VirtualSize  int64   `json:"virtual_size"`
	BackingChain []Layer `json:"backing_chain"`
	Problem      string  `json:"problem,omitempty"`
}

// Layer is one backing file.
type Layer struct {
	Path   string `json:"path"`
	Format string `json:"format"`
}

// GuestExecRequest runs a program in a guest through its guest agent.
type GuestExecRequest struct {
	DomainUUID string        `json:"domain_uuid"`
	Path       string        `json:"path"`
	Args       []string      `json:"args"`
	Input      []byte        `json:"input,omitempty"`
	Timeout    time.Duration `json:"timeout"`
}

// GuestExecResult is what the program did.
type GuestExecResult struct {
	ExitCode int    `json:"exit_code"`
	Signal   int    `json:"signal,omitempty"`
	Stdout   []byte `json:"stdout"`
	Stderr   []byte `json:"stderr"`
}

// Task is one run of a long command.
type Task struct {
	ID string
	// Command is the command's name (a Command descriptor's Name).
	Command string
	// Request is the command's typed request.
	Request any
	// Deadline bounds the whole task (setting knib.timeout).
	Deadline time.Time
}

// TaskState is a task's life cycle: running → succeeded | failed.
type TaskState string

// Task states.
const (
	TaskRunning   TaskState = "running"
	TaskSucceeded TaskState = "succeeded"
	TaskFailed    TaskState = "failed"
)

// TaskStatus is a task's state, progress and outcome.
type TaskStatus struct {
	ID       string    `json:"id"`
	Kind     string    `json:"kind"`
	State    TaskState `json:"state"`
	Progress float64   `json:"progress"` // 0..100
	Message  string    `json:"message"`
	// Result is the typed result of a succeeded task.
	Result any    `json:"-"`
	Error  string `json:"error,omitempty"`
	// Clean is set on failed tasks that changed nothing on any disk.
	Clean bool `json:"clean,omitempty"`
	// Damaged lists the backup files whose hash did not match, when that
	// is why the task failed.
	Damaged []Damage `json:"damaged,omitempty"`
	// LeftPaused is set on failed tasks that left the VM paused: it was
	// paused to flush its images and could not be resumed, typically
	// because it was migrated to another host meanwhile, where it is
	// paused now (hypervisor.ErrLeftPaused).
	LeftPaused bool `json:"left_paused,omitempty"`
}
