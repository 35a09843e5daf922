package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/knib/knib/internal/fileperm"
)

// CheckDiskDir refuses a disk directory (Config.DiskDir) that is not an
// absolute, clean path other than /, and makes sure it exists as a
// directory QEMU can traverse and other users cannot: created when missing
// with internal/fileperm's DirMode (0750) in the QEMU group.
func CheckDiskDir(dir string) error {
	if !filepath.IsAbs(dir) || filepath.Clean(dir) != dir || dir == "/" {
		return fmt.Errorf("disk directory %q must be an absolute, clean path other than /", dir)
	}
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		perm, err := fileperm.Host()
		if err != nil {
			return fmt.Errorf("disk directory %s: QEMU could not reach it: %w", dir, err)
		}
		if err := perm.MkdirAll(dir); err != nil {
			return fmt.Errorf("disk directory: %w", err)
		}
	}
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("disk directory: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("disk directory %s is not a directory", dir)
	}
	return nil
}
