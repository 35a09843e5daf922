package hypervisor

import (
	"errors"
	"testing"
)

func TestUUID(t *testing.T) {
	const canon = "6695eb01-f6a4-8304-79aa-97f2502e193f"
	for _, in := range []string{canon, "6695EB01-F6A4-8304-79AA-97F2502E193F", "6695eb01f6a4830479aa97f2502e193f"} {
		got, err := CanonicalUUID(in)
		if err != nil || got != canon {
			t.Errorf("CanonicalUUID(%q) = %q, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "x", "6695eb01-f6a4-8304-79aa-97f2502e193", "6695eb01_f6a4-8304-79aa-97f2502e193f",
		"6695eb01-f6a4-8304-79aa-97f2502e193g", "6695eb01-f6a4-8304-79aa97f2502e193f0"} {
		if _, err := ParseUUID(bad); !errors.Is(err, ErrDomainNotFound) {
			t.Errorf("ParseUUID(%q): %v, want ErrDomainNotFound", bad, err)
		}
	}
	u, _ := ParseUUID(canon)
	if u[0] != 0x66 || u[15] != 0x3f || FormatUUID(u) != canon {
		t.Errorf("round trip: % x", u)
	}
}
