package domain

import (
	"fmt"
	"strings"
	"time"
)

// ValidationStep is one step of a boot validation, in the order they run.
type ValidationStep string

// The validation steps of the seed.
const (
	StepWaitForBoot    ValidationStep = "wait_for_boot"
	StepScreenshot     ValidationStep = "screenshot"
	StepExecuteCommand ValidationStep = "execute_command"
)

// StepHash is the one step of a re-validation (the files re-hashed against
// their recorded hashes); it is recorded on the backup, never configured in an
// offering.
const StepHash ValidationStep = "hash"

// ValidationSteps lists every known step in execution order.
var ValidationSteps = []ValidationStep{StepWaitForBoot, StepScreenshot, StepExecuteCommand}

// CompressionLibrary is the qcow2 compression type used for compressed backups.
type CompressionLibrary string

// The compression libraries qemu-img supports for qcow2.
const (
	CompressionZstd CompressionLibrary = "zstd"
	CompressionZlib CompressionLibrary = "zlib"
)

// MaxNameLength bounds names of offerings, accounts and similar objects.
const MaxNameLength = 128

// Offering is a backup offering: the feature set a VM is backed up with.
type Offering struct {
	ID                 string
	Name               string
	Description        string
	Compress           bool
	Validate           bool
	ValidationSteps    []ValidationStep
	AllowQuickRestore  bool
	AllowExtractFile   bool
	BackupChainSize    *int // nil: use setting backup.chain.size
	CompressionLibrary CompressionLibrary
	// StorageTag, when set, places new chains only on storages with that tag.
	StorageTag string
	Created    time.Time
	Removed    *time.Time
}

// OfferingSpec is what a caller asks for when creating an offering. String
// fields are raw user input; NewOffering validates and normalizes them.
type OfferingSpec struct {
	Name               string
	Description        string
	Compress           bool
	Validate           bool
	ValidationSteps    []string
	AllowQuickRestore  bool
	AllowExtractFile   bool
	BackupChainSize    *int
	CompressionLibrary string
	StorageTag         string
}

// NewOffering validates spec and returns the offering it describes, with the
// seed's defaults: library zstd; validation steps "screenshot" when validate is
// set and no steps are given. The id and creation time are the caller's.
func NewOffering(id string, spec OfferingSpec, now time.Time) (Offering, error) {
	name := strings.TrimSpace(spec.Name)
	if err := ValidateRef("name", name); err != nil {
		return Offering{}, err
	}
	if len(spec.Description) > 1024 {
		return Offering{}, Invalid("description", "must be at most 1024 characters")
	}
	lib := CompressionLibrary(strings.ToLower(strings.TrimSpace(spec.CompressionLibrary)))
	switch lib {
	case "":
		lib = CompressionZstd
	case CompressionZstd, CompressionZlib:
	default:
		return Offering{}, Invalid("compression_library", "unknown library %q, want zstd or zlib", spec.CompressionLibrary)
	}
	steps, err := ParseValidationSteps(spec.ValidationSteps)
	if err != nil {
		return Offering{}, err
	}
	if len(steps) > 0 && !spec.Validate {
		return Offering{}, Invalid("validation_steps", "only allowed when validate is set")
	}
	if spec.Validate && len(steps) == 0 {
		steps = []ValidationStep{StepScreenshot}
	}
	if err := ValidateStorageTag("storage_tag", spec.StorageTag); err != nil {
		return Offering{}, err
	}
	if spec.BackupChainSize != nil && (*spec.BackupChainSize < 0 || *spec.BackupChainSize > MaxCount) {
		return Offering{}, Invalid("backup_chain_size", "must be 0 (unlimited) to %d, got %d", MaxCount, *spec.BackupChainSize)
	}
	return Offering{
		ID:                 id,
		Name:               name,
		Description:        spec.Description,
		Compress:           spec.Compress,
		Validate:           spec.Validate,
		ValidationSteps:    steps,
		AllowQuickRestore:  spec.AllowQuickRestore,
		AllowExtractFile:   spec.AllowExtractFile,
		BackupChainSize:    spec.BackupChainSize,
		CompressionLibrary: lib,
		StorageTag:         spec.StorageTag,
		Created:            now,
	}, nil
}

// ParseValidationSteps checks each step name, removes duplicates and returns
// the steps in execution order.
func ParseValidationSteps(raw []string) ([]ValidationStep, error) {
	seen := map[ValidationStep]bool{}
	for _, r := range raw {
		s := ValidationStep(strings.ToLower(strings.TrimSpace(r)))
		if s == "" {
			continue
		}
		known := false
		for _, k := range ValidationSteps {
			known = known || k == s
		}
		if !known {
			return nil, Invalid("validation_steps", "unknown step %q, want one of wait_for_boot, screenshot, execute_command", r)
		}
		seen[s] = true
	}
	var out []ValidationStep
	for _, k := range ValidationSteps {
		if seen[k] {
			out = append(out, k)
		}
	}
	return out, nil
}

// ValidateName checks a user-chosen name: 1 to MaxNameLength printable
// characters without control characters or leading/trailing space.
func ValidateName(field, name string) error {
	if name == "" {
		return Invalid(field, "must not be empty")
	}
	if len(name) > MaxNameLength {
		return Invalid(field, "must be at most %d characters", MaxNameLength)
	}
	if strings.TrimSpace(name) != name {
		return Invalid(field, "must not start or end with white space")
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return Invalid(field, "must not contain control characters")
		}
	}
	return nil
}

// EffectiveChainSize returns the chain size backups of this offering use:
// the offering's own value, else the global setting passed in.
func (o Offering) EffectiveChainSize(setting int) int {
	if o.BackupChainSize != nil {
		return *o.BackupChainSize
	}
	return setting
}

// String names the offering for log lines.
func (o Offering) String() string { return fmt.Sprintf("offering %s (%s)", o.Name, o.ID) }

// MaxCount bounds the counts a caller gives (chain sizes, backups to keep):
// the catalogue stores them as INTEGER, 32 bits on PostgreSQL, and one
// range holds on every engine.
const MaxCount = 1_000_000
