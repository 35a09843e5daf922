// Package settings is knib's typed registry of configuration settings and VM
// details, with the rules that validate them and resolve the value that
// applies to a given zone, host and account. It imports only the standard
// library.
//
// Vocabulary:
//   - Setting: a named, typed knob of the backup provider, such as
//     backup.chain.size. Its Definition gives the type (int, float, bool,
//     string or list), the default, the allowed range, the unit, a
//     description and the scopes at which it may be set.
//   - Key: the dotted name of a setting ("backup.compression.timeout") or the
//     camel-case name of a VM detail ("backupValidationBootTimeout"). Keys are
//     case-sensitive and exported as Key* and Detail* constants.
//   - Scope: where a value is stored: global, zone, host or account. Every
//     setting can be set globally; each setting lists the other scopes it
//     accepts (CloudStack's zone, cluster and account scopes map to zone, host
//     and account). CheckScope refuses the others.
//   - Override: a value stored at a more specific place than the one it
//     replaces: a zone, host or account value overrides the global value, and
//     the agent configuration file of a host overrides both for the two
//     per-host concurrency limits. A VM detail overrides the global setting it
//     names for that VM only.
//   - Effective value: the value that applies to a target (zone, host,
//     account) after all overrides: the most specific value present wins, in
//     the order agent file > host > zone > account > global > default (see
//     Resolve for why).
//   - Source: where the effective value came from: "default", "global",
//     "zone", "host", "account" or "agent".
//   - VM detail: a per-VM key/value (backupValidationCommand, ...) that tunes
//     backup validation for that VM; some are read-only for non-admin users,
//     as listed by the setting user.vm.readonly.details.
//   - Agent configuration file: the key=value properties file of a host's
//     agent; ParseProperties reads it. Only settings marked AgentConfigurable
//     may appear in it.
//   - Unlimited: for limits (chain size, concurrency, rate), a value lower than
//     1 means "no limit"; see Unlimited.
//
// Errors are *Error values naming the key and the broken rule
// ("backup.chain.size: must be an integer, got \"abc\""); they wrap one of the
// sentinels ErrUnknownKey, ErrInvalidValue or ErrUnsupportedScope so callers
// can tell them apart with errors.Is.
package settings
