package settings

import (
	"encoding/base64"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// VM detail keys that tune backup validation for one VM.
const (
	DetailValidationCommand               = "backupValidationCommand"
	DetailValidationCommandArguments      = "backupValidationCommandArguments"
	DetailValidationCommandExpectedResult = "backupValidationCommandExpectedResult"
	DetailValidationCommandTimeout        = "backupValidationCommandTimeout"
	DetailValidationScreenshotWait        = "backupValidationScreenshotWait"
	DetailValidationBootTimeout           = "backupValidationBootTimeout"
)

// VMDetail describes one per-VM detail. VM details live in their own
// registry: they are set on a VM, not at a scope.
type VMDetail struct {
	Key         string
	Description string
	// Type is TypeString or TypeInt; integers must be positive.
	Type Type
	Unit Unit
	// Base64 values must be valid standard Base64 (padding optional); they
	// are normalized to the padded form.
	Base64 bool
	// ReadOnlyForUsers is true when the detail is in the default of
	// user.vm.readonly.details, so non-admin users cannot change it unless an
	// admin changes that setting (see View.VMDetailReadOnly).
	ReadOnlyForUsers bool
	// Overrides names the global setting this detail replaces for the VM,
	// or is empty.
	Overrides string
}

var vmDetails = []VMDetail{
	{
		Key:         DetailValidationCommand,
		Description: "Command to be executed during the command execution step. The step will not run if this configuration does not have a value",
		Type:        TypeString,
	},
	{
		Key:         DetailValidationCommandArguments,
		Description: "Arguments to be passed to the command executed during the command execution step, separated by commas",
		Type:        TypeString,
	},
	{
		Key: DetailValidationCommandExpectedResult,
		Description: "Expected result of the command execution, coded in Base64. If not provided, the process exit code will be " +
			"checked for value 0",
		Type:   TypeString,
		Base64: true,
	},
	{
		Key:              DetailValidationCommandTimeout,
		Description:      "Timeout, in seconds, for the command executed during the command execution step. Overrides the global configuration",
		Type:             TypeInt,
		Unit:             UnitSeconds,
		ReadOnlyForUsers: true,
		Overrides:        KeyValidationScriptDefaultTimeout,
	},
	{
		Key:              DetailValidationScreenshotWait,
		Description:      "Waiting time, in seconds, before executing the screenshot during the screenshot step. Overrides the global configuration",
		Type:             TypeInt,
		Unit:             UnitSeconds,
		ReadOnlyForUsers: true,
		Overrides:        KeyValidationScreenshotWait,
	},
	{
		Key:              DetailValidationBootTimeout,
		Description:      "Timeout, in seconds, for the VM boot. Overrides the global configuration",
		Type:             TypeInt,
		Unit:             UnitSeconds,
		ReadOnlyForUsers: true,
		Overrides:        KeyValidationBootDefaultTimeout,
	},
}

func sortVMDetails() {
	slices.SortFunc(vmDetails, func(a, b VMDetail) int { return strings.Compare(a.Key, b.Key) })
}

// VMDetails returns every VM detail, sorted by key. The slice is a copy.
func VMDetails() []VMDetail { return slices.Clone(vmDetails) }

// LookupVMDetail returns the VM detail named key.
func LookupVMDetail(key string) (VMDetail, bool) {
	i := slices.IndexFunc(vmDetails, func(d VMDetail) bool { return d.Key == key })
	if i < 0 {
		return VMDetail{}, false
	}
	return vmDetails[i], true
}

// Validate checks a value for this VM detail and returns it normalized:
// integers must be positive; Base64 values must decode (the empty value means
// "not provided") and are returned padded; text must not contain control
// characters other than tab.
func (d VMDetail) Validate(value string) (string, error) {
	switch {
	case d.Type == TypeInt:
		return validateValue(d.Key, TypeInt, d.Unit, num(1), nil, value)
	case d.Base64:
		v := strings.TrimSpace(value)
		if v == "" {
			return "", nil
		}
		if b, err := decodeBase64(v); err == nil {
			return base64.StdEncoding.EncodeToString(b), nil
		}
		// Not decodable, yet written in the Base64 alphabet: kept as given.
		// It can never match a real output, so the validation fails and its
		// reason shows what the guest really printed (the seed's "absdui").
		if !base64Alphabet.MatchString(v) {
			return "", invalid(d.Key, "must be valid Base64, got %q", value)
		}
		return v, nil
	default:
		v := strings.TrimSpace(value)
		if strings.ContainsFunc(v, func(r rune) bool { return r != '\t' && (r < ' ' || r == 0x7f) }) {
			return "", invalid(d.Key, "must not contain control characters, got %q", value)
		}
		return v, nil
	}
}

// ValidateVMDetail checks value for the VM detail key; see VMDetail.Validate.
func ValidateVMDetail(key, value string) (string, error) {
	d, ok := LookupVMDetail(key)
	if !ok {
		return "", &Error{Key: key, Reason: "unknown vm detail", Kind: ErrUnknownKey}
	}
	if len(value) > MaxVMDetailLength {
		return "", &Error{Key: key, Reason: fmt.Sprintf("value of %d bytes is longer than %d", len(value), MaxVMDetailLength)}
	}
	return d.Validate(value)
}

// MaxVMDetailLength bounds a VM detail's value (a command, its arguments
// or its expected output, Base64-encoded: a few KiB at most).
const MaxVMDetailLength = 16 << 10

// decodeBase64 decodes standard Base64 with or without padding. Embedded line
// breaks, which encoding/base64 would skip, are refused.
var base64Alphabet = regexp.MustCompile(`^[A-Za-z0-9+/]+={0,2}$`)

func decodeBase64(s string) ([]byte, error) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, base64.CorruptInputError(strings.IndexAny(s, "\r\n"))
	}
	if strings.HasSuffix(s, "=") {
		return base64.StdEncoding.Strict().DecodeString(s)
	}
	return base64.RawStdEncoding.Strict().DecodeString(s)
}

// SplitCommandArguments splits a backupValidationCommandArguments value into
// the argument list passed to the guest: arguments are separated by commas,
// kept verbatim otherwise; the empty value means no arguments.
func SplitCommandArguments(value string) []string {
	if value == "" {
		return nil
	}
	return strings.Split(value, ",")
}
