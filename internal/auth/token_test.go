package auth

import "testing"

func TestTokenRoundTrip(t *testing.T) {
	tok, hash := NewToken()
	if err := CheckForm(tok); err != nil {
		t.Fatalf("fresh token %q: %v", tok, err)
	}
	if Hash(tok) != hash || len(hash) != 64 {
		t.Fatal("hash mismatch")
	}
	tok2, _ := NewToken()
	if tok2 == tok {
		t.Fatal("tokens repeat")
	}
	got, err := ParseBearer("Bearer " + tok)
	if err != nil || got != tok {
		t.Fatalf("parse bearer: %v", err)
	}
	for _, bad := range []string{"", "Bearer", "Basic " + tok, "Bearer knib_short", "Bearer " + tok[:len(tok)-1] + "!", "Bearer xyz_" + tok[5:]} {
		if _, err := ParseBearer(bad); err == nil {
			t.Fatalf("accepted %q", bad)
		}
	}
}
