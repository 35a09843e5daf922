package agentapi

import "time"

// Task kinds of backup validation.
const (
	KindValidate          = "backup.validate"
	KindHash              = "backup.hash"
	KindCleanupValidation = "validation.cleanup"
)

// CleanupValidationRequest names backup storages to clean besides the task's
// own (those that do not exist on the host are skipped).
type CleanupValidationRequest struct {
	Storages []string `json:"storages,omitempty"`
	// Keep names backups whose validation VMs and overlays stay: their
	// validation jobs still run (several servers).
	Keep []string `json:"keep,omitempty"`
}

// ValidationPrefix starts the name of every validation VM.
const ValidationPrefix = "knib-validate-"

// ValidateRequest boots a throw-away VM from thin overlays on a backup's
// files (the backup is never written), with no network interface, runs the
// steps, and always destroys the VM and its overlays.
type ValidateRequest struct {
	InStorage
	JobAttempt
	BackupID string        `json:"backup_id"`
	Dir      string        `json:"dir"`
	Files    []RestoreFile `json:"files"`
	Steps    []string      `json:"steps"` // wait_for_boot, screenshot, execute_command
	// Lifetime is the hard cap on the validation VM's life.
	Lifetime       time.Duration `json:"lifetime"`
	BootTimeout    time.Duration `json:"boot_timeout"`
	ScreenshotWait time.Duration `json:"screenshot_wait"`
	Command        string        `json:"command,omitempty"`
	Args           []string      `json:"args,omitempty"`
	Expected       string        `json:"expected,omitempty"` // Base64 of the expected stdout; empty: exit code 0
	CommandTimeout time.Duration `json:"command_timeout"`
}

// ValidateResult is the verdict. Reasons is empty when the backup is valid.
// Steps lists what each step did, in the order they ran.
type ValidateResult struct {
	Booted     bool         `json:"booted"`
	Screenshot string       `json:"screenshot,omitempty"` // relative to the storage root
	Reasons    []string     `json:"reasons"`
	Steps      []StepResult `json:"steps,omitempty"`
}

// StepResult is what one validation step did: Outcome is StepPassed,
// StepFailed or StepSkipped (the step did not run), and Detail says why it
// failed or was skipped.
type StepResult struct {
	Step    string `json:"step"`
	Outcome string `json:"outcome"`
	Detail  string `json:"detail,omitempty"`
}

// Outcomes of a validation step.
const (
	StepPassed  = "passed"
	StepFailed  = "failed"
	StepSkipped = "skipped"
)

// HashRequest re-hashes backup files.
type HashRequest struct {
	InStorage
	JobAttempt
	Files []RestoreFile `json:"files"`
	// Expected, when set, are the recorded hashes to compare with (the
	// periodic re-hash): the result lists the mismatches.
	Expected []ChainFile `json:"expected,omitempty"`
}

// HashResult maps each disk to its file's hash.
type HashResult struct {
	Hashes  map[string]string `json:"hashes"`
	Damaged []Damage          `json:"damaged,omitempty"`
}
