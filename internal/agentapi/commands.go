package agentapi

import (
	"fmt"
	"sort"
)

// Command describes one long host command: its name on the wire, the type
// of its request and the type of its result. Call sites use the exported
// descriptors below with Run (or Task/ResultOf), so the compiler checks that
// a request goes to the command that takes it and that the caller reads the
// result the command gives.
type Command[Req, Res any] struct{ Name string }

// None is the result of commands that return nothing.
type None struct{}

// The host commands. Their names are the task kinds.
var (
	TakeBackup          = register[TakeBackupRequest, TakeBackupResult](KindTakeBackup)
	Reconcile           = register[ReconcileRequest, ReconcileResult](KindReconcile)
	MergeBackup         = register[MergeBackupRequest, MergeBackupResult](KindMergeBackup)
	DeleteFiles         = register[DeleteFilesRequest, DeleteFilesResult](KindDeleteFiles)
	Compress            = register[CompressRequest, CompressResult](KindCompress)
	FinalizeCompression = register[FinalizeCompressionRequest, CompressResult](KindFinalizeCompressed)
	RestoreHere         = register[RestoreHereRequest, RestoreResult](KindRestoreHere)
	Undefine            = register[UndefineRequest, UndefineResult](KindUndefine)
	Restore             = register[RestoreRequest, RestoreResult](KindRestore)
	RestoreVolume       = register[RestoreVolumeRequest, RestoreResult](KindRestoreVolume)
	CreateVM            = register[CreateVMRequest, RestoreResult](KindCreateVM)
	Definition          = register[DefinitionRequest, DefinitionResult](KindDefinition)
	Consolidate         = register[ConsolidateRequest, ConsolidateResult](KindConsolidate)
	AttachDisk          = register[AttachDiskRequest, RestoredDisk](KindAttachDisk)
	DetachDisk          = register[DetachDiskRequest, DetachDiskResult](KindDetachDisk)
	SnapshotCreate      = register[SnapshotCreateRequest, SnapshotCreateResult](KindSnapshotCreate)
	SnapshotRevert      = register[SnapshotRevertRequest, SnapshotRevertResult](KindSnapshotRevert)
	SnapshotDelete      = register[SnapshotDeleteRequest, SnapshotDeleteResult](KindSnapshotDelete)
	StorageStat         = register[StorageStatRequest, StorageStatResult](KindStorageStat)
	StorageCopy         = register[StorageCopyRequest, StorageCopyResult](KindStorageCopy)
	Validate            = register[ValidateRequest, ValidateResult](KindValidate)
	Hash                = register[HashRequest, HashResult](KindHash)
	CleanupValidation   = register[CleanupValidationRequest, CleanupValidationResult](KindCleanupValidation)
	RestoreFiles        = register[RestoreFilesRequest, RestoreFilesResult](KindRestoreFiles)
	OffsitePut          = register[OffsitePutRequest, OffsitePutResult](KindOffsitePut)
	OffsiteGet          = register[OffsiteGetRequest, OffsiteGetResult](KindOffsiteGet)
)

var registry = map[string]bool{}

func register[Req, Res any](name string) Command[Req, Res] {
	if registry[name] {
		panic("agentapi: command registered twice: " + name)
	}
	registry[name] = true
	return Command[Req, Res]{Name: name}
}

// Commands lists the names of every host command, sorted.
func Commands() []string {
	out := make([]string, 0, len(registry))
	for n := range registry {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Task returns the task that runs cmd with req under the given id.
func (c Command[Req, Res]) Task(id string, req Req) Task {
	return Task{ID: id, Command: c.Name, Request: req}
}

// ResultOf returns a succeeded task's result as the command's result type.
func (c Command[Req, Res]) ResultOf(st TaskStatus) (Res, error) {
	var zero Res
	if st.Result == nil {
		return zero, nil
	}
	r, ok := st.Result.(Res)
	if !ok {
		return zero, fmt.Errorf("task %s: result of %s is a %T, not a %T", st.ID, c.Name, st.Result, zero)
	}
	return r, nil
}

// Request checks that a task's request is the command's request type.
func (c Command[Req, Res]) Request(t Task) (Req, error) {
	r, ok := t.Request.(Req)
	if !ok {
		var zero Req
		return zero, fmt.Errorf("task %s: request of %s is a %T, not a %T", t.ID, c.Name, t.Request, zero)
	}
	return r, nil
}

// InStorage is embedded in the requests of commands that work in a backup
// storage: Storage is the storage's absolute root on the host, and the
// request's relative paths are inside it. There is no default: an agent
// refuses such a task without a valid root.
type InStorage struct {
	Storage string `json:"storage"`
}

// StorageRoot returns the storage root the request works in.
func (s InStorage) StorageRoot() string { return s.Storage }

// StorageRequest is implemented by every request that embeds InStorage.
type StorageRequest interface{ StorageRoot() string }

// JobAttempt is embedded in the requests of commands that background jobs
// run: the job and its attempt. A task's id is derived from them, so that a
// job's next attempt on any server finds the task of a dead runner.
type JobAttempt struct {
	JobID   string `json:"job_id,omitempty"`
	Attempt int    `json:"attempt,omitempty"`
}

// Attempted returns the job attempt the request belongs to.
func (j JobAttempt) Attempted() JobAttempt { return j }

// JobRequest is implemented by every request that embeds JobAttempt.
type JobRequest interface{ Attempted() JobAttempt }

// DeleteFilesResult lists the directories removed.
type DeleteFilesResult struct {
	Removed []string `json:"removed"`
}

// DetachDiskResult names the detached disk and its file (left in place).
type DetachDiskResult struct {
	Target string `json:"target"`
	Path   string `json:"path"`
}

// SnapshotRevertResult lists the files a revert removed.
type SnapshotRevertResult struct {
	Removed []string `json:"removed"`
}

// CleanupValidationResult counts the validation VMs destroyed.
type CleanupValidationResult struct {
	Destroyed int `json:"destroyed"`
}

// StorageStatRequest measures the storage it names.
type StorageStatRequest struct {
	InStorage
}
