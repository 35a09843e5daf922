package offsitetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/knib/knib/internal/offsite"
)

// Suite is what Run needs of an implementation.
type Suite struct {
	// Open returns a bucket with Object Lock (versioned), empty.
	Open func(t *testing.T) offsite.Bucket
	// PartSize is the implementation's multipart part size (objects of
	// more than 2 parts are put).
	PartSize int64
	// Now is the clock the bucket checks locks against.
	Now func() time.Time
	// Hide puts a delete marker on a key (a plain DELETE without a version).
	Hide func(t *testing.T, b offsite.Bucket, key string)
}

// Run checks each point of offsite.Bucket's contract.
func Run(t *testing.T, s Suite) {
	ctx := context.Background()
	data := func(n int64, seed uint64) []byte {
		b := make([]byte, n)
		r := rand.New(rand.NewPCG(seed, 1))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	get := func(t *testing.T, b offsite.Bucket, key, version string) []byte {
		t.Helper()
		rc, err := b.Get(ctx, key, version)
		if err != nil {
			t.Fatalf("get %s: %v", key, err)
		}
		defer rc.Close()
		out, err := io.ReadAll(rc)
		if err != nil {
			t.Fatalf("read %s: %v", key, err)
		}
		return out
	}
	t.Run("RoundTrip", func(t *testing.T) {
		b := s.Open(t)
		for i, n := range []int64{0, 1, s.PartSize, 2*s.PartSize + 7} {
			key := fmt.Sprintf("knib/o/rt%d", i)
			want := data(n, uint64(i))
			info, err := b.Put(ctx, key, bytes.NewReader(want), n, offsite.Lock{}, nil)
			if err != nil || info.Size != n {
				t.Fatalf("put %d bytes: %+v %v", n, info, err)
			}
			if got := get(t, b, key, ""); !bytes.Equal(got, want) {
				t.Fatalf("%d bytes came back as %d", n, len(got))
			}
			st, err := b.Stat(ctx, key, info.VersionID)
			if err != nil || st.Size != n {
				t.Fatalf("stat: %+v %v", st, err)
			}
		}
		if _, err := b.Stat(ctx, "knib/o/none", ""); !errors.Is(err, offsite.ErrNotFound) {
			t.Fatalf("stat of a missing key: %v", err)
		}
		if _, err := b.Get(ctx, "knib/o/none", ""); !errors.Is(err, offsite.ErrNotFound) {
			t.Fatalf("get of a missing key: %v", err)
		}
		list, err := b.List(ctx, "knib/o/rt", false)
		if err != nil || len(list) != 4 || list[0].Key != "knib/o/rt0" {
			t.Fatalf("list: %+v %v", list, err)
		}
	})
	t.Run("ResumedPut", func(t *testing.T) {
		b := s.Open(t)
		want := data(4*s.PartSize+3, 9)
		src := &failingReader{r: bytes.NewReader(want), failAt: 2*s.PartSize + 1}
		if _, err := b.Put(ctx, "knib/o/resume", src, int64(len(want)), offsite.Lock{}, nil); err == nil {
			t.Fatal("a put whose source failed succeeded")
		}
		src.failAt, src.read = -1, map[int64]int64{}
		if _, err := b.Put(ctx, "knib/o/resume", src, int64(len(want)), offsite.Lock{}, nil); err != nil {
			t.Fatal(err)
		}
		if got := get(t, b, "knib/o/resume", ""); !bytes.Equal(got, want) {
			t.Fatal("the resumed object differs")
		}
	})
	t.Run("Locks", func(t *testing.T) {
		b := s.Open(t)
		until := s.Now().Add(time.Hour).Truncate(time.Second)
		want := data(1000, 3)
		info, err := b.Put(ctx, "knib/o/locked", bytes.NewReader(want), 1000, offsite.Lock{Mode: offsite.Compliance, Until: until}, nil)
		if err != nil {
			t.Fatal(err)
		}
		st, err := b.Stat(ctx, "knib/o/locked", info.VersionID)
		if err != nil || !st.Lock.Until.Equal(until) || st.Lock.Mode != offsite.Compliance {
			t.Fatalf("lock as stored: %+v %v", st.Lock, err)
		}
		if err := b.Delete(ctx, "knib/o/locked", info.VersionID); !errors.Is(err, offsite.ErrLocked) {
			t.Fatalf("delete of a locked version: %v", err)
		}
		if err := b.Delete(ctx, "knib/o/locked", ""); !errors.Is(err, offsite.ErrLocked) {
			t.Fatalf("delete of every version of a locked object: %v", err)
		}
		// ExtendLock extends, never shortens.
		later := until.Add(time.Hour)
		if err := b.ExtendLock(ctx, "knib/o/locked", info.VersionID, offsite.Lock{Mode: offsite.Compliance, Until: later}); err != nil {
			t.Fatal(err)
		}
		if err := b.ExtendLock(ctx, "knib/o/locked", info.VersionID, offsite.Lock{Mode: offsite.Compliance, Until: until}); err != nil {
			t.Fatal(err)
		}
		if st, _ := b.Stat(ctx, "knib/o/locked", info.VersionID); !st.Lock.Until.Equal(later) {
			t.Fatalf("lock after extend: %+v", st.Lock)
		}
		// An overwrite makes a new version; the locked one stays.
		other, err := b.Put(ctx, "knib/o/locked", bytes.NewReader([]byte("ransom")), 6, offsite.Lock{}, nil)
		if err != nil || other.VersionID == info.VersionID {
			t.Fatalf("overwrite: %+v %v", other, err)
		}
		if got := get(t, b, "knib/o/locked", info.VersionID); !bytes.Equal(got, want) {
			t.Fatal("the locked version changed")
		}
		if on, err := b.LockEnabled(ctx); err != nil || !on {
			t.Fatalf("lock enabled: %v %v", on, err)
		}
		// An unlocked version deletes.
		if err := b.Delete(ctx, "knib/o/locked", other.VersionID); err != nil {
			t.Fatalf("delete of an unlocked version: %v", err)
		}
	})
	t.Run("HiddenByDeleteMarker", func(t *testing.T) {
		if s.Hide == nil {
			t.Skip("the implementation has no way to put a delete marker")
		}
		b := s.Open(t)
		info, err := b.Put(ctx, "knib/m/hidden", bytes.NewReader([]byte("manifest")), 8, offsite.Lock{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		s.Hide(t, b, "knib/m/hidden")
		if list, _ := b.List(ctx, "knib/m/", false); len(list) != 0 {
			t.Fatalf("a hidden object listed: %+v", list)
		}
		list, err := b.List(ctx, "knib/m/", true)
		if err != nil || len(list) != 1 || list[0].VersionID != info.VersionID {
			t.Fatalf("list with hidden: %+v %v", list, err)
		}
		if got := get(t, b, "knib/m/hidden", info.VersionID); string(got) != "manifest" {
			t.Fatalf("hidden version: %q", got)
		}
	})
	t.Run("Canary", func(t *testing.T) {
		b := s.Open(t)
		res, err := offsite.CheckLocks(ctx, b, offsite.Compliance, s.Now(), time.Minute)
		if err != nil || !res.Enforced || res.Verdict != "enforced" {
			t.Fatalf("lock check: %+v %v", res, err)
		}
	})
}

// failingReader fails reads at or past failAt (failAt < 0: never).
type failingReader struct {
	mu     sync.Mutex
	r      *bytes.Reader
	failAt int64
	read   map[int64]int64
}

func (f *failingReader) ReadAt(p []byte, off int64) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failAt >= 0 && off+int64(len(p)) > f.failAt {
		return 0, errors.New("source failed (test)")
	}
	return f.r.ReadAt(p, off)
}
