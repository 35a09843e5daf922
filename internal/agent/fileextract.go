package agent

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path"
	"strings"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/guestfs"
	"github.com/knib/knib/internal/qemuimg"
)

// ExtractFiles implements agentapi.Files: a tar stream (PAX, numeric
// owners) of the paths, each member named by its path without the leading
// "/" (the root directory: ".").
func (a *Local) ExtractFiles(ctx context.Context, req agentapi.ExtractFilesRequest, w io.Writer) error {
	paths, err := extractPaths(req.Paths)
	if err != nil {
		return err
	}
	drives, err := drivesOf(req.FileSource)
	if err != nil {
		return err
	}
	fh, release, err := a.files.acquire(ctx, req.FileSource, drives)
	if err != nil {
		return err
	}
	defer release()
	vol, dev, err := fh.volume(req.Volume)
	if err != nil {
		return err
	}
	// Every path must exist before the first byte goes out.
	entries := make([]guestfs.Entry, len(paths))
	for i, p := range paths {
		if entries[i], err = fh.h.Stat(ctx, dev, p); err != nil {
			a.files.gone(req.BackupID, fh, err)
			return guestPathError(err)
		}
	}
	x := &extraction{h: fh.h, dev: dev, vol: vol, drives: drives, log: a.log, img: a.img, views: map[int]guestBytes{}}
	defer x.close()
	tw := tar.NewWriter(w)
	for i, p := range paths {
		if err := x.writeMember(ctx, tw, p, entries[i]); err != nil {
			a.files.gone(req.BackupID, fh, err)
			return err
		}
	}
	return tw.Close()
}

// extraction writes the members of one ExtractFiles call.
type extraction struct {
	h      *guestfs.Handle
	dev    string
	vol    agentapi.FileVolume
	drives []guestfs.Drive
	log    *slog.Logger
	img    *qemuimg.Tool
	views  map[int]guestBytes // by drive, opened for the fast path
}

func (x *extraction) close() {
	for _, v := range x.views {
		v.Close()
	}
}

// fastMin is the size from which a file of a clean ext4 is read from the
// backup's bytes directly (its extents from the appliance) rather than
// through the appliance, which runs at tens of MB/s under TCG.
const fastMin = 4 << 20

// fastContent returns the content of regular file p read from the
// backup's bytes, or nil when it can't be (not ext4, a logical volume, a
// file system that needs journal recovery, a layout the checks refuse):
// then the appliance reads it. The first and last 4 KiB are compared with
// what the appliance reads before any is used.
func (x *extraction) fastContent(ctx context.Context, p string, e guestfs.Entry) io.ReaderAt {
	if x.vol.FSType != "ext4" || x.vol.Disk == "" || e.Size < fastMin {
		return nil
	}
	refuse := func(why string, err error) io.ReaderAt {
		x.log.Debug("file read through the helper", "path", p, "why", why, "err", err)
		return nil
	}
	drive, base, err := x.h.DeviceOnDrive(ctx, x.dev)
	if err != nil || drive >= len(x.drives) {
		return refuse("device", err)
	}
	// The raw view starts while the appliance reads the extents.
	v := x.views[drive]
	var viewErr error
	viewReady := make(chan struct{})
	if v == nil {
		go func() {
			defer close(viewReady)
			v, viewErr = openGuestBytes(ctx, x.img, x.drives[drive].Path, x.drives[drive].Format)
		}()
	} else {
		close(viewReady)
	}
	ext, exts, err := x.h.Ext4Extents(ctx, x.dev, p)
	<-viewReady
	if viewErr != nil {
		return refuse("raw view", viewErr)
	}
	x.views[drive] = v
	if err != nil || ext.Size != e.Size || ext.Inode != e.Inode {
		return refuse("extents", err)
	}
	if !ext4Clean(v, base) {
		return refuse("the file system needs journal recovery", nil)
	}
	f := &extentFile{dev: v, base: base, exts: exts, size: e.Size}
	const probe = 4096
	for _, off := range []int64{0, e.Size - probe} {
		want, err := x.h.Pread(ctx, x.dev, p, probe, off)
		got := make([]byte, probe)
		if _, rerr := f.ReadAt(got, off); err != nil || rerr != nil || !bytes.Equal(got, want) {
			return refuse("probe differs", errors.Join(err, rerr))
		}
	}
	return f
}

// memberName is the tar name of guest path p.
func memberName(p string) string {
	if p == "/" {
		return "."
	}
	return strings.TrimPrefix(p, "/")
}

func headerOf(name string, e guestfs.Entry) *tar.Header {
	h := &tar.Header{Name: name, Mode: int64(e.Mode), Uid: int(e.UID), Gid: int(e.GID), ModTime: e.MTime, Format: tar.FormatPAX}
	switch e.Type {
	case "file":
		h.Typeflag, h.Size = tar.TypeReg, e.Size
	case "dir":
		h.Typeflag = tar.TypeDir
		h.Name += "/"
	case "symlink":
		h.Typeflag, h.Linkname = tar.TypeSymlink, e.Target
	case "fifo":
		h.Typeflag = tar.TypeFifo
	default:
		return nil // devices and sockets are not extracted
	}
	return h
}

// writeMember writes guest path p: a file from its content, a directory
// from the helper's tar of it (renamed under p), a symlink as a symlink.
func (x *extraction) writeMember(ctx context.Context, tw *tar.Writer, p string, e guestfs.Entry) error {
	h, dev := x.h, x.dev
	name := memberName(p)
	if e.Type != "dir" {
		hd := headerOf(name, e)
		if hd == nil {
			return nil
		}
		if err := tw.WriteHeader(hd); err != nil {
			return err
		}
		if e.Type != "file" {
			return nil
		}
		if f := x.fastContent(ctx, p, e); f != nil {
			return readAhead(tw, f, e.Size)
		}
		return h.Download(ctx, dev, p, tw)
	}
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := h.TarOut(ctx, dev, p, pw)
		pw.CloseWithError(err)
		done <- err
	}()
	err := rename(tw, tar.NewReader(pr), name)
	if err == nil {
		// GNU tar pads its archive past the end marker.
		_, err = io.Copy(io.Discard, pr)
	}
	pr.CloseWithError(errors.New("extract stopped"))
	if herr := <-done; herr != nil {
		return fmt.Errorf("read %s: %w", p, herr)
	}
	return err
}

// rename copies the members of a tar of a directory ("./x") into tw under
// dir ("dir/x"), hard links included.
func rename(tw *tar.Writer, tr *tar.Reader, dir string) error {
	under := func(n string) string {
		n = strings.TrimPrefix(path.Clean("/"+n), "/")
		if n == "" {
			return dir
		}
		if dir == "." {
			return n
		}
		return dir + "/" + n
	}
	for {
		hd, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		isDir := hd.Typeflag == tar.TypeDir
		hd.Name = under(hd.Name)
		if isDir {
			hd.Name += "/"
		}
		if hd.Typeflag == tar.TypeLink {
			hd.Linkname = under(hd.Linkname)
		}
		hd.Format = tar.FormatPAX
		hd.Uname, hd.Gname = "", ""
		if err := tw.WriteHeader(hd); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
}
