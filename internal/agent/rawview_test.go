package agent

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/knib/knib/internal/guestfs"
	"github.com/knib/knib/internal/qemuimg"
)

// A file read from its extents: data where the extents say, zeros in holes,
// in unwritten extents and past the last extent, nothing past its size.
func TestExtentFileReadsWhatTheExtentsSay(t *testing.T) {
	dev := make([]byte, 64<<10)
	for i := range dev {
		dev[i] = byte(i / 1024)
	}
	const base = 4096
	f := &extentFile{dev: bytes.NewReader(dev), base: base, size: 20 << 10, exts: []guestfs.Extent{
		{Logical: 0, Physical: 8 << 10, Length: 4 << 10},
		{Logical: 8 << 10, Physical: 32 << 10, Length: 4 << 10, Unwritten: true},
		{Logical: 12 << 10, Physical: 16 << 10, Length: 4 << 10},
	}}
	want := make([]byte, 20<<10)
	copy(want[0:], dev[base+8<<10:base+12<<10])
	copy(want[12<<10:], dev[base+16<<10:base+20<<10])
	got, err := io.ReadAll(io.NewSectionReader(f, 0, 1<<20))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("whole file: %v, equal %v, %d bytes", err, bytes.Equal(got, want), len(got))
	}
	// Reads across boundaries at odd offsets.
	for _, off := range []int64{1, 4095, 4097, 12<<10 - 3, 20<<10 - 5} {
		buf := make([]byte, 7)
		n, _ := f.ReadAt(buf, off)
		if !bytes.Equal(buf[:n], want[off:min(off+7, int64(len(want)))]) {
			t.Fatalf("at %d: %v", off, buf[:n])
		}
	}
}

func TestExt4Clean(t *testing.T) {
	img := make([]byte, 4096)
	if ext4Clean(bytes.NewReader(img), 0) {
		t.Fatal("no ext4 magic, said clean")
	}
	binary.LittleEndian.PutUint16(img[1024+0x38:], 0xEF53)
	if !ext4Clean(bytes.NewReader(img), 0) {
		t.Fatal("a clean ext4 said dirty")
	}
	binary.LittleEndian.PutUint32(img[1024+0x60:], 0x4|0x2)
	if ext4Clean(bytes.NewReader(img), 0) {
		t.Fatal("needs_recovery said clean")
	}
}

// readAhead writes every byte in order, and says when the reader ends early.
func TestReadAheadKeepsTheOrder(t *testing.T) {
	src := make([]byte, 13<<20+7)
	for i := range src {
		src[i] = byte(i * 7 / 4096)
	}
	var out bytes.Buffer
	if err := readAhead(&out, bytes.NewReader(src), int64(len(src))); err != nil || !bytes.Equal(out.Bytes(), src) {
		t.Fatalf("copy: %v, equal %v", err, bytes.Equal(out.Bytes(), src))
	}
	if err := readAhead(io.Discard, bytes.NewReader(src[:5<<20]), int64(len(src))); err == nil {
		t.Fatal("a short source went unnoticed")
	}
}

// needTools skips without the QEMU tools, unless KNIB_TEST_REQUIRE_INFRA=1
// demands them.
func needTools(t *testing.T, names ...string) {
	t.Helper()
	for _, name := range names {
		if _, err := exec.LookPath(name); err != nil {
			if os.Getenv("KNIB_TEST_REQUIRE_INFRA") == "1" {
				t.Fatalf("%s not found and KNIB_TEST_REQUIRE_INFRA=1: %v", name, err)
			}
			t.Skipf("%s not found: %v", name, err)
		}
	}
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

// Both views of an image show what qemu-img convert shows: a chain with
// data in each layer, zeroed and unallocated ranges (the mapped view), and
// a compressed image (the NBD view, which the mapped one refuses).
func TestGuestBytesAreQemusBytes(t *testing.T) {
	needTools(t, "qemu-img", "qemu-io", "qemu-storage-daemon")
	ctx := context.Background()
	dir := t.TempDir()
	base, top, packed := filepath.Join(dir, "base.qcow2"), filepath.Join(dir, "top.qcow2"), filepath.Join(dir, "packed.qcow2")
	run(t, "qemu-img", "create", "-q", "-f", "qcow2", base, "16M")
	run(t, "qemu-io", "-f", "qcow2", "-c", "write -P 0x11 0 3M", "-c", "write -P 0x22 5M 64k", "-c", "write -z 8M 1M", base)
	run(t, "qemu-img", "create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", top)
	run(t, "qemu-io", "-f", "qcow2", "-c", "write -P 0x33 1M 100k", "-c", "write -z 2M 64k", "-c", "write -P 0x44 12M 1M", top)
	run(t, "qemu-img", "convert", "-c", "-O", "qcow2", top, packed)
	for _, c := range []struct {
		image  string
		mapped bool
	}{{top, true}, {base, true}, {packed, false}} {
		want := filepath.Join(dir, filepath.Base(c.image)+".raw")
		run(t, "qemu-img", "convert", "-O", "raw", c.image, want)
		wantBytes, err := os.ReadFile(want)
		if err != nil {
			t.Fatal(err)
		}
		v, err := openGuestBytes(ctx, qemuimg.Default, c.image, "qcow2")
		if err != nil {
			t.Fatalf("%s: %v", c.image, err)
		}
		if _, ok := v.(*mappedView); ok != c.mapped {
			t.Fatalf("%s: mapped view %v, want %v", c.image, ok, c.mapped)
		}
		got := make([]byte, len(wantBytes))
		if _, err := v.ReadAt(got, 0); err != nil || !bytes.Equal(got, wantBytes) {
			t.Fatalf("%s: whole image: %v, equal %v", c.image, err, bytes.Equal(got, wantBytes))
		}
		for _, off := range []int64{1<<20 - 5, 2<<20 + 65530, 5<<20 - 1, 12<<20 + 3} {
			buf := make([]byte, 9)
			if _, err := v.ReadAt(buf, off); err != nil || !bytes.Equal(buf, wantBytes[off:off+9]) {
				t.Fatalf("%s at %d: %x %v, want %x", c.image, off, buf, err, wantBytes[off:off+9])
			}
		}
		if _, err := v.ReadAt(make([]byte, 2), int64(len(wantBytes))-1); err == nil {
			t.Fatalf("%s: a read past the end worked", c.image)
		}
		v.Close()
	}
}
