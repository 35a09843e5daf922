package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// CheckDiskDir refuses a disk directory (Config.DiskDir) that is not an
// absolute, clean path other than /, and makes sure it exists as a
// directory QEMU can traverse (created 0755 when missing).
func CheckDiskDir(dir string) error {
	if !filepath.IsAbs(dir) || filepath.Clean(dir) != dir || dir == "/" {
		return fmt.Errorf("disk directory %q must be an absolute, clean path other than /", dir)
	}
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("disk directory: %w", err)
		}
		// Whatever the umask: QEMU (libvirt-qemu) must traverse it.
		if err := os.Chmod(dir, 0o755); err != nil {
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
