package settings

import (
	"fmt"
	"slices"
	"strings"
)

// Type is the value type of a setting or VM detail.
type Type string

// Value types. Every value is stored and exchanged as a string; the type says
// how that string is parsed and normalized.
const (
	TypeInt    Type = "int"    // base-10 integer; floats are refused
	TypeFloat  Type = "float"  // real number, no NaN or infinity
	TypeBool   Type = "bool"   // true or false, any case, normalized to lower case
	TypeString Type = "string" // free text
	TypeList   Type = "list"   // comma-separated words, normalized to "a,b,c"
)

// Unit says what a numeric value counts. Durations use the time units.
type Unit string

// Units of numeric settings. The empty unit means a plain count.
const (
	UnitNone        Unit = ""
	UnitSeconds     Unit = "seconds"
	UnitMinutes     Unit = "minutes"
	UnitHours       Unit = "hours"
	UnitMBPerSecond Unit = "MB/s"
	UnitBackupSize  Unit = "x backup size"
)

// Scope is where a setting value is stored.
type Scope string

// Scopes, from least to most specific as far as placement goes.
const (
	ScopeGlobal  Scope = "global"
	ScopeZone    Scope = "zone"
	ScopeHost    Scope = "host"
	ScopeAccount Scope = "account"
)

// allScopes lists the valid scopes in display order.
var allScopes = []Scope{ScopeGlobal, ScopeZone, ScopeHost, ScopeAccount}

// Valid reports whether s is one of the four scopes.
func (s Scope) Valid() bool { return slices.Contains(allScopes, s) }

// ParseScope parses a scope name as given by a user (case-insensitive,
// surrounding spaces ignored).
func ParseScope(s string) (Scope, error) {
	sc := Scope(strings.ToLower(strings.TrimSpace(s)))
	if !sc.Valid() {
		return "", fmt.Errorf("unknown scope %q (want global, zone, host or account): %w", s, ErrUnsupportedScope)
	}
	return sc, nil
}

// Setting keys. The names are those of the CloudStack KBOSS provider; the
// product is knib, so the provider timeout is knib.timeout.
const (
	KeyBackupChainSize = "backup.chain.size"
	KeyKnibTimeout     = "knib.timeout"

	KeyCompressionTaskEnabled          = "backup.compression.task.enabled"
	KeyCompressionMaxConcurrentPerHost = "backup.compression.max.concurrent.operations.per.host"
	KeyCompressionMaxConcurrent        = "backup.compression.max.concurrent.operations"
	KeyCompressionMaxJobRetries        = "backup.compression.max.job.retries"
	KeyCompressionRetryInterval        = "backup.compression.retry.interval"
	KeyCompressionTimeout              = "backup.compression.timeout"
	KeyCompressionMinimumFreeStorage   = "backup.compression.minimum.free.storage"
	KeyCompressionCoroutines           = "backup.compression.coroutines"
	KeyCompressionRateLimit            = "backup.compression.rate.limit"
	KeyCopyTaskEnabled                 = "backup.copy.task.enabled"
	KeyCopyMaxConcurrentPerHost        = "backup.copy.max.concurrent.operations.per.host"
	KeyCopyMaxConcurrent               = "backup.copy.max.concurrent.operations"
	KeyCopyMaxJobRetries               = "backup.copy.max.job.retries"
	KeyCopyRetryInterval               = "backup.copy.retry.interval"
	KeyCopyTimeout                     = "backup.copy.timeout"

	KeyValidationTaskEnabled          = "backup.validation.task.enabled"
	KeyValidationInterval             = "backup.validation.interval"
	KeyValidationMaxConcurrent        = "backup.validation.max.concurrent.operations"
	KeyValidationMaxConcurrentPerHost = "backup.validation.max.concurrent.operations.per.host"
	KeyValidationBootDefaultTimeout   = "backup.validation.boot.default.timeout"
	KeyValidationScriptDefaultTimeout = "backup.validation.script.default.timeout"
	KeyValidationScreenshotWait       = "backup.validation.screenshot.default.wait"
	KeyValidationEndChainOnFail       = "backup.validation.end.chain.on.fail"
	KeyEnforceLimitOnValidationVM     = "enforce.resource.limit.on.backup.validation.vm"

	// Not in the seed's table, but used by the provider's validation
	// scheduler (kboss-behaviour §7.1, §11.2).
	KeyValidationTimeout = "backup.validation.timeout"

	// File-level restore (knib's own).
	KeyFileHelperIdleTimeout   = "backup.file.helper.idle.timeout"
	KeyFileHelperMaxPerHost    = "backup.file.helper.max.per.host"
	KeyValidationMaxJobRetries = "backup.validation.max.job.retries"
	KeyValidationRetryInterval = "backup.validation.retry.interval"

	// Named by the seed as the way to change which VM details users may not
	// edit.
	KeyUserVMReadOnlyDetails = "user.vm.readonly.details"

	// knib's own: restores check the recorded hash of every backup file
	// they read (issue 18).
	KeyRestoreVerifyHashes = "backup.restore.verify.hashes"

	KeyAuditRetentionDays = "audit.retention.days"
)

// MaxCoroutines is the largest backup.compression.coroutines value: qemu-img
// convert -m accepts at most 16.
const MaxCoroutines = 16

// Definition describes one setting.
type Definition struct {
	Key  string
	Type Type
	// Default is the value used when nothing is stored, in normalized form.
	Default string
	// Min and Max bound numeric values (inclusive); nil means unbounded.
	Min, Max *float64
	Unit     Unit
	// Description is the user-facing help text.
	Description string
	// Scopes lists where the setting may be set besides global.
	Scopes []Scope
	// AgentConfigurable settings may also appear in a host's agent
	// configuration file, which overrides every stored value for that host.
	AgentConfigurable bool
}

// SupportsScope reports whether the setting may be set at scope s. Every
// setting supports ScopeGlobal.
func (d Definition) SupportsScope(s Scope) bool {
	return s == ScopeGlobal || slices.Contains(d.Scopes, s)
}

// AllowedScopes lists global followed by the setting's other scopes.
func (d Definition) AllowedScopes() []Scope {
	return append([]Scope{ScopeGlobal}, d.Scopes...)
}

func (d Definition) clone() Definition {
	d.Scopes = slices.Clone(d.Scopes)
	if d.Min != nil {
		d.Min = num(*d.Min)
	}
	if d.Max != nil {
		d.Max = num(*d.Max)
	}
	return d
}

func num(f float64) *float64 { return &f }

const (
	perHostAgentNote = " Can also be set in the agent configuration file of a host, which overrides the value stored for that host."
)

// definitions is the registry. Defaults, types and descriptions come from the
// seed's "New settings" table (CloudStack PR #12758); scopes from
// kboss-behaviour §11.2 mapped zone→zone, cluster→host, account→account.
var definitions = []Definition{
	{
		// One range with an offering's backup_chain_size (domain.MaxCount):
		// 0 is unlimited, negative values are refused everywhere.
		Key: KeyBackupChainSize, Type: TypeInt, Default: "8", Min: num(0), Max: num(1000000),
		Description: "Determines the max size of a backup chain. If cloud admins set it to 1, all the backups will be full backups. " +
			"With 0, the backup chain will be unlimited, unless it is stopped by another process (negative values are refused, as for an offering's chain size). " +
			"Please note that unlimited backup chains have a higher chance of getting corrupted, as new backups will be dependent on all of the older ones.",
		Scopes: []Scope{ScopeZone},
	},
	{
		Key: KeyKnibTimeout, Type: TypeInt, Default: "43200", Min: num(1), Unit: UnitSeconds,
		Description: "Timeout, in seconds, to execute KNIB commands. After the command times out, the Management Server " +
			"will still wait for another knib.timeout seconds to receive a response from the Agent.",
		Scopes: []Scope{ScopeZone},
	},
	{
		Key: KeyCompressionTaskEnabled, Type: TypeBool, Default: "true",
		Description: "Determines whether the task responsible for scheduling compression jobs is active. If not, compression jobs will not run",
		Scopes:      []Scope{ScopeAccount},
	},
	{
		Key: KeyCompressionMaxConcurrentPerHost, Type: TypeInt, Default: "5",
		Description: "Maximum number of concurrent compression jobs on each host. Compression finalization jobs ignore this setting. " +
			"Values lower than 1 disable the limit." + perHostAgentNote,
		Scopes: []Scope{ScopeHost}, AgentConfigurable: true,
	},
	{
		Key: KeyCompressionMaxConcurrent, Type: TypeInt, Default: "0",
		Description: "Maximum number of compression jobs that can be executed at the same time in the zone. Values lower than 1 disable the limit.",
		Scopes:      []Scope{ScopeZone},
	},
	{
		Key: KeyCompressionMaxJobRetries, Type: TypeInt, Default: "2", Min: num(0),
		Description: "Maximum number of attempts for executing compression jobs",
		Scopes:      []Scope{ScopeHost},
	},
	{
		Key: KeyCompressionRetryInterval, Type: TypeInt, Default: "60", Min: num(1), Unit: UnitMinutes,
		Description: "Interval, in minutes, between attempts to run compression jobs",
		Scopes:      []Scope{ScopeHost},
	},
	{
		Key: KeyCompressionTimeout, Type: TypeInt, Default: "28800", Min: num(1), Unit: UnitSeconds,
		Description: "Timeout, in seconds, for running compression jobs",
		Scopes:      []Scope{ScopeHost},
	},
	{
		Key: KeyCompressionMinimumFreeStorage, Type: TypeFloat, Default: "1", Min: num(0), Unit: UnitBackupSize,
		Description: "Minimum required available storage to start the backup compression process. This setting accepts a real number " +
			"that is multiplied by the total size of the backup to determine the necessary available space. By default, the storage " +
			"must have the same amount of available space as the space occupied by the backup.",
		Scopes: []Scope{ScopeZone},
	},
	{
		// 4 (the seed's default is 1): on a 2-core host qemu-img convert -c
		// with -m 4 compresses a backup 1.3x faster than with -m 2, and -m 8
		// gains nothing more (bench/README.md, compression).
		Key: KeyCompressionCoroutines, Type: TypeInt, Default: "4", Min: num(1), Max: num(MaxCoroutines),
		Description: "Number of coroutines used for the compression process, each coroutine has its own thread",
		Scopes:      []Scope{ScopeHost},
	},
	{
		Key: KeyCompressionRateLimit, Type: TypeInt, Default: "0", Min: num(0), Unit: UnitMBPerSecond,
		Description: "Compression rate limit, in MB/s. Values less than 1 disable the limit",
		Scopes:      []Scope{ScopeHost},
	},
	{
		Key: KeyCopyTaskEnabled, Type: TypeBool, Default: "true",
		Description: "Determines whether offsite copy jobs run. If not, copies stay queued.",
		Scopes:      []Scope{ScopeAccount},
	},
	{
		Key: KeyCopyMaxConcurrentPerHost, Type: TypeInt, Default: "2",
		Description: "Maximum number of concurrent offsite copy jobs (uploads to remotes) on each host. Values lower than 1 disable the limit." + perHostAgentNote,
		Scopes:      []Scope{ScopeHost}, AgentConfigurable: true,
	},
	{
		Key: KeyCopyMaxConcurrent, Type: TypeInt, Default: "0",
		Description: "Maximum number of offsite copy jobs that can run at the same time in the zone. Values lower than 1 disable the limit.",
		Scopes:      []Scope{ScopeZone},
	},
	{
		Key: KeyCopyMaxJobRetries, Type: TypeInt, Default: "5", Min: num(0),
		Description: "Maximum number of attempts of an offsite copy job; each attempt resumes the uploads where the last one stopped",
		Scopes:      []Scope{ScopeHost},
	},
	{
		Key: KeyCopyRetryInterval, Type: TypeInt, Default: "5", Min: num(1), Unit: UnitMinutes,
		Description: "Interval, in minutes, between attempts of an offsite copy job",
		Scopes:      []Scope{ScopeHost},
	},
	{
		Key: KeyCopyTimeout, Type: TypeInt, Default: "86400", Min: num(1), Unit: UnitSeconds,
		Description: "Timeout, in seconds, of one attempt of an offsite copy job",
		Scopes:      []Scope{ScopeHost},
	},
	{
		Key: KeyValidationTaskEnabled, Type: TypeBool, Default: "true",
		Description: "Determines whether the task responsible for scheduling validation jobs is active. If it is not active, validation jobs will not run.",
		Scopes:      []Scope{ScopeAccount},
	},
	{
		Key: KeyValidationInterval, Type: TypeInt, Default: "24", Min: num(1), Unit: UnitHours,
		Description: "Interval, in hours, between two validations of the same backup",
		Scopes:      []Scope{ScopeAccount},
	},
	{
		Key: KeyValidationMaxConcurrent, Type: TypeInt, Default: "0",
		Description: "Maximum number of validation jobs that can be executed at the same time in the zone. Values lower than 1 disable the limit.",
		Scopes:      []Scope{ScopeZone},
	},
	{
		Key: KeyValidationMaxConcurrentPerHost, Type: TypeInt, Default: "1",
		Description: "Maximum number of validation jobs that can be executed at the same time on each host. Values lower than 1 disable the limit." +
			perHostAgentNote,
		Scopes: []Scope{ScopeHost}, AgentConfigurable: true,
	},
	{
		Key: KeyValidationBootDefaultTimeout, Type: TypeInt, Default: "240", Min: num(1), Unit: UnitSeconds,
		Description: "Default timeout, in seconds, for the boot validation step",
		Scopes:      []Scope{ScopeAccount},
	},
	{
		Key: KeyValidationScriptDefaultTimeout, Type: TypeInt, Default: "60", Min: num(1), Unit: UnitSeconds,
		Description: "Default timeout, in seconds, for the script validation step",
		Scopes:      []Scope{ScopeAccount},
	},
	{
		Key: KeyValidationScreenshotWait, Type: TypeInt, Default: "60", Min: num(1), Unit: UnitSeconds,
		Description: "Default waiting time, in seconds, before executing the VM screenshot",
		Scopes:      []Scope{ScopeAccount},
	},
	{
		Key: KeyValidationEndChainOnFail, Type: TypeBool, Default: "true",
		Description: "If true, ends the current backup chain if backup validation fails and the backup belongs to that chain.",
		Scopes:      []Scope{ScopeAccount},
	},
	{
		Key: KeyEnforceLimitOnValidationVM, Type: TypeBool, Default: "false",
		Description: "If true, the creation of validation VMs is bound by the account/domain resource limits.",
		Scopes:      []Scope{ScopeAccount},
	},
	{
		Key: KeyValidationTimeout, Type: TypeInt, Default: "3600", Min: num(1), Unit: UnitSeconds,
		Description: "Timeout, in seconds, for running validation jobs. Jobs still executing after 2.5 times this value are considered lost and treated as failed.",
		Scopes:      []Scope{ScopeHost},
	},
	{
		Key: KeyFileHelperIdleTimeout, Type: TypeInt, Default: "300", Min: num(1), Unit: UnitSeconds,
		Description: "Seconds after its last call that a file-restore helper (the isolated appliance that reads a backup's file systems) is stopped",
		Scopes:      []Scope{ScopeHost},
	},
	{
		Key: KeyFileHelperMaxPerHost, Type: TypeInt, Default: "2", Min: num(1),
		Description: "Maximum number of file-restore helpers running at the same time on each host; one more ends the longest idle one",
		Scopes:      []Scope{ScopeHost},
	},
	{
		Key: KeyValidationMaxJobRetries, Type: TypeInt, Default: "2", Min: num(0),
		Description: "Maximum number of attempts for executing validation jobs",
		Scopes:      []Scope{ScopeAccount},
	},
	{
		Key: KeyValidationRetryInterval, Type: TypeInt, Default: "60", Min: num(1), Unit: UnitMinutes,
		Description: "Interval, in minutes, between attempts to run validation jobs",
		Scopes:      []Scope{ScopeAccount},
	},
	{
		Key: KeyRestoreVerifyHashes, Type: TypeBool, Default: "true",
		Description: "If true, every restore, volume restore, create-vm, consolidation after a quick restore and storage migration " +
			"checks that the backup files it reads still hash to the hashes recorded when they were written, and stops on a mismatch.",
	},
	{
		Key: KeyAuditRetentionDays, Type: TypeInt, Default: "365", Min: num(1), Unit: UnitNone,
		Description: "Days an audit log line (a state-changing API call) is kept; the server removes older lines every hour",
	},
	{
		Key: KeyUserVMReadOnlyDetails, Type: TypeList,
		Default: DetailValidationCommandTimeout + "," + DetailValidationScreenshotWait + "," + DetailValidationBootTimeout,
		Description: "Comma-separated list of VM details that non-admin users can see but not change. " +
			"By default the backup validation timeouts are read-only for users.",
	},
}

// index maps a key to its position in definitions.
var index map[string]int

func init() {
	definitions = append(definitions, notifyDefinitions...)
	slices.SortFunc(definitions, func(a, b Definition) int { return strings.Compare(a.Key, b.Key) })
	index = make(map[string]int, len(definitions))
	for i, d := range definitions {
		if _, dup := index[d.Key]; dup {
			panic("settings: duplicate definition " + d.Key)
		}
		index[d.Key] = i
		if norm, err := d.Validate(d.Default); err != nil || norm != d.Default {
			panic(fmt.Sprintf("settings: bad default for %s: %q (%v)", d.Key, d.Default, err))
		}
	}
	sortVMDetails()
}

// Definitions returns every setting, sorted by key. The slice is a copy.
func Definitions() []Definition {
	out := make([]Definition, len(definitions))
	for i, d := range definitions {
		out[i] = d.clone()
	}
	return out
}

// Lookup returns the definition of key.
func Lookup(key string) (Definition, bool) {
	i, ok := index[key]
	if !ok {
		return Definition{}, false
	}
	return definitions[i].clone(), true
}

// lookup is Lookup without the copy, for internal read-only use.
func lookup(key string) (*Definition, error) {
	i, ok := index[key]
	if !ok {
		return nil, &Error{Key: key, Reason: "unknown setting", Kind: ErrUnknownKey}
	}
	return &definitions[i], nil
}

// CheckScope reports whether key may be set at scope s: the key must be
// registered, s must be a valid scope and the setting must support it.
func CheckScope(key string, s Scope) error {
	d, err := lookup(key)
	if err != nil {
		return err
	}
	return d.checkScope(s)
}

func (d *Definition) checkScope(s Scope) error {
	if !s.Valid() {
		return &Error{Key: d.Key, Reason: fmt.Sprintf("unknown scope %q (want global, zone, host or account)", s), Kind: ErrUnsupportedScope}
	}
	if !d.SupportsScope(s) {
		return &Error{Key: d.Key, Reason: fmt.Sprintf("cannot be set at %s scope (supported: %s)", s, joinScopes(d.AllowedScopes())), Kind: ErrUnsupportedScope}
	}
	return nil
}

func joinScopes(ss []Scope) string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = string(s)
	}
	return strings.Join(parts, ", ")
}

// Unlimited reports whether a limit value means "no limit": chain size,
// concurrency limits and the compression rate limit are unlimited below 1.
func Unlimited(n int64) bool { return n < 1 }
