package agent

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"

	"github.com/zeebo/xxh3"

	"github.com/knib/knib/internal/qemuimg"
)

// A guest digest is a hash of what a guest sees on a disk, whatever the
// image's format, cluster layout or allocation: xxh3-128 over the virtual
// size, then, in guest order, the offset and the bytes of every 64 KiB
// block that holds a non-zero byte (a hole, a zero cluster and a data
// cluster of zeros all count as zeros). Two images with the same digest
// show a guest the same bytes.
//
// A restore verifies with it instead of `qemu-img compare`: the backup's
// digest is taken while `qemu-img convert` reads the same files (from the
// page cache), and only the written image is read back, while it is
// fsynced.

const (
	digestBlock  = 64 << 10
	digestWindow = 4 << 20
)

var zeroBlock [digestBlock]byte

// verifiedByDigest is the label of a disk verified by guest digests.
const verifiedByDigest = "guest-visible digest (xxh3-128)"

// guestDigest returns the guest digest of image (with its backing chain),
// reading the chain's files at the places `qemu-img map` gives. It fails
// with errNotMapped when some data has no plain place (compressed
// clusters): the caller then compares with qemu-img.
func guestDigest(ctx context.Context, img *qemuimg.Tool, image, format string) (string, error) {
	v, err := openMappedView(ctx, img, image, format)
	if err != nil {
		return "", err
	}
	defer v.Close()
	return v.digest(ctx)
}

// digest hashes the view's guest-visible bytes (see guestDigest). Only
// ranges the map says hold data are read.
func (v *mappedView) digest(ctx context.Context) (string, error) {
	h := xxh3.New()
	var word [8]byte
	binary.LittleEndian.PutUint64(word[:], uint64(v.size))
	h.Write(word[:])
	buf := make([]byte, digestWindow)
	next := int64(0) // blocks before next are hashed
	for _, e := range v.m {
		if !e.Data {
			continue
		}
		start := max(e.Start/digestBlock*digestBlock, next)
		end := min((e.Start+e.Length+digestBlock-1)/digestBlock*digestBlock, v.size)
		for start < end {
			if err := ctx.Err(); err != nil {
				return "", err
			}
			b := buf[:min(int64(digestWindow), end-start)]
			if _, err := v.ReadAt(b, start); err != nil {
				return "", err
			}
			for off := 0; off < len(b); off += digestBlock {
				blk := b[off:min(off+digestBlock, len(b))]
				if bytes.Equal(blk, zeroBlock[:len(blk)]) {
					continue
				}
				binary.LittleEndian.PutUint64(word[:], uint64(start)+uint64(off))
				h.Write(word[:])
				h.Write(blk)
			}
			start += int64(len(b))
		}
		next = max(next, start)
	}
	return hashText(h), nil
}

// digestPair is the result of a guest digest taken in the background.
type digestPair struct {
	sum string
	err error
}

// startDigest takes image's guest digest in the background.
func (a *Local) startDigest(ctx context.Context, image, format string) <-chan digestPair {
	ch := make(chan digestPair, 1)
	go func() {
		s, err := guestDigest(ctx, a.img, image, format)
		ch <- digestPair{s, err}
	}()
	return ch
}

// sameByDigest reports whether written shows the same guest bytes as the
// backup whose digest want delivers. ok is false (no verdict, no error)
// when either image has data that cannot be read plainly: the caller
// compares with qemu-img.
func (a *Local) sameByDigest(ctx context.Context, want <-chan digestPair, written, format string) (same, ok bool, err error) {
	got, gerr := guestDigest(ctx, a.img, written, format)
	w := <-want
	switch {
	case errors.Is(w.err, errNotMapped) || errors.Is(gerr, errNotMapped):
		return false, false, nil
	case w.err != nil:
		return false, false, w.err
	case gerr != nil:
		return false, false, gerr
	}
	return got == w.sum, true, nil
}
