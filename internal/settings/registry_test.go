package settings_test

import (
	"errors"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/knib/knib/internal/settings"
)

// seedTable is the seed's "New settings" table (CloudStack PR #12758), with
// the scope of each key from kboss-behaviour §11.2 mapped to knib's scopes
// (zone→zone, cluster→host, account→account). Where §11.2 gives a different
// default the seed wins (both max.concurrent.operations keys: 0, not 10).
var seedTable = []struct {
	key   string
	def   string
	typ   settings.Type
	scope settings.Scope
	unit  settings.Unit
}{
	{"backup.chain.size", "8", settings.TypeInt, settings.ScopeZone, ""},
	{"knib.timeout", "43200", settings.TypeInt, settings.ScopeZone, settings.UnitSeconds},
	{"backup.compression.task.enabled", "true", settings.TypeBool, settings.ScopeAccount, ""},
	{"backup.compression.max.concurrent.operations.per.host", "5", settings.TypeInt, settings.ScopeHost, ""},
	{"backup.compression.max.concurrent.operations", "0", settings.TypeInt, settings.ScopeZone, ""},
	{"backup.compression.max.job.retries", "2", settings.TypeInt, settings.ScopeHost, ""},
	{"backup.compression.retry.interval", "60", settings.TypeInt, settings.ScopeHost, settings.UnitMinutes},
	{"backup.compression.timeout", "28800", settings.TypeInt, settings.ScopeHost, settings.UnitSeconds},
	{"backup.compression.minimum.free.storage", "1", settings.TypeFloat, settings.ScopeZone, settings.UnitBackupSize},
	{"backup.compression.coroutines", "4", settings.TypeInt, settings.ScopeHost, ""},
	{"backup.compression.rate.limit", "0", settings.TypeInt, settings.ScopeHost, settings.UnitMBPerSecond},
	{"backup.validation.task.enabled", "true", settings.TypeBool, settings.ScopeAccount, ""},
	{"backup.validation.interval", "24", settings.TypeInt, settings.ScopeAccount, settings.UnitHours},
	{"backup.validation.max.concurrent.operations", "0", settings.TypeInt, settings.ScopeZone, ""},
	{"backup.validation.max.concurrent.operations.per.host", "1", settings.TypeInt, settings.ScopeHost, ""},
	{"backup.validation.boot.default.timeout", "240", settings.TypeInt, settings.ScopeAccount, settings.UnitSeconds},
	{"backup.validation.script.default.timeout", "60", settings.TypeInt, settings.ScopeAccount, settings.UnitSeconds},
	{"backup.validation.screenshot.default.wait", "60", settings.TypeInt, settings.ScopeAccount, settings.UnitSeconds},
	{"backup.validation.end.chain.on.fail", "true", settings.TypeBool, settings.ScopeAccount, ""},
	{"enforce.resource.limit.on.backup.validation.vm", "false", settings.TypeBool, settings.ScopeAccount, ""},
}

// extraTable holds the settings knib registers beyond the seed's table:
// validation scheduler knobs from kboss-behaviour §11.2 and the
// user.vm.readonly.details setting the seed names.
var extraTable = []struct {
	key   string
	def   string
	typ   settings.Type
	scope settings.Scope // "" = global only
	unit  settings.Unit
}{
	{"backup.validation.timeout", "3600", settings.TypeInt, settings.ScopeHost, settings.UnitSeconds},
	{"backup.validation.max.job.retries", "2", settings.TypeInt, settings.ScopeAccount, ""},
	{"backup.validation.retry.interval", "60", settings.TypeInt, settings.ScopeAccount, settings.UnitMinutes},
	{"user.vm.readonly.details", "backupValidationCommandTimeout,backupValidationScreenshotWait,backupValidationBootTimeout", settings.TypeList, "", ""},
	{"backup.restore.verify.hashes", "true", settings.TypeBool, "", ""},
	{"backup.file.helper.idle.timeout", "300", settings.TypeInt, settings.ScopeHost, settings.UnitSeconds},
	{"backup.file.helper.max.per.host", "2", settings.TypeInt, settings.ScopeHost, ""},
	{"audit.retention.days", "365", settings.TypeInt, "", ""},
	{"notify.interval", "30", settings.TypeInt, "", settings.UnitSeconds},
	{"notify.agent.down.after", "300", settings.TypeInt, "", settings.UnitSeconds},
	{"notify.storage.free.percent", "10", settings.TypeFloat, "", ""},
	{"notify.max.attempts", "8", settings.TypeInt, "", ""},
	{"notify.link.base.url", "", settings.TypeString, "", ""},
	{"backup.copy.task.enabled", "true", settings.TypeBool, settings.ScopeAccount, ""},
	{"backup.copy.max.concurrent.operations.per.host", "2", settings.TypeInt, settings.ScopeHost, ""},
	{"backup.copy.max.concurrent.operations", "0", settings.TypeInt, settings.ScopeZone, ""},
	{"backup.copy.max.job.retries", "5", settings.TypeInt, settings.ScopeHost, ""},
	{"backup.copy.retry.interval", "5", settings.TypeInt, settings.ScopeHost, settings.UnitMinutes},
	{"backup.copy.timeout", "86400", settings.TypeInt, settings.ScopeHost, settings.UnitSeconds},
}

func TestSeedSettingsPresentWithDefaults(t *testing.T) {
	for _, tc := range seedTable {
		t.Run(tc.key, func(t *testing.T) {
			d, ok := settings.Lookup(tc.key)
			if !ok {
				t.Fatalf("not registered")
			}
			if d.Key != tc.key || d.Default != tc.def || d.Type != tc.typ || d.Unit != tc.unit {
				t.Errorf("got key=%q default=%q type=%q unit=%q, want %q %q %q %q", d.Key, d.Default, d.Type, d.Unit, tc.key, tc.def, tc.typ, tc.unit)
			}
			if !slices.Equal(d.Scopes, []settings.Scope{tc.scope}) {
				t.Errorf("scopes = %v, want [%s]", d.Scopes, tc.scope)
			}
		})
	}
}

func TestExtraSettings(t *testing.T) {
	for _, tc := range extraTable {
		t.Run(tc.key, func(t *testing.T) {
			d, ok := settings.Lookup(tc.key)
			if !ok {
				t.Fatalf("not registered")
			}
			if d.Default != tc.def || d.Type != tc.typ || d.Unit != tc.unit {
				t.Errorf("got default=%q type=%q unit=%q, want %q %q %q", d.Default, d.Type, d.Unit, tc.def, tc.typ, tc.unit)
			}
			var want []settings.Scope
			if tc.scope != "" {
				want = []settings.Scope{tc.scope}
			}
			if !slices.Equal(d.Scopes, want) {
				t.Errorf("scopes = %v, want %v", d.Scopes, want)
			}
		})
	}
}

func TestRegistryIsExactlySeedPlusExtras(t *testing.T) {
	var want []string
	for _, tc := range seedTable {
		want = append(want, tc.key)
	}
	for _, tc := range extraTable {
		want = append(want, tc.key)
	}
	sort.Strings(want)
	var got []string
	for _, d := range settings.Definitions() {
		got = append(got, d.Key)
	}
	if !slices.Equal(got, want) {
		t.Errorf("registered keys:\n got %v\nwant %v", got, want)
	}
	if !sort.StringsAreSorted(got) {
		t.Errorf("Definitions not sorted: %v", got)
	}
}

func TestEveryDefinitionIsWellFormed(t *testing.T) {
	for _, d := range settings.Definitions() {
		t.Run(d.Key, func(t *testing.T) {
			if strings.TrimSpace(d.Description) == "" {
				t.Error("empty description")
			}
			norm, err := d.Validate(d.Default)
			if err != nil || norm != d.Default {
				t.Errorf("default %q does not validate: %q, %v", d.Default, norm, err)
			}
			if !d.SupportsScope(settings.ScopeGlobal) {
				t.Error("global scope not supported")
			}
			for _, s := range d.Scopes {
				if !s.Valid() || s == settings.ScopeGlobal {
					t.Errorf("bad extra scope %q", s)
				}
			}
			if d.Min != nil && d.Max != nil && *d.Min > *d.Max {
				t.Errorf("min %v > max %v", *d.Min, *d.Max)
			}
			if (d.Min != nil || d.Max != nil) && d.Type != settings.TypeInt && d.Type != settings.TypeFloat {
				t.Errorf("range on non-numeric type %s", d.Type)
			}
			if got, _ := settings.Lookup(d.Key); got.Key != d.Key {
				t.Errorf("Lookup(%q) = %q", d.Key, got.Key)
			}
		})
	}
}

func TestAgentConfigurableKeys(t *testing.T) {
	var got []string
	for _, d := range settings.Definitions() {
		if d.AgentConfigurable {
			got = append(got, d.Key)
			if !d.SupportsScope(settings.ScopeHost) {
				t.Errorf("%s: agent-configurable but not host-scoped", d.Key)
			}
		}
	}
	want := []string{
		"backup.compression.max.concurrent.operations.per.host",
		"backup.copy.max.concurrent.operations.per.host",
		"backup.validation.max.concurrent.operations.per.host",
	}
	if !slices.Equal(got, want) {
		t.Errorf("agent-configurable = %v, want %v", got, want)
	}
}

func TestDefinitionsReturnsCopies(t *testing.T) {
	before, _ := settings.Lookup(settings.KeyBackupChainSize)
	for i, d := range settings.Definitions() {
		if d.Key == settings.KeyBackupChainSize {
			defs := settings.Definitions()
			defs[i].Default = "mutated"
			defs[i].Scopes[0] = settings.ScopeAccount
		}
	}
	d, _ := settings.Lookup(settings.KeyBackupChainSize)
	d.Scopes[0] = settings.ScopeHost
	after, _ := settings.Lookup(settings.KeyBackupChainSize)
	if after.Default != before.Default || !slices.Equal(after.Scopes, before.Scopes) {
		t.Errorf("registry mutated through a copy: %+v", after)
	}

	c, _ := settings.Lookup(settings.KeyCompressionCoroutines)
	*c.Min = 99
	c2, _ := settings.Lookup(settings.KeyCompressionCoroutines)
	if *c2.Min != 1 {
		t.Errorf("Lookup exposes the registry's Min: %v", *c2.Min)
	}
}

func TestLookupUnknown(t *testing.T) {
	if _, ok := settings.Lookup("backup.nope"); ok {
		t.Error("Lookup found an unknown key")
	}
	if _, ok := settings.Lookup("Backup.Chain.Size"); ok {
		t.Error("keys must be case-sensitive")
	}
}

func TestCheckScope(t *testing.T) {
	tests := []struct {
		key   string
		scope settings.Scope
		kind  error // nil = allowed
		msg   string
	}{
		{"backup.chain.size", settings.ScopeGlobal, nil, ""},
		{"backup.chain.size", settings.ScopeZone, nil, ""},
		{"backup.chain.size", settings.ScopeHost, settings.ErrUnsupportedScope, "backup.chain.size: cannot be set at host scope (supported: global, zone)"},
		{"backup.chain.size", settings.ScopeAccount, settings.ErrUnsupportedScope, "backup.chain.size: cannot be set at account scope (supported: global, zone)"},
		{"backup.compression.max.concurrent.operations.per.host", settings.ScopeHost, nil, ""},
		{"backup.compression.max.concurrent.operations.per.host", settings.ScopeZone, settings.ErrUnsupportedScope, ""},
		{"backup.validation.task.enabled", settings.ScopeAccount, nil, ""},
		{"backup.validation.task.enabled", settings.ScopeZone, settings.ErrUnsupportedScope, ""},
		{"backup.compression.coroutines", settings.ScopeHost, nil, ""},
		{"knib.timeout", settings.ScopeZone, nil, ""},
		{"user.vm.readonly.details", settings.ScopeGlobal, nil, ""},
		{"user.vm.readonly.details", settings.ScopeAccount, settings.ErrUnsupportedScope, "user.vm.readonly.details: cannot be set at account scope (supported: global)"},
		{"backup.chain.size", settings.Scope("cluster"), settings.ErrUnsupportedScope, `backup.chain.size: unknown scope "cluster" (want global, zone, host or account)`},
		{"backup.nope", settings.ScopeGlobal, settings.ErrUnknownKey, "backup.nope: unknown setting"},
	}
	for _, tc := range tests {
		t.Run(tc.key+"@"+string(tc.scope), func(t *testing.T) {
			err := settings.CheckScope(tc.key, tc.scope)
			if tc.kind == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.kind) {
				t.Fatalf("err = %v, want %v", err, tc.kind)
			}
			if tc.msg != "" && err.Error() != tc.msg {
				t.Errorf("message = %q, want %q", err.Error(), tc.msg)
			}
		})
	}
	// Every seed key is settable globally and at its mapped scope only.
	for _, tc := range seedTable {
		for _, s := range []settings.Scope{settings.ScopeGlobal, settings.ScopeZone, settings.ScopeHost, settings.ScopeAccount} {
			err := settings.CheckScope(tc.key, s)
			allowed := s == settings.ScopeGlobal || s == tc.scope
			if allowed != (err == nil) {
				t.Errorf("CheckScope(%s, %s) = %v, allowed=%v", tc.key, s, err, allowed)
			}
		}
	}
}

func TestParseScope(t *testing.T) {
	for in, want := range map[string]settings.Scope{"global": settings.ScopeGlobal, " Zone ": settings.ScopeZone, "HOST": settings.ScopeHost, "account": settings.ScopeAccount} {
		got, err := settings.ParseScope(in)
		if err != nil || got != want {
			t.Errorf("ParseScope(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "cluster", "domain"} {
		if _, err := settings.ParseScope(in); !errors.Is(err, settings.ErrUnsupportedScope) {
			t.Errorf("ParseScope(%q) err = %v", in, err)
		}
	}
}

func TestUnlimited(t *testing.T) {
	for n, want := range map[int64]bool{-5: true, 0: true, 1: false, 8: false} {
		if got := settings.Unlimited(n); got != want {
			t.Errorf("Unlimited(%d) = %v", n, got)
		}
	}
}
