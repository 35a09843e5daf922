package settings_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/knib/knib/internal/settings"
)

const (
	perHost = settings.KeyValidationMaxConcurrentPerHost
	chain   = settings.KeyBackupChainSize
	enabled = settings.KeyValidationTaskEnabled
)

func row(scope settings.Scope, id, key, value string) settings.Stored {
	return settings.Stored{Scope: scope, ScopeID: id, Key: key, Value: value}
}

func TestResolvePrecedence(t *testing.T) {
	target := settings.Target{Zone: "z1", Host: "h1", Account: "acme"}
	tests := []struct {
		name    string
		key     string
		target  settings.Target
		stored  []settings.Stored
		agent   map[string]string
		want    string
		source  settings.Source
		scope   settings.Scope
		scopeID string
	}{
		{
			name: "default when nothing stored", key: perHost, target: target,
			want: "1", source: settings.SourceDefault, scope: settings.ScopeGlobal,
		},
		{
			name: "global beats default", key: perHost, target: target,
			stored: []settings.Stored{row(settings.ScopeGlobal, "", perHost, "3")},
			want:   "3", source: settings.SourceGlobal, scope: settings.ScopeGlobal,
		},
		{
			name: "host beats global", key: perHost, target: target,
			stored: []settings.Stored{
				row(settings.ScopeHost, "h1", perHost, "4"),
				row(settings.ScopeGlobal, "", perHost, "3"),
			},
			want: "4", source: settings.SourceHost, scope: settings.ScopeHost, scopeID: "h1",
		},
		{
			name: "agent beats host and global", key: perHost, target: target,
			stored: []settings.Stored{
				row(settings.ScopeGlobal, "", perHost, "3"),
				row(settings.ScopeHost, "h1", perHost, "4"),
			},
			agent: map[string]string{perHost: " 7 "},
			want:  "7", source: settings.SourceAgent, scope: settings.ScopeHost, scopeID: "h1",
		},
		{
			name: "agent beats default", key: perHost, target: target,
			agent: map[string]string{perHost: "0"},
			want:  "0", source: settings.SourceAgent, scope: settings.ScopeHost, scopeID: "h1",
		},
		{
			name: "other host's value ignored", key: perHost, target: target,
			stored: []settings.Stored{
				row(settings.ScopeHost, "h2", perHost, "9"),
				row(settings.ScopeGlobal, "", perHost, "3"),
			},
			want: "3", source: settings.SourceGlobal, scope: settings.ScopeGlobal,
		},
		{
			name: "host value ignored when target has no host", key: perHost, target: settings.Target{Zone: "z1"},
			stored: []settings.Stored{row(settings.ScopeHost, "h1", perHost, "9")},
			want:   "1", source: settings.SourceDefault, scope: settings.ScopeGlobal,
		},
		{
			name: "zone beats global", key: chain, target: target,
			stored: []settings.Stored{
				row(settings.ScopeGlobal, "", chain, "4"),
				row(settings.ScopeZone, "z1", chain, "0"),
				row(settings.ScopeZone, "z2", chain, "2"),
			},
			want: "0", source: settings.SourceZone, scope: settings.ScopeZone, scopeID: "z1",
		},
		{
			name: "other zone's value ignored", key: chain, target: settings.Target{Zone: "z3"},
			stored: []settings.Stored{row(settings.ScopeZone, "z1", chain, "0")},
			want:   "8", source: settings.SourceDefault, scope: settings.ScopeGlobal,
		},
		{
			name: "account beats global", key: enabled, target: target,
			stored: []settings.Stored{
				row(settings.ScopeGlobal, "", enabled, "true"),
				row(settings.ScopeAccount, "acme", enabled, "FALSE"),
			},
			want: "false", source: settings.SourceAccount, scope: settings.ScopeAccount, scopeID: "acme",
		},
		{
			name: "other account's value ignored", key: enabled, target: settings.Target{Account: "other"},
			stored: []settings.Stored{row(settings.ScopeAccount, "acme", enabled, "false")},
			want:   "true", source: settings.SourceDefault, scope: settings.ScopeGlobal,
		},
		{
			name: "rows of other keys ignored", key: chain, target: target,
			stored: []settings.Stored{row(settings.ScopeHost, "h1", perHost, "2")},
			want:   "8", source: settings.SourceDefault, scope: settings.ScopeGlobal,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := settings.Resolve(tc.key, tc.target, tc.stored, tc.agent)
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			want := settings.Value{Key: tc.key, Value: tc.want, Scope: tc.scope, ScopeID: tc.scopeID, Source: tc.source}
			if got != want {
				t.Errorf("got %+v, want %+v", got, want)
			}
		})
	}
}

func TestResolveErrors(t *testing.T) {
	target := settings.Target{Zone: "z1", Host: "h1", Account: "acme"}
	tests := []struct {
		name   string
		key    string
		stored []settings.Stored
		agent  map[string]string
		kind   error
		msg    string // substring
	}{
		{"unknown key", "backup.nope", nil, nil, settings.ErrUnknownKey, "backup.nope: unknown setting"},
		{"unsupported scope", chain, []settings.Stored{row(settings.ScopeHost, "h1", chain, "2")},
			nil, settings.ErrUnsupportedScope, `stored at host scope for "h1": backup.chain.size: cannot be set at host scope`},
		{"invalid stored value", chain, []settings.Stored{row(settings.ScopeZone, "z1", chain, "two")},
			nil, settings.ErrInvalidValue, `stored at zone scope for "z1": backup.chain.size: must be an integer, got "two"`},
		{"invalid global value", chain, []settings.Stored{row(settings.ScopeGlobal, "", chain, "2.5")},
			nil, settings.ErrInvalidValue, `stored at global scope: backup.chain.size: must be an integer`},
		{"duplicate row", chain, []settings.Stored{row(settings.ScopeZone, "z1", chain, "2"), row(settings.ScopeZone, "z1", chain, "3")},
			nil, settings.ErrInvalidValue, `backup.chain.size: stored at zone scope for "z1" more than once`},
		{"unknown scope", chain, []settings.Stored{row("cluster", "c1", chain, "2")},
			nil, settings.ErrUnsupportedScope, `backup.chain.size: stored at unknown scope "cluster"`},
		{"global with scope id", chain, []settings.Stored{row(settings.ScopeGlobal, "z1", chain, "2")},
			nil, settings.ErrUnsupportedScope, `stored at global scope with scope id "z1"`},
		{"zone without scope id", chain, []settings.Stored{row(settings.ScopeZone, "", chain, "2")},
			nil, settings.ErrUnsupportedScope, `stored at zone scope without a scope id`},
		{"invalid agent value", perHost, nil, map[string]string{perHost: "lots"},
			settings.ErrInvalidValue, `agent configuration: backup.validation.max.concurrent.operations.per.host: must be an integer`},
		{"key not agent configurable", chain, nil, map[string]string{chain: "2"},
			settings.ErrUnsupportedScope, `backup.chain.size: cannot be set in the agent configuration file`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := settings.Resolve(tc.key, target, tc.stored, tc.agent)
			if !errors.Is(err, tc.kind) {
				t.Fatalf("err = %v, want kind %v", err, tc.kind)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("message %q does not contain %q", err.Error(), tc.msg)
			}
		})
	}
}

// Rows that do not apply to the target are not validated (the store holds
// rows for many places); malformed rows are refused anyway.
func TestResolveIgnoresBadRowsElsewhere(t *testing.T) {
	stored := []settings.Stored{row(settings.ScopeZone, "z2", chain, "garbage")}
	got, err := settings.Resolve(chain, settings.Target{Zone: "z1"}, stored, nil)
	if err != nil || got.Value != "8" {
		t.Errorf("got %+v, %v", got, err)
	}
}

func TestNewView(t *testing.T) {
	target := settings.Target{Zone: "z1", Host: "h1", Account: "acme"}
	stored := []settings.Stored{
		row(settings.ScopeGlobal, "", settings.KeyKnibTimeout, "100"),
		row(settings.ScopeZone, "z1", settings.KeyKnibTimeout, "200"),
		row(settings.ScopeZone, "z1", settings.KeyCompressionMinimumFreeStorage, "1.5"),
		row(settings.ScopeHost, "h1", settings.KeyCompressionRetryInterval, "5"),
		row(settings.ScopeAccount, "acme", settings.KeyValidationInterval, "12"),
		row(settings.ScopeAccount, "acme", settings.KeyValidationEndChainOnFail, "False"),
		row(settings.ScopeAccount, "other", settings.KeyValidationEndChainOnFail, "true"),
		row(settings.ScopeHost, "h1", settings.KeyCompressionMaxConcurrentPerHost, "2"),
	}
	agent := map[string]string{settings.KeyCompressionMaxConcurrentPerHost: "3"}
	v, err := settings.NewView(target, stored, agent)
	if err != nil {
		t.Fatalf("NewView: %v", err)
	}
	if v.Target() != target {
		t.Errorf("Target = %+v", v.Target())
	}
	if got := v.Int(settings.KeyKnibTimeout); got != 200 {
		t.Errorf("knib.timeout = %d", got)
	}
	if got := v.Duration(settings.KeyKnibTimeout); got != 200*time.Second {
		t.Errorf("knib.timeout duration = %v", got)
	}
	if got := v.Duration(settings.KeyCompressionRetryInterval); got != 5*time.Minute {
		t.Errorf("retry interval = %v", got)
	}
	if got := v.Duration(settings.KeyValidationInterval); got != 12*time.Hour {
		t.Errorf("validation interval = %v", got)
	}
	if got := v.Duration(settings.KeyCompressionTimeout); got != 8*time.Hour {
		t.Errorf("compression timeout default = %v", got)
	}
	if got := v.Float(settings.KeyCompressionMinimumFreeStorage); got != 1.5 {
		t.Errorf("minimum free storage = %v", got)
	}
	if v.Bool(settings.KeyValidationEndChainOnFail) {
		t.Error("end chain on fail should be false for acme")
	}
	if !v.Bool(settings.KeyCompressionTaskEnabled) {
		t.Error("compression task enabled should default to true")
	}
	if got := v.Int(settings.KeyCompressionMaxConcurrentPerHost); got != 3 {
		t.Errorf("per-host limit = %d, want agent value 3", got)
	}
	if got := v.Int(settings.KeyCompressionMaxConcurrent); got != 0 || !settings.Unlimited(got) {
		t.Errorf("zone limit = %d, want unlimited 0", got)
	}
	val, ok := v.Value(settings.KeyCompressionMaxConcurrentPerHost)
	if !ok || val.Source != settings.SourceAgent || val.ScopeID != "h1" {
		t.Errorf("Value = %+v", val)
	}
	if _, ok := v.Value("backup.nope"); ok {
		t.Error("Value found an unknown key")
	}
	vals := v.Values()
	if len(vals) != len(settings.Definitions()) {
		t.Fatalf("Values has %d entries", len(vals))
	}
	for i, d := range settings.Definitions() {
		if vals[i].Key != d.Key {
			t.Errorf("Values[%d] = %s, want %s", i, vals[i].Key, d.Key)
		}
	}
	if got := v.Text(settings.KeyUserVMReadOnlyDetails); got != "backupValidationCommandTimeout,backupValidationScreenshotWait,backupValidationBootTimeout" {
		t.Errorf("readonly details = %q", got)
	}
}

func TestNewViewErrors(t *testing.T) {
	target := settings.Target{Zone: "z1", Host: "h1", Account: "acme"}
	tests := []struct {
		name   string
		stored []settings.Stored
		agent  map[string]string
		kind   error
	}{
		{"unknown key applying to target", []settings.Stored{row(settings.ScopeZone, "z1", "backup.nope", "1")}, nil, settings.ErrUnknownKey},
		{"unknown agent key", nil, map[string]string{"backup.nope": "1"}, settings.ErrUnknownKey},
		{"non-agent key in agent", nil, map[string]string{chain: "1"}, settings.ErrUnsupportedScope},
		{"bad value", []settings.Stored{row(settings.ScopeAccount, "acme", enabled, "maybe")}, nil, settings.ErrInvalidValue},
		{"bad scope", []settings.Stored{row(settings.ScopeAccount, "acme", chain, "3")}, nil, settings.ErrUnsupportedScope},
		{"malformed row elsewhere", []settings.Stored{row(settings.ScopeZone, "", chain, "3")}, nil, settings.ErrUnsupportedScope},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := settings.NewView(target, tc.stored, tc.agent); !errors.Is(err, tc.kind) {
				t.Errorf("err = %v, want %v", err, tc.kind)
			}
		})
	}
	// Unknown keys stored for another place do not concern this view.
	if _, err := settings.NewView(target, []settings.Stored{row(settings.ScopeZone, "z9", "backup.nope", "1")}, nil); err != nil {
		t.Errorf("row for another zone: %v", err)
	}
}

func TestZeroViewYieldsDefaults(t *testing.T) {
	var v settings.View
	for _, tc := range seedTable {
		val, ok := v.Value(tc.key)
		if !ok || val.Value != tc.def || val.Source != settings.SourceDefault {
			t.Errorf("%s: %+v", tc.key, val)
		}
	}
	if got := v.Int(settings.KeyBackupChainSize); got != 8 {
		t.Errorf("chain size = %d", got)
	}
	if got := v.Duration(settings.KeyKnibTimeout); got != 12*time.Hour {
		t.Errorf("knib.timeout = %v", got)
	}
	if got := v.Float(settings.KeyCompressionMinimumFreeStorage); got != 1 {
		t.Errorf("minimum free storage = %v", got)
	}
	if got := v.Int(settings.KeyCompressionCoroutines); got != 4 {
		t.Errorf("coroutines = %d", got)
	}
}

func TestViewGettersPanicOnMisuse(t *testing.T) {
	var v settings.View
	tests := map[string]func(){
		"unknown key":         func() { v.Int("backup.nope") },
		"int of bool":         func() { v.Int(settings.KeyValidationTaskEnabled) },
		"bool of int":         func() { v.Bool(settings.KeyBackupChainSize) },
		"float of int":        func() { v.Float(settings.KeyBackupChainSize) },
		"duration of count":   func() { v.Duration(settings.KeyBackupChainSize) },
		"duration of rate":    func() { v.Duration(settings.KeyCompressionRateLimit) },
		"list of int":         func() { v.List(settings.KeyKnibTimeout) },
		"text of bool":        func() { v.Text(settings.KeyValidationTaskEnabled) },
		"duration of float":   func() { v.Duration(settings.KeyCompressionMinimumFreeStorage) },
		"int of list":         func() { v.Int(settings.KeyUserVMReadOnlyDetails) },
		"bool of unknown key": func() { v.Bool("nope") },
	}
	for name, f := range tests {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			f()
		})
	}
}
