package settings

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Source says where an effective value came from.
type Source string

// Sources, from least to most specific.
const (
	SourceDefault Source = "default"
	SourceGlobal  Source = "global"
	SourceAccount Source = "account"
	SourceZone    Source = "zone"
	SourceHost    Source = "host"
	SourceAgent   Source = "agent"
)

// rank orders sources: a higher rank wins.
var rank = map[Source]int{
	SourceDefault: 0,
	SourceGlobal:  1,
	SourceAccount: 2,
	SourceZone:    3,
	SourceHost:    4,
	SourceAgent:   5,
}

// Value is the effective value of a setting for a target.
type Value struct {
	Key   string
	Value string // normalized
	// Scope and ScopeID say where the value is stored: ScopeID is the zone,
	// host or account name, empty for global and default values. Agent values
	// have ScopeHost and the target's host.
	Scope   Scope
	ScopeID string
	Source  Source
}

// Target is what a value is resolved for. Empty fields are not consulted.
type Target struct {
	Zone, Host, Account string
}

// Stored is one value as the store holds it. ScopeID is empty for
// ScopeGlobal and required for the other scopes.
type Stored struct {
	Scope   Scope
	ScopeID string
	Key     string
	Value   string
}

// applies reports whether s is relevant to t.
func (s Stored) applies(t Target) bool {
	switch s.Scope {
	case ScopeGlobal:
		return true
	case ScopeZone:
		return t.Zone != "" && s.ScopeID == t.Zone
	case ScopeHost:
		return t.Host != "" && s.ScopeID == t.Host
	case ScopeAccount:
		return t.Account != "" && s.ScopeID == t.Account
	}
	return false
}

// where describes a stored row for error messages.
func (s Stored) where() string {
	if s.Scope == ScopeGlobal {
		return "stored at global scope"
	}
	return fmt.Sprintf("stored at %s scope for %q", s.Scope, s.ScopeID)
}

// checkShape refuses rows that are malformed whatever the target.
func (s Stored) checkShape() error {
	switch {
	case !s.Scope.Valid():
		return &Error{Key: s.Key, Reason: fmt.Sprintf("stored at unknown scope %q", s.Scope), Kind: ErrUnsupportedScope}
	case s.Scope == ScopeGlobal && s.ScopeID != "":
		return &Error{Key: s.Key, Reason: fmt.Sprintf("stored at global scope with scope id %q", s.ScopeID), Kind: ErrUnsupportedScope}
	case s.Scope != ScopeGlobal && s.ScopeID == "":
		return &Error{Key: s.Key, Reason: fmt.Sprintf("stored at %s scope without a scope id", s.Scope), Kind: ErrUnsupportedScope}
	}
	return nil
}

// Resolve returns the effective value of key for target.
//
// stored is the content of the settings store (rows for any key and any
// place; only rows of key that apply to target are used). agent is the parsed
// agent configuration file of target.Host (see ParseProperties), or nil.
//
// The most specific value present wins:
//
//	agent file > host > zone > account > global > default
//
// Why this order: limits exist to protect a place, so the narrower the place
// the better its owner knows it. The agent file is written on the machine
// itself by whoever runs it, and the seed says it overrides the setting of the
// same name, so it beats everything. A host belongs to one zone, so a host
// value is more specific than a zone value. Accounts are orthogonal to
// placement; they rank below zone so that operator-set placement values are
// never loosened by an account value, and above global because they are
// still narrower than the whole installation. In the current registry every
// setting has one scope besides global, so only agent > host, and any scope
// > global > default, can actually compete.
//
// Rows that apply to target must name a registered key at a scope the setting
// supports and hold a valid value, and a key may be stored at most once per
// place; otherwise Resolve fails rather than guess. Rows with an unknown scope
// or a missing (or, for global, superfluous) scope id are refused whatever
// the target.
func Resolve(key string, target Target, stored []Stored, agent map[string]string) (Value, error) {
	d, err := lookup(key)
	if err != nil {
		return Value{}, err
	}
	var rows []Stored
	for _, s := range stored {
		if s.Key == key {
			rows = append(rows, s)
		}
	}
	var agentValue *string
	if v, ok := agent[key]; ok {
		agentValue = &v
	}
	return resolve(d, target, rows, agentValue)
}

// resolve computes the effective value of d from rows (all with d's key)
// and an optional agent value.
func resolve(d *Definition, target Target, rows []Stored, agentValue *string) (Value, error) {
	best := Value{Key: d.Key, Value: d.Default, Scope: ScopeGlobal, Source: SourceDefault}
	seen := make(map[Stored]bool, len(rows))
	for _, s := range rows {
		if err := s.checkShape(); err != nil {
			return Value{}, err
		}
		if !s.applies(target) {
			continue
		}
		if err := d.checkScope(s.Scope); err != nil {
			return Value{}, fmt.Errorf("%s: %w", s.where(), err)
		}
		place := Stored{Scope: s.Scope, ScopeID: s.ScopeID}
		if seen[place] {
			return Value{}, &Error{Key: d.Key, Reason: s.where() + " more than once", Kind: ErrInvalidValue}
		}
		seen[place] = true
		v, err := d.Validate(s.Value)
		if err != nil {
			return Value{}, fmt.Errorf("%s: %w", s.where(), err)
		}
		src := Source(s.Scope)
		if rank[src] > rank[best.Source] {
			best = Value{Key: d.Key, Value: v, Scope: s.Scope, ScopeID: s.ScopeID, Source: src}
		}
	}
	if agentValue != nil {
		if !d.AgentConfigurable {
			return Value{}, notAgentConfigurable(d.Key)
		}
		v, err := d.Validate(*agentValue)
		if err != nil {
			return Value{}, fmt.Errorf("agent configuration: %w", err)
		}
		best = Value{Key: d.Key, Value: v, Scope: ScopeHost, ScopeID: target.Host, Source: SourceAgent}
	}
	return best, nil
}

func notAgentConfigurable(key string) error {
	var keys []string
	for _, d := range definitions {
		if d.AgentConfigurable {
			keys = append(keys, d.Key)
		}
	}
	return &Error{Key: key, Reason: fmt.Sprintf("cannot be set in the agent configuration file (allowed: %s)", strings.Join(keys, ", ")), Kind: ErrUnsupportedScope}
}

// View holds the effective value of every setting for one target. Build it
// with NewView; the zero View yields the defaults. A View is immutable and
// safe for concurrent use.
//
// The typed getters panic when the key is not registered or has another
// type: both are programming errors (use the Key* constants).
type View struct {
	target Target
	values map[string]Value
}

// NewView resolves every setting for target; see Resolve for the order and
// for which rows must be valid. Rows for unknown keys that apply to target
// and agent entries for unknown or non-agent keys are errors.
func NewView(target Target, stored []Stored, agent map[string]string) (View, error) {
	byKey := make(map[string][]Stored)
	for _, s := range stored {
		if err := s.checkShape(); err != nil {
			return View{}, err
		}
		if !s.applies(target) {
			continue
		}
		if _, err := lookup(s.Key); err != nil {
			return View{}, fmt.Errorf("%s: %w", s.where(), err)
		}
		byKey[s.Key] = append(byKey[s.Key], s)
	}
	for k := range agent {
		if _, err := lookup(k); err != nil {
			return View{}, fmt.Errorf("agent configuration: %w", err)
		}
	}
	v := View{target: target, values: make(map[string]Value, len(definitions))}
	for i := range definitions {
		d := &definitions[i]
		var av *string
		if a, ok := agent[d.Key]; ok {
			av = &a
		}
		val, err := resolve(d, target, byKey[d.Key], av)
		if err != nil {
			return View{}, err
		}
		v.values[d.Key] = val
	}
	return v, nil
}

// Target returns the target the view was built for.
func (v View) Target() Target { return v.target }

// Value returns the effective value of key; false if key is not registered.
func (v View) Value(key string) (Value, bool) {
	d, err := lookup(key)
	if err != nil {
		return Value{}, false
	}
	if val, ok := v.values[key]; ok {
		return val, true
	}
	return Value{Key: key, Value: d.Default, Scope: ScopeGlobal, Source: SourceDefault}, true
}

// Values returns the effective value of every setting, sorted by key.
func (v View) Values() []Value {
	out := make([]Value, 0, len(definitions))
	for _, d := range definitions {
		val, _ := v.Value(d.Key)
		out = append(out, val)
	}
	return out
}

// typed returns the normalized value of key after checking its type.
func (v View) typed(key string, want ...Type) (string, *Definition) {
	d, err := lookup(key)
	if err != nil {
		panic("settings: " + err.Error())
	}
	if !slices.Contains(want, d.Type) {
		panic(fmt.Sprintf("settings: %s is a %s setting, not %s", key, d.Type, want[0]))
	}
	val, _ := v.Value(key)
	return val.Value, d
}

// Int returns the effective value of an int setting.
func (v View) Int(key string) int64 {
	s, _ := v.typed(key, TypeInt)
	return mustInt(s)
}

// Float returns the effective value of a float setting.
func (v View) Float(key string) float64 {
	s, _ := v.typed(key, TypeFloat)
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		panic("settings: normalized float " + strconv.Quote(s) + ": " + err.Error())
	}
	return f
}

// Bool returns the effective value of a bool setting.
func (v View) Bool(key string) bool {
	s, _ := v.typed(key, TypeBool)
	return s == "true"
}

// Text returns the effective value of a string or list setting as stored.
func (v View) Text(key string) string {
	s, _ := v.typed(key, TypeString, TypeList)
	return s
}

// List returns the items of a list setting (nil if empty).
func (v View) List(key string) []string {
	s, _ := v.typed(key, TypeList)
	return SplitList(s)
}

// Duration returns the effective value of an int setting whose unit is
// seconds, minutes or hours, as a time.Duration. It panics for other units.
func (v View) Duration(key string) time.Duration {
	s, d := v.typed(key, TypeInt)
	u := unitDuration(d.Unit)
	if u == 0 {
		panic(fmt.Sprintf("settings: %s is not a duration (unit %q)", key, d.Unit))
	}
	return time.Duration(mustInt(s)) * u
}

// VMDetailReadOnly reports whether non-admin users may not change the VM
// detail key, according to the effective user.vm.readonly.details.
func (v View) VMDetailReadOnly(key string) bool {
	return slices.Contains(v.List(KeyUserVMReadOnlyDetails), key)
}

// VMDuration returns the duration a VM uses for a timeout-like VM detail
// (backupValidationCommandTimeout, backupValidationScreenshotWait,
// backupValidationBootTimeout): the VM's own detail when set and non-empty,
// else the global setting the detail overrides, as resolved by this view.
func (v View) VMDuration(detailKey string, vmDetails map[string]string) (time.Duration, error) {
	d, ok := LookupVMDetail(detailKey)
	if !ok {
		return 0, &Error{Key: detailKey, Reason: "unknown vm detail", Kind: ErrUnknownKey}
	}
	if d.Overrides == "" || unitDuration(d.Unit) == 0 {
		return 0, &Error{Key: detailKey, Reason: "is not a duration", Kind: ErrInvalidValue}
	}
	if raw, ok := vmDetails[detailKey]; ok && raw != "" {
		s, err := d.Validate(raw)
		if err != nil {
			return 0, err
		}
		return time.Duration(mustInt(s)) * unitDuration(d.Unit), nil
	}
	return v.Duration(d.Overrides), nil
}

// SplitList splits a normalized list value ("a,b,c") into its items; the
// empty value yields nil.
func SplitList(value string) []string {
	var out []string
	for item := range strings.SplitSeq(value, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// mustInt parses a value already normalized by Validate.
func mustInt(s string) int64 {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		panic("settings: normalized int " + strconv.Quote(s) + ": " + err.Error())
	}
	return n
}
