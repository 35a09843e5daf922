package seal

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
)

func testKey(t testing.TB) Key {
	k, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func plaintext(n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(uint64(n), 7))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func sealAll(t testing.TB, k Key, salt []byte, name string, plain []byte) []byte {
	t.Helper()
	out, err := Seal(k, salt, name, plain)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(out)) != SealedSize(int64(len(plain))) {
		t.Fatalf("sealed %d bytes, SealedSize says %d", len(out), SealedSize(int64(len(plain))))
	}
	return out
}

var sizes = []int{0, 1, ChunkSize - 1, ChunkSize, ChunkSize + 1, 3*ChunkSize + 7}

func TestRoundTrip(t *testing.T) {
	k := testKey(t)
	salt, _ := NewSalt()
	for _, n := range sizes {
		plain := plaintext(n)
		sealed := sealAll(t, k, salt, "knib/o/x", plain)
		got, err := Open(k, "knib/o/x", sealed)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("size %d: open: %v, equal %v", n, err, bytes.Equal(got, plain))
		}
		if n > 64 && bytes.Contains(sealed, plain[:64]) {
			t.Fatalf("size %d: plaintext visible in the sealed bytes", n)
		}
	}
}

// Any range read from the sealed view equals the same range of one
// sequential sealing: resumed uploads send identical parts.
func TestReadAtIsDeterministic(t *testing.T) {
	k := testKey(t)
	salt, _ := NewSalt()
	plain := plaintext(3*ChunkSize + 7)
	whole := sealAll(t, k, salt, "n", plain)
	view, err := NewSealed(k, salt, "n", bytes.NewReader(plain), int64(len(plain)))
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		off := r.Int64N(int64(len(whole)))
		n := r.IntN(2*ChunkSize + 100)
		buf := make([]byte, n)
		got, err := view.ReadAt(buf, off)
		want := whole[off:min(int64(len(whole)), off+int64(n))]
		if got != len(want) || !bytes.Equal(buf[:got], want) {
			t.Fatalf("ReadAt(%d, %d): %d bytes, err %v, equal %v", n, off, got, err, bytes.Equal(buf[:got], want))
		}
		if got < n && err != io.EOF {
			t.Fatalf("short ReadAt without io.EOF: %v", err)
		}
	}
	// The same content sealed again with the same salt is the same bytes;
	// another salt gives other bytes.
	if again := sealAll(t, k, salt, "n", plain); !bytes.Equal(again, whole) {
		t.Fatal("sealing is not deterministic")
	}
	other, _ := NewSalt()
	if bytes.Equal(sealAll(t, k, other, "n", plain)[headerLen:], whole[headerLen:]) {
		t.Fatal("another salt gave the same ciphertext")
	}
}

func wantTampered(t *testing.T, what string, k Key, name string, sealed []byte) {
	t.Helper()
	got, err := Open(k, name, sealed)
	if !errors.Is(err, ErrTampered) {
		t.Fatalf("%s: err %v (%d bytes), want ErrTampered", what, err, len(got))
	}
}

func TestTamperingFails(t *testing.T) {
	k := testKey(t)
	salt, _ := NewSalt()
	plain := plaintext(3*ChunkSize + 7)
	sealed := sealAll(t, k, salt, "name", plain)
	r := rand.New(rand.NewPCG(3, 4))
	positions := []int{0, 8, 12, headerLen - 1, headerLen, headerLen + ChunkSize + tagLen - 1, len(sealed) - 1}
	for range 40 {
		positions = append(positions, r.IntN(len(sealed)))
	}
	for _, p := range positions {
		bad := bytes.Clone(sealed)
		bad[p] ^= 0x01
		wantTampered(t, "flipped byte", k, "name", bad)
	}
	chunk := ChunkSize + tagLen
	for _, cut := range []int{0, 5, headerLen, headerLen + chunk, headerLen + 2*chunk, headerLen + 3*chunk, len(sealed) - 1} {
		wantTampered(t, "truncated", k, "name", sealed[:cut])
	}
	wantTampered(t, "extended", k, "name", append(bytes.Clone(sealed), 0))
	swapped := bytes.Clone(sealed)
	copy(swapped[headerLen:], sealed[headerLen+chunk:headerLen+2*chunk])
	copy(swapped[headerLen+chunk:], sealed[headerLen:headerLen+chunk])
	wantTampered(t, "reordered", k, "name", swapped)
	wantTampered(t, "moved to another name", k, "other", sealed)
	wantTampered(t, "another key", testKey(t), "name", sealed)
	// A full-size last chunk followed by nothing, then cut at the chunk
	// boundary before it: the remaining last chunk was not sealed as last.
	exact := sealAll(t, k, salt, "name", plaintext(2*ChunkSize))
	wantTampered(t, "cut at a chunk boundary", k, "name", exact[:headerLen+chunk])
}

// The opener returns nothing of a chunk that does not authenticate.
func TestNoUnauthenticatedBytes(t *testing.T) {
	k := testKey(t)
	salt, _ := NewSalt()
	plain := plaintext(2*ChunkSize + 3)
	sealed := sealAll(t, k, salt, "n", plain)
	sealed[headerLen+ChunkSize+tagLen+10] ^= 0xff // in the second chunk
	got, err := io.ReadAll(NewOpener(bytes.NewReader(sealed), k, "n"))
	if !errors.Is(err, ErrTampered) || len(got) != ChunkSize || !bytes.Equal(got, plain[:ChunkSize]) {
		t.Fatalf("read %d bytes, err %v: want the first chunk only, then ErrTampered", len(got), err)
	}
}

func TestKeys(t *testing.T) {
	k := testKey(t)
	back, err := ParseKey(" " + k.String() + "\n")
	if err != nil || back != k {
		t.Fatalf("parse: %v", err)
	}
	for _, bad := range []string{"", "knib-remote-key-v1:", "knib-remote-key-v1:AAAA", "nope:" + strings.TrimPrefix(k.String(), keyText), k.String() + "!"} {
		if _, err := ParseKey(bad); err == nil {
			t.Fatalf("ParseKey(%q) accepted", bad)
		}
	}
	k2 := testKey(t)
	if k.Check() == k2.Check() || k.Check() != back.Check() || len(k.Check()) != 32 {
		t.Fatal("check values")
	}
	a, b := k.ObjectName("copy", "backups/x/vda.qcow2"), k.ObjectName("copy", "backups/x/vdb.qcow2")
	if a == b || a != k.ObjectName("copy", "backups/x/vda.qcow2") || a == k2.ObjectName("copy", "backups/x/vda.qcow2") || len(a) != 64 {
		t.Fatal("object names")
	}
	if k.ObjectName("a", "b") == k.ObjectName("a\x00b") && k.ObjectName("ab") == k.ObjectName("a", "b") {
		t.Fatal("object names ignore the parts")
	}
}

func BenchmarkSeal(b *testing.B) {
	k := testKey(b)
	salt, _ := NewSalt()
	plain := plaintext(64 << 20)
	view, _ := NewSealed(k, salt, "n", bytes.NewReader(plain), int64(len(plain)))
	buf := make([]byte, 16<<20)
	b.SetBytes(int64(len(plain)))
	for b.Loop() {
		for off := int64(0); ; off += int64(len(buf)) {
			if _, err := view.ReadAt(buf, off); err != nil {
				break
			}
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	k := testKey(b)
	salt, _ := NewSalt()
	plain := plaintext(64 << 20)
	sealed, _ := Seal(k, salt, "n", plain)
	b.SetBytes(int64(len(plain)))
	for b.Loop() {
		if _, err := io.Copy(io.Discard, NewOpener(bytes.NewReader(sealed), k, "n")); err != nil {
			b.Fatal(err)
		}
	}
}
