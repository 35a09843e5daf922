package agent

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/knib/knib/internal/guestfs"
	"github.com/knib/knib/internal/qemuimg"
)

// guestBytes is a disk image's guest-visible bytes, read-only.
type guestBytes interface {
	io.ReaderAt
	Close()
}

// openGuestBytes opens the guest-visible bytes of image (qcow2 or raw, with
// its backing chain): a mappedView when every byte with data lies plainly in
// the chain's files (no compressed cluster), else a rawView.
func openGuestBytes(ctx context.Context, img *qemuimg.Tool, image, format string) (guestBytes, error) {
	v, err := openMappedView(ctx, img, image, format)
	if err == nil {
		return v, nil
	}
	if !errors.Is(err, errNotMapped) {
		return nil, err
	}
	if format != "qcow2" {
		return nil, err
	}
	return openRawView(ctx, image)
}

// errNotMapped: some of an image's data has no plain place in its files.
var errNotMapped = errors.New("the image has compressed data")

// mappedView reads an image's guest-visible bytes from its chain's files at
// the places `qemu-img map` gives: the agent reads each byte once, with no
// daemon and no socket in between. QEMU's qemu-img parses the qcow2
// metadata; knib reads bytes at offsets of files it opened itself.
type mappedView struct {
	files []*os.File // by depth: the image, its backing file, ...
	m     []qemuimg.MapEntry
	size  int64
}

func openMappedView(ctx context.Context, img *qemuimg.Tool, image, format string) (_ *mappedView, err error) {
	chain, err := img.Info(ctx, image, qemuimg.InfoOptions{BackingChain: true, Format: format})
	if err != nil {
		return nil, err
	}
	v := &mappedView{}
	defer func() {
		if err != nil {
			v.Close()
		}
	}()
	// The files are opened before the map is read, and checked after it
	// to be still the ones at their paths (a compression job replaces a
	// backup's file by a new one): the map describes the open files.
	paths := make([]string, len(chain))
	for i, c := range chain {
		if c.Format != "qcow2" && c.Format != "raw" {
			return nil, fmt.Errorf("%s: format %q", c.Filename, c.Format)
		}
		paths[i] = image
		if i > 0 {
			paths[i] = chain[i-1].FullBackingFilename
		}
		f, err := os.Open(paths[i])
		if err != nil {
			return nil, err
		}
		v.files = append(v.files, f)
	}
	if v.m, err = img.Map(ctx, image, format); err != nil {
		return nil, err
	}
	for i, f := range v.files {
		open, err1 := f.Stat()
		now, err2 := os.Stat(paths[i])
		if err1 != nil || err2 != nil || !os.SameFile(open, now) {
			return nil, fmt.Errorf("%s changed while it was mapped", paths[i])
		}
	}
	for _, e := range v.m {
		if e.Data && (e.Offset == nil || e.Depth >= len(v.files)) {
			return nil, errNotMapped
		}
		v.size = e.Start + e.Length
	}
	return v, nil
}

func (v *mappedView) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > v.size {
		return 0, io.ErrUnexpectedEOF
	}
	done := 0
	for done < len(p) {
		pos := off + int64(done)
		i := sort.Search(len(v.m), func(i int) bool { return v.m[i].Start+v.m[i].Length > pos })
		e := v.m[i]
		chunk := p[done:min(len(p), done+int(min(e.Start+e.Length-pos, int64(len(p)))))]
		if !e.Data {
			clear(chunk)
		} else if _, err := v.files[e.Depth].ReadAt(chunk, *e.Offset+pos-e.Start); err != nil {
			return done, fmt.Errorf("read %s at %d: %w", v.files[e.Depth].Name(), *e.Offset+pos-e.Start, err)
		}
		done += len(chunk)
	}
	return done, nil
}

// Close closes the chain's files.
func (v *mappedView) Close() {
	for _, f := range v.files {
		f.Close()
	}
}

// rawView shows a qcow2 image, with its backing chain, read-only as its
// guest-visible bytes: a qemu-storage-daemon exports it over NBD on a
// private unix socket, and ReadAt sends NBD reads on a few connections
// (one read at a time each). The host's kernel sees a socket of bytes and
// parses nothing of the guest's.
type rawView struct {
	cmd   *exec.Cmd
	dir   string
	conns chan *nbdConn
	all   []*nbdConn
	done  chan struct{}
}

const rawViewConns = 3

func openRawView(ctx context.Context, image string) (*rawView, error) {
	dir, err := os.MkdirTemp("", "knib-raw-")
	if err != nil {
		return nil, err
	}
	sock := filepath.Join(dir, "nbd.sock")
	blockdev, _ := json.Marshal(map[string]any{"driver": "qcow2", "node-name": "n", "read-only": true,
		"file": map[string]any{"driver": "file", "filename": image, "read-only": true}})
	server, _ := json.Marshal(map[string]any{"addr": map[string]any{"type": "unix", "path": sock}, "max-connections": rawViewConns})
	export, _ := json.Marshal(map[string]any{"type": "nbd", "id": "e", "node-name": "n", "name": "n", "writable": false})
	cmd := exec.Command("qemu-storage-daemon", "--blockdev", string(blockdev), "--nbd-server", string(server), "--export", string(export))
	// The daemon ends with this process.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("qemu-storage-daemon: %w", err)
	}
	v := &rawView{cmd: cmd, dir: dir, done: make(chan struct{}), conns: make(chan *nbdConn, rawViewConns)}
	go func() { cmd.Wait(); close(v.done) }()
	for i := 0; len(v.all) < rawViewConns; i++ {
		c, err := dialNBD(sock, "n", 5*time.Second)
		if err == nil {
			v.all = append(v.all, c)
			v.conns <- c
			continue
		}
		select {
		case <-v.done:
			v.Close()
			return nil, fmt.Errorf("qemu-storage-daemon ended: %s", strings.TrimSpace(stderr.String()))
		case <-ctx.Done():
			v.Close()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if i > 500 {
			v.Close()
			return nil, fmt.Errorf("the backup file's NBD export did not answer: %v", err)
		}
	}
	return v, nil
}

func (v *rawView) ReadAt(p []byte, off int64) (int, error) {
	c := <-v.conns
	defer func() { v.conns <- c }()
	if off+int64(len(p)) > c.size {
		return 0, io.ErrUnexpectedEOF
	}
	if err := c.readAt(p, off); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close ends the connections and the daemon, and removes its socket.
func (v *rawView) Close() {
	for _, c := range v.all {
		c.close()
	}
	v.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-v.done:
	case <-time.After(10 * time.Second):
		v.cmd.Process.Kill()
		<-v.done
	}
	os.RemoveAll(v.dir)
}

// ext4Clean reads the ext4 superblock of the file system at base: true
// when it is ext4 and needs no journal recovery. Only then do the
// on-image blocks hold what the appliance's mount shows (a recovered
// journal lives in the appliance's overlay, never in the image).
func ext4Clean(r io.ReaderAt, base int64) bool {
	sb := make([]byte, 1024)
	if _, err := r.ReadAt(sb, base+1024); err != nil {
		return false
	}
	const magic, recover = 0xEF53, 0x4
	return binary.LittleEndian.Uint16(sb[0x38:]) == magic && binary.LittleEndian.Uint32(sb[0x60:])&recover == 0
}

// extentFile is a file's content read from its device's bytes: the file's
// extents on the device at base of dev; holes and unwritten extents read
// as zeros.
type extentFile struct {
	dev  io.ReaderAt
	base int64
	exts []guestfs.Extent // sorted, not overlapping
	size int64
}

func (f *extentFile) ReadAt(p []byte, off int64) (int, error) {
	if off >= f.size {
		return 0, io.EOF
	}
	want := len(p)
	if rest := f.size - off; int64(want) > rest {
		want = int(rest)
	}
	done := 0
	for done < want {
		pos := off + int64(done)
		// The first extent that ends after pos.
		i := sort.Search(len(f.exts), func(i int) bool { return f.exts[i].Logical+f.exts[i].Length > pos })
		chunk := p[done:want]
		switch {
		case i == len(f.exts) || f.exts[i].Logical > pos: // a hole
			if i < len(f.exts) {
				chunk = chunk[:min(int64(len(chunk)), f.exts[i].Logical-pos)]
			}
			clear(chunk)
		case f.exts[i].Unwritten:
			chunk = chunk[:min(int64(len(chunk)), f.exts[i].Logical+f.exts[i].Length-pos)]
			clear(chunk)
		default:
			x := f.exts[i]
			chunk = chunk[:min(int64(len(chunk)), x.Logical+x.Length-pos)]
			if _, err := f.dev.ReadAt(chunk, f.base+x.Physical+(pos-x.Logical)); err != nil {
				return done, fmt.Errorf("read the backup's bytes: %w", err)
			}
		}
		done += len(chunk)
	}
	if done < len(p) {
		return done, io.EOF
	}
	return done, nil
}

// readAhead copies size bytes of r to w with reads of 8 MiB, up to three
// in flight ahead of the writer (the reads of a raw view overlap on its
// connections while the writer sends).
func readAhead(w io.Writer, r io.ReaderAt, size int64) error {
	const chunk, inflight = 8 << 20, 3
	type result struct {
		b   []byte
		err error
	}
	free := make(chan []byte, inflight+1)
	for range inflight + 1 {
		free <- make([]byte, chunk)
	}
	pending := make(chan chan result, inflight)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		defer close(pending)
		for off := int64(0); off < size; off += chunk {
			var b []byte
			select {
			case b = <-free:
			case <-stop:
				return
			}
			n := min(chunk, size-off)
			c := make(chan result, 1)
			select {
			case pending <- c:
			case <-stop:
				return
			}
			go func(off int64, b []byte) {
				k, err := r.ReadAt(b, off)
				if err == io.EOF && int64(k) == n {
					err = nil
				}
				c <- result{b[:k], err}
			}(off, b[:n])
		}
	}()
	var done int64
	for c := range pending {
		res := <-c
		if res.err != nil {
			return res.err
		}
		if _, err := w.Write(res.b); err != nil {
			return err
		}
		done += int64(len(res.b))
		free <- res.b[:cap(res.b)]
	}
	if done != size {
		return fmt.Errorf("read %d of %d bytes", done, size)
	}
	return nil
}
