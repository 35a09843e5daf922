package agent

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/guestfs"
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
	_, dev, err := fh.volume(req.Volume)
	if err != nil {
		return err
	}
	// Every path must exist before the first byte goes out.
	entries := make([]guestfs.Entry, len(paths))
	for i, p := range paths {
		if entries[i], err = fh.h.Stat(ctx, dev, p); err != nil {
			return guestPathError(err)
		}
	}
	tw := tar.NewWriter(w)
	for i, p := range paths {
		if err := writeMember(ctx, tw, fh.h, dev, p, entries[i]); err != nil {
			return err
		}
	}
	return tw.Close()
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
func writeMember(ctx context.Context, tw *tar.Writer, h *guestfs.Handle, dev, p string, e guestfs.Entry) error {
	name := memberName(p)
	if e.Type != "dir" {
		hd := headerOf(name, e)
		if hd == nil {
			return nil
		}
		if err := tw.WriteHeader(hd); err != nil {
			return err
		}
		if e.Type == "file" {
			return h.Download(ctx, dev, p, tw)
		}
		return nil
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
