package cli

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode"

	"github.com/klauspost/compress/zstd"
	"github.com/spf13/cobra"

	"github.com/knib/knib/internal/api"
	"github.com/knib/knib/internal/fsatomic"
)

// fileCmds are file-level restore: browse, extract, restore into a VM.
func fileCmds(a *app) []*cobra.Command {
	var disk string
	files := &cobra.Command{
		Use:   "files BACKUP [PATH] [--disk vda]",
		Short: "List a backup's disks, partitions and file systems, or a directory of one (offerings with --allow-extract-file)",
		Long: "List a backup's disks, partitions and file systems (no PATH), or the directory PATH of one.\n" +
			"--disk names the file system: a disk with one file system (vda), a partition (vda1) or an LVM volume (VG/LV);\n" +
			"it may be left out when the backup has one. The file systems are read in an isolated helper, never mounted on the host.",
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			q := map[string]string{"disk": disk}
			if len(args) == 2 {
				q["path"] = args[1]
			} else if disk != "" {
				q["path"] = "/"
			}
			var l api.FileListing
			if err := a.call(cmd, "GET", "/backups/"+esc(args[0])+"/files", q, nil, &l); err != nil {
				return err
			}
			return a.print(l, func(w *tabwriter.Writer) {
				if q["path"] == "" {
					fmt.Fprintln(w, "VOLUME\tDISK\tPART\tTABLE\tFS\tLABEL\tSIZE\tUSED")
					for _, v := range l.Volumes {
						part := "-"
						if v.Partition > 0 {
							part = strconv.Itoa(v.Partition)
						}
						used := "-"
						if v.Total > 0 {
							used = fmt.Sprintf("%s/%s", humanBytes(uint64(v.Used)), humanBytes(uint64(v.Total)))
						}
						fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.Name, dash(v.Disk), part, dash(v.Table), v.FSType, dash(printable(v.Label)), humanBytes(uint64(v.Size)), used)
					}
					return
				}
				fmt.Fprintf(w, "# %s:%s\n", l.Volume, printable(l.Path))
				fmt.Fprintln(w, "MODE\tUID\tGID\tSIZE\tMTIME\tNAME")
				for _, e := range l.Entries {
					name := printable(e.Name)
					if e.Type == "symlink" {
						name += " -> " + printable(e.Target)
					} else if e.Type == "dir" {
						name += "/"
					}
					fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%s\t%s\n", modeString(e.Type, e.Mode), e.UID, e.GID, e.Size, e.MTime.UTC().Format("2006-01-02 15:04:05"), name)
				}
			})
		},
	}
	files.Flags().StringVar(&disk, "disk", "", "file system: a disk with one (vda), a partition (vda1) or VG/LV")

	var x api.FileExtract
	var out string
	extract := &cobra.Command{
		Use:   "extract BACKUP PATH... -o FILE.tar|FILE.tar.zst|DIR [--disk vda]",
		Short: "Extract files and directories of a backup: a tar archive (zstd for .tar.zst) or into a local directory",
		Long: "Extract files and whole directories of a backup with their modes, owners, times, symlinks and hard links:\n" +
			"to a tar archive (-o FILE.tar), a zstd-compressed one (-o FILE.tar.zst, or - for the standard output as tar),\n" +
			"or into a directory (-o DIR; it is created, and nothing in it is overwritten). Owners are kept when run as root.",
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usageError{errors.New("-o FILE.tar, FILE.tar.zst or DIR is required")}
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			x.Paths = args[1:]
			path := "/backups/" + esc(args[0]) + "/files/extract"
			switch {
			case out == "-":
				return c.Stream(cmd.Context(), path, x, a.out)
			case strings.HasSuffix(out, ".tar"), strings.HasSuffix(out, ".tar.zst"):
				if strings.HasSuffix(out, ".tar.zst") {
					x.Compression = "zstd"
				}
				return fsatomic.Write(out, 0o640, func(w io.Writer) error { return c.Stream(cmd.Context(), path, x, w) })
			default:
				x.Compression = "zstd"
				pr, pw := io.Pipe()
				done := make(chan error, 1)
				go func() {
					err := c.Stream(cmd.Context(), path, x, pw)
					pw.CloseWithError(err)
					done <- err
				}()
				n, err := untarZstd(pr, out)
				pr.CloseWithError(errors.New("extraction stopped"))
				if serr := <-done; serr != nil {
					return serr
				}
				if err != nil {
					return err
				}
				fmt.Fprintf(a.out, "%d entries extracted into %s\n", n, out)
				return nil
			}
		},
	}
	extract.Flags().StringVarP(&out, "output", "o", "", "FILE.tar, FILE.tar.zst, DIR, or - (tar on the standard output)")
	extract.Flags().StringVar(&x.Disk, "disk", "", "file system: a disk with one (vda), a partition (vda1) or VG/LV")

	var r api.FileRestore
	restoreFiles := &cobra.Command{
		Use:   "restore-files BACKUP PATH... --vm VM --to DIR [--overwrite] [--disk vda]",
		Short: "Write files of a backup into a running VM through its guest agent (DIR/PATH), without stopping it",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			r.Paths = args[1:]
			var op api.Operation
			if err := a.call(cmd, "POST", "/backups/"+esc(args[0])+"/files/restore", nil, r, &op); err != nil {
				return err
			}
			return a.operation(cmd, op, a.printRestore)
		},
	}
	restoreFiles.Flags().StringVar(&r.VM, "vm", "", "running VM with a guest agent")
	restoreFiles.Flags().StringVar(&r.To, "to", "", "directory in the guest; PATH goes to DIR/PATH")
	restoreFiles.Flags().BoolVar(&r.Overwrite, "overwrite", false, "replace files that exist; without it nothing is written when one does")
	restoreFiles.Flags().StringVar(&r.Disk, "disk", "", "file system: a disk with one (vda), a partition (vda1) or VG/LV")
	restoreFiles.MarkFlagRequired("vm")
	restoreFiles.MarkFlagRequired("to")
	return []*cobra.Command{files, extract, restoreFiles}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// printable quotes a name that holds control or invalid bytes, so that
// one entry stays one line.
func printable(s string) string {
	for _, r := range s {
		if r == unicode.ReplacementChar || unicode.IsControl(r) {
			return strconv.Quote(s)
		}
	}
	return s
}

func modeString(typ string, mode uint32) string {
	t := map[string]byte{"dir": 'd', "symlink": 'l', "char": 'c', "block": 'b', "fifo": 'p', "socket": 's'}[typ]
	if t == 0 {
		t = '-'
	}
	return string(t) + fs.FileMode(mode & 0o777).String()[1:]
}

// untarZstd extracts a zstd-compressed tar stream into dir (created; an
// existing entry is never replaced) through an os.Root, so that no member
// name or symlink leads outside dir.
func untarZstd(r io.Reader, dir string) (int, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return 0, err
	}
	defer root.Close()
	zr, err := zstd.NewReader(r)
	if err != nil {
		return 0, err
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	type dirTime struct {
		name string
		hd   *tar.Header
	}
	var dirs []dirTime
	n := 0
	asRoot := os.Geteuid() == 0
	for {
		hd, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return n, err
		}
		name := path.Clean(strings.TrimSuffix(hd.Name, "/"))
		if name == "." {
			dirs = append(dirs, dirTime{".", hd})
			continue
		}
		if !filepath.IsLocal(name) {
			return n, fmt.Errorf("member %q is not a path inside the archive", hd.Name)
		}
		if parent := path.Dir(name); parent != "." {
			if err := root.MkdirAll(parent, 0o755); err != nil {
				return n, err
			}
		}
		mode := hd.FileInfo().Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
		switch hd.Typeflag {
		case tar.TypeDir:
			if err := root.Mkdir(name, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
				return n, err
			}
			dirs = append(dirs, dirTime{name, hd})
		case tar.TypeReg:
			f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return n, err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return n, err
			}
		case tar.TypeSymlink:
			if err := root.Symlink(hd.Linkname, name); err != nil {
				return n, err
			}
		case tar.TypeLink:
			if err := root.Link(path.Clean(hd.Linkname), name); err != nil {
				return n, err
			}
		default:
			continue // devices, fifos: not made here
		}
		n++
		if hd.Typeflag == tar.TypeReg {
			if asRoot {
				if err := root.Lchown(name, hd.Uid, hd.Gid); err != nil {
					return n, err
				}
			}
			if err := root.Chmod(name, mode); err != nil {
				return n, err
			}
			if err := root.Chtimes(name, hd.ModTime, hd.ModTime); err != nil {
				return n, err
			}
		} else if hd.Typeflag == tar.TypeSymlink && asRoot {
			if err := root.Lchown(name, hd.Uid, hd.Gid); err != nil {
				return n, err
			}
		}
	}
	// Directories last, deepest first: writing into one changes its time.
	for i := len(dirs) - 1; i >= 0; i-- {
		d := dirs[i]
		if asRoot {
			if err := root.Lchown(d.name, d.hd.Uid, d.hd.Gid); err != nil {
				return n, err
			}
		}
		if err := root.Chmod(d.name, d.hd.FileInfo().Mode()&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)); err != nil {
			return n, err
		}
		if err := root.Chtimes(d.name, d.hd.ModTime, d.hd.ModTime); err != nil {
			return n, err
		}
	}
	return n, nil
}
