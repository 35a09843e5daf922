package settings_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/knib/knib/internal/settings"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		key, in string
		want    string // normalized value when ok
		err     string // exact message, or "" when valid
	}{
		// backup.chain.size: 0 (unlimited) to 1,000,000, as an offering's.
		{"backup.chain.size", "8", "8", ""},
		{"backup.chain.size", " 1 ", "1", ""},
		{"backup.chain.size", "0", "0", ""},
		{"backup.chain.size", "-3", "", "backup.chain.size: must be between 0 and 1000000, got -3"},
		{"backup.chain.size", "1000001", "", "backup.chain.size: must be between 0 and 1000000, got 1000001"},
		{"backup.chain.size", "+4", "4", ""},
		{"backup.chain.size", "abc", "", `backup.chain.size: must be an integer, got "abc"`},
		{"backup.chain.size", "8.0", "", `backup.chain.size: must be an integer, got "8.0"`},
		{"backup.chain.size", "1e3", "", `backup.chain.size: must be an integer, got "1e3"`},
		{"backup.chain.size", "", "", `backup.chain.size: must be an integer, got ""`},
		{"backup.chain.size", "99999999999999999999", "", `backup.chain.size: must be an integer in the 64-bit range, got "99999999999999999999"`},

		// Timeouts and intervals: at least 1.
		{"knib.timeout", "43200", "43200", ""},
		{"knib.timeout", "1", "1", ""},
		{"knib.timeout", "0", "", "knib.timeout: must be at least 1, got 0"},
		{"knib.timeout", "-1", "", "knib.timeout: must be at least 1, got -1"},
		{"knib.timeout", "9223372037", "", "knib.timeout: must be at most 9223372036 (seconds), got 9223372037"},
		{"backup.compression.timeout", "0", "", "backup.compression.timeout: must be at least 1, got 0"},
		{"backup.compression.retry.interval", "0", "", "backup.compression.retry.interval: must be at least 1, got 0"},
		{"backup.validation.interval", "0", "", "backup.validation.interval: must be at least 1, got 0"},
		{"backup.validation.interval", "2562048", "", "backup.validation.interval: must be at most 2562047 (hours), got 2562048"},
		{"backup.validation.boot.default.timeout", "0", "", "backup.validation.boot.default.timeout: must be at least 1, got 0"},
		{"backup.validation.script.default.timeout", "1.5", "", `backup.validation.script.default.timeout: must be an integer, got "1.5"`},
		{"backup.validation.screenshot.default.wait", "0", "", "backup.validation.screenshot.default.wait: must be at least 1, got 0"},
		{"backup.validation.timeout", "0", "", "backup.validation.timeout: must be at least 1, got 0"},
		{"backup.validation.retry.interval", "0", "", "backup.validation.retry.interval: must be at least 1, got 0"},

		// Concurrency limits: any integer (<1 = unlimited).
		{"backup.compression.max.concurrent.operations", "-1", "-1", ""},
		{"backup.compression.max.concurrent.operations.per.host", "0", "0", ""},
		{"backup.validation.max.concurrent.operations", "12", "12", ""},
		{"backup.validation.max.concurrent.operations.per.host", "-7", "-7", ""},
		{"backup.validation.max.concurrent.operations.per.host", "x", "", `backup.validation.max.concurrent.operations.per.host: must be an integer, got "x"`},

		// Retries: at least 0.
		{"backup.compression.max.job.retries", "0", "0", ""},
		{"backup.compression.max.job.retries", "-1", "", "backup.compression.max.job.retries: must be at least 0, got -1"},
		{"backup.validation.max.job.retries", "-1", "", "backup.validation.max.job.retries: must be at least 0, got -1"},

		// Rate limit: at least 0 (<1 disables).
		{"backup.compression.rate.limit", "0", "0", ""},
		{"backup.compression.rate.limit", "100", "100", ""},
		{"backup.compression.rate.limit", "-1", "", "backup.compression.rate.limit: must be at least 0, got -1"},

		// Coroutines: 1..16.
		{"backup.compression.coroutines", "1", "1", ""},
		{"backup.compression.coroutines", "16", "16", ""},
		{"backup.compression.coroutines", "0", "", "backup.compression.coroutines: must be between 1 and 16, got 0"},
		{"backup.compression.coroutines", "17", "", "backup.compression.coroutines: must be between 1 and 16, got 17"},

		// Minimum free storage: real number >= 0.
		{"backup.compression.minimum.free.storage", "1", "1", ""},
		{"backup.compression.minimum.free.storage", "0", "0", ""},
		{"backup.compression.minimum.free.storage", "1.50", "1.5", ""},
		{"backup.compression.minimum.free.storage", "0.25", "0.25", ""},
		{"backup.compression.minimum.free.storage", "-0.1", "", "backup.compression.minimum.free.storage: must be at least 0, got -0.1"},
		{"backup.compression.minimum.free.storage", "NaN", "", `backup.compression.minimum.free.storage: must be a number, got "NaN"`},
		{"backup.compression.minimum.free.storage", "Inf", "", `backup.compression.minimum.free.storage: must be a number, got "Inf"`},
		{"backup.compression.minimum.free.storage", "lots", "", `backup.compression.minimum.free.storage: must be a number, got "lots"`},

		// Booleans: true/false only, any case.
		{"backup.compression.task.enabled", "true", "true", ""},
		{"backup.compression.task.enabled", "TRUE", "true", ""},
		{"backup.validation.task.enabled", " False ", "false", ""},
		{"backup.validation.end.chain.on.fail", "yes", "", `backup.validation.end.chain.on.fail: must be true or false, got "yes"`},
		{"enforce.resource.limit.on.backup.validation.vm", "1", "", `enforce.resource.limit.on.backup.validation.vm: must be true or false, got "1"`},
		{"enforce.resource.limit.on.backup.validation.vm", "", "", `enforce.resource.limit.on.backup.validation.vm: must be true or false, got ""`},

		// Lists.
		{"user.vm.readonly.details", " a , b,,c ", "a,b,c", ""},
		{"user.vm.readonly.details", "", "", ""},
		{"user.vm.readonly.details", "a b", "", `user.vm.readonly.details: list items must not contain spaces or control characters, got "a b"`},

		// Unknown key.
		{"backup.nope", "1", "", "backup.nope: unknown setting"},
	}
	for _, tc := range tests {
		t.Run(tc.key+"="+tc.in, func(t *testing.T) {
			got, err := settings.Validate(tc.key, tc.in)
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
}

func TestValidateErrorKinds(t *testing.T) {
	_, err := settings.Validate(settings.KeyBackupChainSize, "abc")
	if !errors.Is(err, settings.ErrInvalidValue) {
		t.Errorf("invalid value: %v does not wrap ErrInvalidValue", err)
	}
	var se *settings.Error
	if !errors.As(err, &se) || se.Key != settings.KeyBackupChainSize || !strings.Contains(se.Reason, "integer") {
		t.Errorf("errors.As: %+v", se)
	}
	_, err = settings.Validate("backup.nope", "1")
	if !errors.Is(err, settings.ErrUnknownKey) {
		t.Errorf("unknown key: %v does not wrap ErrUnknownKey", err)
	}
}

// Every int setting must refuse floats and every bool non-booleans.
func TestTypesEnforcedForAll(t *testing.T) {
	for _, d := range settings.Definitions() {
		switch d.Type {
		case settings.TypeInt:
			if _, err := d.Validate("2.5"); err == nil {
				t.Errorf("%s accepts a float", d.Key)
			}
		case settings.TypeBool:
			if _, err := d.Validate("maybe"); err == nil {
				t.Errorf("%s accepts a non-boolean", d.Key)
			}
		case settings.TypeFloat:
			if _, err := d.Validate("x"); err == nil {
				t.Errorf("%s accepts a non-number", d.Key)
			}
		}
	}
}
