package agent

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/knib/knib/internal/qemuimg"
)

// Images that show a guest the same bytes have the same digest, whatever
// their chain, layout, format and allocation; one changed byte, or another
// size, changes it; compressed data gives no digest.
func TestGuestDigestIsTheGuestsView(t *testing.T) {
	needTools(t, "qemu-img", "qemu-io")
	ctx := context.Background()
	img := &qemuimg.Tool{}
	dir := t.TempDir()
	base, top := filepath.Join(dir, "base.qcow2"), filepath.Join(dir, "top.qcow2")
	run(t, "qemu-img", "create", "-q", "-f", "qcow2", base, "16M")
	run(t, "qemu-io", "-f", "qcow2", "-c", "write -P 0x11 0 3M", "-c", "write -P 0x22 5M 70k", "-c", "write -z 8M 1M", base)
	run(t, "qemu-img", "create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", top)
	run(t, "qemu-io", "-f", "qcow2", "-c", "write -P 0x33 1M 100k", "-c", "write -z 2M 64k", "-c", "write -P 0x44 12M 1M", top)

	digest := func(path, format string) string {
		t.Helper()
		s, err := guestDigest(ctx, img, path, format)
		if err != nil {
			t.Fatalf("digest of %s: %v", path, err)
		}
		return s
	}
	want := digest(top, "qcow2")

	// Flattened into qcow2 (as a restore writes it) and into raw.
	flat, raw := filepath.Join(dir, "flat.qcow2"), filepath.Join(dir, "flat.raw")
	run(t, "qemu-img", "convert", "-W", "-O", "qcow2", top, flat)
	run(t, "qemu-img", "convert", "-O", "raw", top, raw)
	if got := digest(flat, "qcow2"); got != want {
		t.Fatalf("flattened qcow2: %s, want %s", got, want)
	}
	if got := digest(raw, "raw"); got != want {
		t.Fatalf("raw: %s, want %s", got, want)
	}
	// Zeros written as data clusters count as zeros.
	run(t, "qemu-io", "-f", "qcow2", "-c", "write -P 0 14M 1M", flat)
	if got := digest(flat, "qcow2"); got != want {
		t.Fatalf("with data clusters of zeros: %s, want %s", got, want)
	}
	// One byte more, anywhere, is another disk.
	run(t, "qemu-io", "-f", "qcow2", "-c", "write -P 0x01 15M 1", flat)
	if got := digest(flat, "qcow2"); got == want {
		t.Fatal("a changed byte kept the digest")
	}
	// The same bytes moved to another block are another disk.
	a, b := filepath.Join(dir, "a.qcow2"), filepath.Join(dir, "b.qcow2")
	run(t, "qemu-img", "create", "-q", "-f", "qcow2", a, "16M")
	run(t, "qemu-img", "create", "-q", "-f", "qcow2", b, "16M")
	run(t, "qemu-io", "-f", "qcow2", "-c", "write -P 0x55 1M 64k", a)
	run(t, "qemu-io", "-f", "qcow2", "-c", "write -P 0x55 2M 64k", b)
	if digest(a, "qcow2") == digest(b, "qcow2") {
		t.Fatal("data at another offset kept the digest")
	}
	// Same bytes, another virtual size.
	run(t, "qemu-img", "resize", "-q", "-f", "qcow2", b, "32M")
	run(t, "qemu-io", "-f", "qcow2", "-c", "write -P 0x55 1M 64k", "-c", "write -z 2M 64k", b)
	if digest(a, "qcow2") == digest(b, "qcow2") {
		t.Fatal("another size kept the digest")
	}
	// Compressed clusters: no digest, the caller compares with qemu-img.
	comp := filepath.Join(dir, "comp.qcow2")
	run(t, "qemu-img", "convert", "-c", "-O", "qcow2", top, comp)
	if _, err := guestDigest(ctx, img, comp, "qcow2"); !errors.Is(err, errNotMapped) {
		t.Fatalf("compressed image: %v, want errNotMapped", err)
	}
}
