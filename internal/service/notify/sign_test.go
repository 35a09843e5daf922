package notify_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/knib/knib/internal/service/notify"
)

// TestSignature: the signature covers the timestamp and the body under the
// secret; a receiver refuses a changed body, another secret, another
// timestamp and a stale one.
func TestSignature(t *testing.T) {
	secret, body := []byte("k"), []byte(`{"event":"firing"}`)
	now := time.Unix(1_800_000_000, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	sig := notify.Sign(secret, ts, body)
	if err := notify.VerifyFresh(secret, ts, body, sig, now.Add(time.Minute), 5*time.Minute); err != nil {
		t.Fatalf("a good signature: %v", err)
	}
	for name, err := range map[string]error{
		"body":      notify.VerifyFresh(secret, ts, []byte(`{"event":"resolved"}`), sig, now, 5*time.Minute),
		"secret":    notify.VerifyFresh([]byte("other"), ts, body, sig, now, 5*time.Minute),
		"timestamp": notify.VerifyFresh(secret, strconv.FormatInt(now.Unix()+1, 10), body, sig, now, 5*time.Minute),
		"stale":     notify.VerifyFresh(secret, ts, body, sig, now.Add(time.Hour), 5*time.Minute),
		"garbage":   notify.VerifyFresh(secret, "soon", body, sig, now, 5*time.Minute),
	} {
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
