package settings_test

import (
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/knib/knib/internal/settings"
)

func TestParseProperties(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want map[string]string
		err  string // exact message, "" when valid
		kind error
	}{
		{name: "empty", in: "", want: map[string]string{}},
		{name: "comments and blanks only", in: "# agent\n\n   \n  # indented comment\n", want: map[string]string{}},
		{
			name: "both keys",
			in: "# limits for this host\n" +
				"backup.compression.max.concurrent.operations.per.host=3\n" +
				"\n" +
				"  backup.validation.max.concurrent.operations.per.host = 0  \n",
			want: map[string]string{
				"backup.compression.max.concurrent.operations.per.host": "3",
				"backup.validation.max.concurrent.operations.per.host":  "0",
			},
		},
		{name: "crlf and bom", in: "\uFEFFbackup.validation.max.concurrent.operations.per.host=2\r\n",
			want: map[string]string{"backup.validation.max.concurrent.operations.per.host": "2"}},
		{name: "no trailing newline", in: "backup.validation.max.concurrent.operations.per.host=+4",
			want: map[string]string{"backup.validation.max.concurrent.operations.per.host": "4"}},
		{
			name: "missing equals",
			in:   "# c\nbackup.validation.max.concurrent.operations.per.host 2\n",
			err:  `line 2: expected key=value, got "backup.validation.max.concurrent.operations.per.host 2"`,
		},
		{name: "missing key", in: "=2\n", err: "line 1: missing key before '='"},
		{
			name: "unknown key",
			in:   "\n\nbackup.nope=1\n",
			err:  "line 3: backup.nope: unknown setting",
			kind: settings.ErrUnknownKey,
		},
		{
			name: "not agent configurable",
			in:   "backup.chain.size=4\n",
			err: "line 1: backup.chain.size: cannot be set in the agent configuration file (allowed: " +
				"backup.compression.max.concurrent.operations.per.host, backup.copy.max.concurrent.operations.per.host, backup.validation.max.concurrent.operations.per.host)",
			kind: settings.ErrUnsupportedScope,
		},
		{
			name: "invalid value",
			in:   "backup.compression.max.concurrent.operations.per.host=3\nbackup.validation.max.concurrent.operations.per.host=1.5\n",
			err:  `line 2: backup.validation.max.concurrent.operations.per.host: must be an integer, got "1.5"`,
			kind: settings.ErrInvalidValue,
		},
		{
			name: "empty value",
			in:   "backup.validation.max.concurrent.operations.per.host=\n",
			err:  `line 1: backup.validation.max.concurrent.operations.per.host: must be an integer, got ""`,
			kind: settings.ErrInvalidValue,
		},
		{
			name: "duplicate",
			in:   "backup.validation.max.concurrent.operations.per.host=1\n#\nbackup.validation.max.concurrent.operations.per.host=2\n",
			err:  "line 3: backup.validation.max.concurrent.operations.per.host: already set on line 1",
			kind: settings.ErrInvalidValue,
		},
		{
			name: "line too long",
			in:   "# ok\n" + strings.Repeat("x", 70*1024) + "\n",
			err:  "line 2: longer than 65536 bytes: bufio.Scanner: token too long",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := settings.ParseProperties(strings.NewReader(tc.in))
			if tc.err != "" {
				if err == nil {
					t.Fatalf("accepted: %v", got)
				}
				if err.Error() != tc.err {
					t.Errorf("error = %q, want %q", err.Error(), tc.err)
				}
				if tc.kind != nil && !errors.Is(err, tc.kind) {
					t.Errorf("error %v does not wrap %v", err, tc.kind)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if got == nil || !maps.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// A parsed file feeds Resolve directly.
func TestParsePropertiesFeedsResolve(t *testing.T) {
	agent, err := settings.ParseProperties(strings.NewReader("backup.compression.max.concurrent.operations.per.host=9\n"))
	if err != nil {
		t.Fatal(err)
	}
	stored := []settings.Stored{{Scope: settings.ScopeHost, ScopeID: "h1", Key: settings.KeyCompressionMaxConcurrentPerHost, Value: "2"}}
	got, err := settings.Resolve(settings.KeyCompressionMaxConcurrentPerHost, settings.Target{Host: "h1"}, stored, agent)
	if err != nil || got.Value != "9" || got.Source != settings.SourceAgent {
		t.Errorf("got %+v, %v", got, err)
	}
}
