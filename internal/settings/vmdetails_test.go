package settings_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/knib/knib/internal/settings"
)

// vmDetailTable is the seed's six VM configurations.
var vmDetailTable = []struct {
	key       string
	typ       settings.Type
	readOnly  bool
	overrides string
	base64    bool
}{
	{"backupValidationCommand", settings.TypeString, false, "", false},
	{"backupValidationCommandArguments", settings.TypeString, false, "", false},
	{"backupValidationCommandExpectedResult", settings.TypeString, false, "", true},
	{"backupValidationCommandTimeout", settings.TypeInt, true, "backup.validation.script.default.timeout", false},
	{"backupValidationScreenshotWait", settings.TypeInt, true, "backup.validation.screenshot.default.wait", false},
	{"backupValidationBootTimeout", settings.TypeInt, true, "backup.validation.boot.default.timeout", false},
}

func TestVMDetailsRegistry(t *testing.T) {
	var want []string
	for _, tc := range vmDetailTable {
		want = append(want, tc.key)
		t.Run(tc.key, func(t *testing.T) {
			d, ok := settings.LookupVMDetail(tc.key)
			if !ok {
				t.Fatal("not registered")
			}
			if d.Type != tc.typ || d.ReadOnlyForUsers != tc.readOnly || d.Overrides != tc.overrides || d.Base64 != tc.base64 {
				t.Errorf("got %+v", d)
			}
			if strings.TrimSpace(d.Description) == "" {
				t.Error("empty description")
			}
			if d.Overrides != "" {
				g, ok := settings.Lookup(d.Overrides)
				if !ok {
					t.Fatalf("overrides unknown setting %s", d.Overrides)
				}
				if g.Unit != d.Unit || d.Unit != settings.UnitSeconds || g.Type != settings.TypeInt {
					t.Errorf("unit %q / setting unit %q / type %s", d.Unit, g.Unit, g.Type)
				}
			}
			if _, isSetting := settings.Lookup(tc.key); isSetting {
				t.Error("VM detail also registered as a setting")
			}
		})
	}
	slices.Sort(want)
	var got []string
	for _, d := range settings.VMDetails() {
		got = append(got, d.Key)
	}
	if !slices.Equal(got, want) {
		t.Errorf("VMDetails = %v, want %v", got, want)
	}
	if _, ok := settings.LookupVMDetail("backupValidationNope"); ok {
		t.Error("unknown detail found")
	}
}

// The read-only flags must agree with the default of user.vm.readonly.details.
func TestReadOnlyFlagsMatchSettingDefault(t *testing.T) {
	var v settings.View
	for _, d := range settings.VMDetails() {
		if got := v.VMDetailReadOnly(d.Key); got != d.ReadOnlyForUsers {
			t.Errorf("%s: VMDetailReadOnly = %v, flag = %v", d.Key, got, d.ReadOnlyForUsers)
		}
	}
	// An admin can make the command editable-by-admins-only and free the timeouts.
	view, err := settings.NewView(settings.Target{}, []settings.Stored{
		{Scope: settings.ScopeGlobal, Key: settings.KeyUserVMReadOnlyDetails, Value: "backupValidationCommand, rootDiskController"},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !view.VMDetailReadOnly(settings.DetailValidationCommand) || view.VMDetailReadOnly(settings.DetailValidationBootTimeout) {
		t.Errorf("readonly list = %v", view.List(settings.KeyUserVMReadOnlyDetails))
	}
	if got := view.List(settings.KeyUserVMReadOnlyDetails); !slices.Equal(got, []string{"backupValidationCommand", "rootDiskController"}) {
		t.Errorf("List = %v", got)
	}
}

func TestValidateVMDetail(t *testing.T) {
	tests := []struct {
		key, in string
		want    string
		err     string
	}{
		{"backupValidationCommand", "/usr/bin/systemctl", "/usr/bin/systemctl", ""},
		{"backupValidationCommand", "", "", ""},
		{"backupValidationCommand", "bad\ncommand", "", `backupValidationCommand: must not contain control characters, got "bad\ncommand"`},
		{"backupValidationCommandArguments", "is-active,nginx", "is-active,nginx", ""},
		{"backupValidationCommandArguments", "a\x00b", "", `backupValidationCommandArguments: must not contain control characters, got "a\x00b"`},

		{"backupValidationCommandExpectedResult", "YWN0aXZlCg==", "YWN0aXZlCg==", ""}, // "active\n"
		{"backupValidationCommandExpectedResult", "YWN0aXZlCg", "YWN0aXZlCg==", ""},   // padding optional
		{"backupValidationCommandExpectedResult", " MA== ", "MA==", ""},
		{"backupValidationCommandExpectedResult", "", "", ""},             // not provided: check exit code 0
		{"backupValidationCommandExpectedResult", "active", "active", ""}, // Base64 alphabet, not decodable: kept, never matches
		{"backupValidationCommandExpectedResult", "absdui", "absdui", ""}, // the seed's wrong expectation
		{"backupValidationCommandExpectedResult", "a b", "", `backupValidationCommandExpectedResult: must be valid Base64, got "a b"`},
		{"backupValidationCommandExpectedResult", "YWN0aXZl\nCg==", "", `backupValidationCommandExpectedResult: must be valid Base64, got "YWN0aXZl\nCg=="`},
		{"backupValidationCommandExpectedResult", "YW=0", "", `backupValidationCommandExpectedResult: must be valid Base64, got "YW=0"`},
		{"backupValidationCommandExpectedResult", "-_8=", "", `backupValidationCommandExpectedResult: must be valid Base64, got "-_8="`},

		{"backupValidationCommandTimeout", "120", "120", ""},
		{"backupValidationCommandTimeout", "0", "", "backupValidationCommandTimeout: must be at least 1, got 0"},
		{"backupValidationCommandTimeout", "-5", "", "backupValidationCommandTimeout: must be at least 1, got -5"},
		{"backupValidationCommandTimeout", "1.5", "", `backupValidationCommandTimeout: must be an integer, got "1.5"`},
		{"backupValidationScreenshotWait", " 30 ", "30", ""},
		{"backupValidationScreenshotWait", "", "", `backupValidationScreenshotWait: must be an integer, got ""`},
		{"backupValidationBootTimeout", "600", "600", ""},
		{"backupValidationBootTimeout", "soon", "", `backupValidationBootTimeout: must be an integer, got "soon"`},

		{"backupValidationNope", "1", "", "backupValidationNope: unknown vm detail"},
	}
	for _, tc := range tests {
		t.Run(tc.key+"="+tc.in, func(t *testing.T) {
			got, err := settings.ValidateVMDetail(tc.key, tc.in)
			if tc.err != "" {
				if err == nil {
					t.Fatalf("accepted %q as %q", tc.in, got)
				}
				if err.Error() != tc.err {
					t.Errorf("error = %q, want %q", err.Error(), tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if got != tc.want {
				t.Errorf("normalized = %q, want %q", got, tc.want)
			}
		})
	}
	if _, err := settings.ValidateVMDetail("x", ""); !errors.Is(err, settings.ErrUnknownKey) {
		t.Errorf("unknown detail err = %v", err)
	}
	if _, err := settings.ValidateVMDetail(settings.DetailValidationBootTimeout, "0"); !errors.Is(err, settings.ErrInvalidValue) {
		t.Errorf("invalid detail err = %v", err)
	}
}

func TestVMDuration(t *testing.T) {
	view, err := settings.NewView(settings.Target{Account: "acme"}, []settings.Stored{
		{Scope: settings.ScopeAccount, ScopeID: "acme", Key: settings.KeyValidationBootDefaultTimeout, Value: "300"},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	vm := map[string]string{
		settings.DetailValidationCommandTimeout: "90",
		settings.DetailValidationScreenshotWait: "",
	}
	tests := []struct {
		key  string
		want time.Duration
	}{
		{settings.DetailValidationCommandTimeout, 90 * time.Second}, // VM detail
		{settings.DetailValidationScreenshotWait, 60 * time.Second}, // empty detail: global default
		{settings.DetailValidationBootTimeout, 300 * time.Second},   // account value
	}
	for _, tc := range tests {
		got, err := view.VMDuration(tc.key, vm)
		if err != nil || got != tc.want {
			t.Errorf("%s: %v, %v; want %v", tc.key, got, err, tc.want)
		}
	}
	if _, err := view.VMDuration(settings.DetailValidationBootTimeout, map[string]string{settings.DetailValidationBootTimeout: "0"}); !errors.Is(err, settings.ErrInvalidValue) {
		t.Errorf("invalid detail: %v", err)
	}
	if _, err := view.VMDuration(settings.DetailValidationCommand, nil); !errors.Is(err, settings.ErrInvalidValue) {
		t.Errorf("non-duration detail: %v", err)
	}
	if _, err := view.VMDuration("nope", nil); !errors.Is(err, settings.ErrUnknownKey) {
		t.Errorf("unknown detail: %v", err)
	}
}

func TestSplitCommandArguments(t *testing.T) {
	tests := map[string][]string{
		"":                nil,
		"is-active":       {"is-active"},
		"is-active,nginx": {"is-active", "nginx"},
		"a, b":            {"a", " b"},
	}
	for in, want := range tests {
		if got := settings.SplitCommandArguments(in); !slices.Equal(got, want) {
			t.Errorf("SplitCommandArguments(%q) = %q, want %q", in, got, want)
		}
	}
}

// A VM detail value has a size limit: a 900 KB command is refused.
func TestVMDetailValueIsBounded(t *testing.T) {
	long := strings.Repeat("A", 900<<10)
	if _, err := settings.ValidateVMDetail(settings.DetailValidationCommand, long); err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Fatalf("a 900 KB detail: %v", err)
	}
	if _, err := settings.ValidateVMDetail(settings.DetailValidationCommand, "echo ok"); err != nil {
		t.Fatal(err)
	}
}
