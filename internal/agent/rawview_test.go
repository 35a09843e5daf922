package agent

import (
	"bytes"
	"encoding/binary"
	"io"
	"testing"

	"github.com/knib/knib/internal/guestfs"
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
