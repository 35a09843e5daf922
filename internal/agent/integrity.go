package agent

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/zeebo/xxh3"

	"github.com/knib/knib/internal/agentapi"
)

// The integrity check: every read path of backup files (restore, volume
// restore, create-vm, consolidation after a quick restore, storage
// migration, the periodic re-hash) hashes the files it reads here, with
// one function, and compares them with the hashes the catalogue recorded.

// hashBuffer is the read size of HashFile.
const hashBuffer = 1 << 20

// HashFile returns "xxh3-128:<hex>" of a file's bytes.
func HashFile(path string) (string, error) {
	fh, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer fh.Close()
	h := xxh3.New()
	// 1 MiB reads: io.Copy's 32 KiB made the read calls cost as much as
	// the hash (1 GiB from the page cache: 0.27 s, 0.13 to 0.22 s with this).
	// The wrappers keep io.CopyBuffer from using the file's WriteTo.
	if _, err := io.CopyBuffer(struct{ io.Writer }{h}, struct{ io.Reader }{fh}, make([]byte, hashBuffer)); err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	return hashText(h), nil
}

// hashText is a hash's text form, "xxh3-128:<hex>".
func hashText(h *xxh3.Hasher) string {
	sum := h.Sum128().Bytes()
	return "xxh3-128:" + hex.EncodeToString(sum[:])
}

// DamageError is the failure of a command that found damaged backup files.
// Nothing was changed: the command stopped before touching a VM.
type DamageError struct {
	Damaged []agentapi.Damage
}

func (e *DamageError) Error() string {
	return "damaged backup files, nothing was changed: " + agentapi.Damages(e.Damaged)
}

// checkFiles hashes the files (paths relative to root) and returns those
// that do not match their recorded hash. A file without a recorded hash is
// not checked; a file that cannot be read is damaged. Files are hashed in
// order, so that a check started next to a copy of the same files reads
// them while the copy does (one read from the disk, the other from the
// page cache).
func checkFiles(ctx context.Context, root string, files []agentapi.ChainFile) ([]agentapi.Damage, error) {
	var out []agentapi.Damage
	seen := map[string]bool{}
	for _, f := range files {
		if f.Hash == "" || seen[f.Path] {
			continue
		}
		seen[f.Path] = true
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		p, err := inStorage(root, f.Path)
		if err != nil {
			return nil, err
		}
		got, err := HashFile(p)
		if err != nil {
			got = "unreadable (" + err.Error() + ")"
		}
		if got != f.Hash {
			out = append(out, agentapi.Damage{BackupID: f.BackupID, Path: f.Path, Recorded: f.Hash, Found: got})
		}
	}
	return out, nil
}

// check is a checkFiles running next to the work that reads the same
// files.
type check struct {
	done    chan struct{}
	damaged []agentapi.Damage
	err     error
}

// startCheck begins checking v's files in the background; nil when there
// is nothing to check.
func startCheck(ctx context.Context, root string, v agentapi.Verify) *check {
	if len(v.Files) == 0 {
		return nil
	}
	c := &check{done: make(chan struct{})}
	go func() {
		defer close(c.done)
		c.damaged, c.err = checkFiles(ctx, root, v.Files)
	}()
	return c
}

// result waits for the check. It returns a *DamageError when files are
// damaged and the request does not accept that, else the damaged files
// (accepted) and nil.
func (c *check) result(v agentapi.Verify) ([]agentapi.Damage, error) {
	if c == nil {
		return nil, nil
	}
	<-c.done
	if c.err != nil {
		return nil, fmt.Errorf("check the backup files: %w", c.err)
	}
	if len(c.damaged) > 0 && !v.AcceptDamaged {
		return nil, &DamageError{Damaged: c.damaged}
	}
	return c.damaged, nil
}

// or returns err, the failure of the work next to the check, unless the
// check found damaged files: a damaged file is the cause then (a truncated
// backup file makes qemu-img fail too), and the caller changed nothing.
func (c *check) or(err error) error {
	if c == nil {
		return err
	}
	<-c.done
	if len(c.damaged) > 0 {
		return cleanError{&DamageError{Damaged: c.damaged}}
	}
	return err
}

// verifyNow checks v's files before the caller goes on.
func verifyNow(ctx context.Context, root string, v agentapi.Verify) ([]agentapi.Damage, error) {
	return startCheck(ctx, root, v).result(v)
}

// damageOf finds the damage a task's error carries.
func damageOf(err error) []agentapi.Damage {
	var de *DamageError
	if errors.As(err, &de) {
		return de.Damaged
	}
	return nil
}
