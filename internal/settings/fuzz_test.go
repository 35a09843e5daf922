package settings_test

import (
	"testing"

	"github.com/knib/knib/internal/settings"
)

// FuzzSettingValues: any value for any setting or VM detail is refused
// with an error or normalised, and a normalised value validates to itself.
func FuzzSettingValues(f *testing.F) {
	defs := settings.Definitions()
	for i, v := range []string{"8", "-3", "true", "False", "1e9", "zstd", "a,b", "", "  7 ", "\x00", "99999999999999999999"} {
		f.Add(i, v)
	}
	f.Fuzz(func(t *testing.T, which int, value string) {
		if which < 0 {
			which = -which
		}
		d := defs[which%len(defs)]
		norm, err := settings.Validate(d.Key, value)
		if err != nil {
			return
		}
		again, err := settings.Validate(d.Key, norm)
		if err != nil || again != norm {
			t.Fatalf("%s: %q normalised to %q, which validates to %q (%v)", d.Key, value, norm, again, err)
		}
		for _, detail := range []string{settings.DetailValidationCommand, settings.DetailValidationBootTimeout} {
			settings.ValidateVMDetail(detail, value)
		}
	})
}
