package agent

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/guestagent"
	"github.com/knib/knib/internal/guestfs"
)

// restoreFiles writes paths of a backup into a running VM through its guest
// agent: the helper's tar stream is read member by member; files go through
// guest-file-write, directories, links, owners, modes and times through
// programs run with argument lists (mkdir, ln, chown, chmod, touch).
// Without Overwrite, nothing is written when any target exists.
func (a *Local) restoreFiles(ctx context.Context, req agentapi.RestoreFilesRequest, progress func(float64, string)) (any, error) {
	to, err := guestfs.CleanPath(req.To)
	if err != nil {
		return nil, &domain.InvalidError{Field: "to", Reason: err.Error()}
	}
	paths, err := extractPaths(req.Paths)
	if err != nil {
		return nil, err
	}
	if req.DomainUUID == "" {
		return nil, errors.New("the request names no domain")
	}
	if err := a.ga.Ping(ctx, req.DomainUUID); err != nil {
		return nil, fmt.Errorf("the VM's guest agent does not answer (files are restored through it): %v: %w", err, domain.ErrConflict)
	}
	g := guestWriter{ga: a.ga, dom: req.DomainUUID, made: map[string]bool{}}
	if !req.Overwrite {
		var exist []string
		for _, p := range paths {
			t := targetOf(to, memberName(p))
			if ok, err := g.exists(ctx, t); err != nil {
				return nil, err
			} else if ok {
				exist = append(exist, t)
			}
		}
		if len(exist) > 0 {
			return nil, fmt.Errorf("%s already exist in the VM (restore with --overwrite to replace): %w", strings.Join(exist, ", "), domain.ErrConflict)
		}
	}
	progress(0, "reading the backup's file system")
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := a.ExtractFiles(ctx, req.ExtractFilesRequest, pw)
		pw.CloseWithError(err)
		done <- err
	}()
	res, werr := g.writeAll(ctx, tar.NewReader(pr), to, req.Overwrite, progress)
	pr.CloseWithError(errors.New("restore stopped"))
	if xerr := <-done; xerr != nil {
		return nil, xerr
	}
	if werr != nil {
		return nil, werr
	}
	return res, nil
}

// targetOf is where member name goes under dir to.
func targetOf(to, name string) string {
	if name == "." {
		return to
	}
	return path.Join(to, name)
}

type guestWriter struct {
	ga   *guestagent.Client
	dom  string
	made map[string]bool // directories known to exist
}

// run runs a program in the guest; a non-zero exit is an error with its
// standard error.
func (g *guestWriter) run(ctx context.Context, prog string, args ...string) error {
	res, err := g.ga.Exec(ctx, g.dom, guestagent.ExecRequest{Path: prog, Args: args})
	if err != nil {
		return err
	}
	if res.ExitCode != 0 || res.Signal != 0 {
		return fmt.Errorf("%s %s in the guest: exit %d: %s", prog, strings.Join(args, " "), res.ExitCode, strings.TrimSpace(string(res.Stderr)))
	}
	return nil
}

func (g *guestWriter) exists(ctx context.Context, p string) (bool, error) {
	res, err := g.ga.Exec(ctx, g.dom, guestagent.ExecRequest{Path: "ls", Args: []string{"-d", "--", p}})
	if err != nil {
		return false, err
	}
	return res.ExitCode == 0, nil
}

func (g *guestWriter) mkdirAll(ctx context.Context, dir string) error {
	if g.made[dir] {
		return nil
	}
	if err := g.run(ctx, "mkdir", "-p", "--", dir); err != nil {
		return err
	}
	g.made[dir] = true
	return nil
}

// meta sets owner, mode (not on symlinks) and time of p.
func (g *guestWriter) meta(ctx context.Context, p string, hd *tar.Header) error {
	if err := g.run(ctx, "chown", "-h", strconv.Itoa(hd.Uid)+":"+strconv.Itoa(hd.Gid), "--", p); err != nil {
		return err
	}
	if hd.Typeflag != tar.TypeSymlink {
		if err := g.run(ctx, "chmod", strconv.FormatInt(hd.Mode&0o7777, 8), "--", p); err != nil {
			return err
		}
	}
	return g.run(ctx, "touch", "-h", "-d", "@"+strconv.FormatInt(hd.ModTime.Unix(), 10), "--", p)
}

func (g *guestWriter) writeAll(ctx context.Context, tr *tar.Reader, to string, overwrite bool, progress func(float64, string)) (agentapi.RestoreFilesResult, error) {
	var res agentapi.RestoreFilesResult
	type dirMeta struct {
		p  string
		hd *tar.Header
	}
	var dirs []dirMeta
	for {
		hd, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return res, err
		}
		t := targetOf(to, strings.TrimSuffix(hd.Name, "/"))
		if t != to && !strings.HasPrefix(t, strings.TrimSuffix(to, "/")+"/") {
			return res, fmt.Errorf("member %q leads outside %s", hd.Name, to)
		}
		parent := path.Dir(t)
		switch hd.Typeflag {
		case tar.TypeDir:
			if err := g.mkdirAll(ctx, t); err != nil {
				return res, err
			}
			dirs = append(dirs, dirMeta{t, hd})
			res.Dirs++
			continue
		case tar.TypeReg:
			if err := g.mkdirAll(ctx, parent); err != nil {
				return res, err
			}
			n, err := g.ga.WriteFile(ctx, g.dom, t, tr)
			if err != nil {
				return res, err
			}
			res.Files++
			res.Bytes += n
		case tar.TypeSymlink:
			if err := g.mkdirAll(ctx, parent); err != nil {
				return res, err
			}
			flags := "-sT"
			if overwrite {
				flags = "-sfnT"
			}
			if err := g.run(ctx, "ln", flags, "--", hd.Linkname, t); err != nil {
				return res, err
			}
			res.Links++
		case tar.TypeLink:
			if err := g.run(ctx, "ln", "-fT", "--", targetOf(to, hd.Linkname), t); err != nil {
				return res, err
			}
			res.Links++
			continue // the first name of the file carried its metadata
		default:
			res.Skipped++
			continue
		}
		if err := g.meta(ctx, t, hd); err != nil {
			return res, err
		}
		progress(0, fmt.Sprintf("%d files, %d bytes written", res.Files, res.Bytes))
	}
	// Directories last, deepest first: writing into one changes its time.
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i].p) > len(dirs[j].p) })
	for _, d := range dirs {
		if err := g.meta(ctx, d.p, d.hd); err != nil {
			return res, err
		}
	}
	return res, nil
}
