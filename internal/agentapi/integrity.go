package agentapi

import (
	"fmt"
	"strings"
)

// ChainFile is a backup file a command reads, with the hash the catalogue
// recorded for it: the restored backup's own file and every file below it
// in its chain. Path is relative to the storage root.
type ChainFile struct {
	BackupID string `json:"backup_id"`
	Disk     string `json:"disk"`
	Path     string `json:"path"`
	Hash     string `json:"hash"`
}

// Verify asks a command that reads backup files to check them: every file
// of Files must still hash to its recorded hash. A mismatch stops the
// command before it changes the VM, unless AcceptDamaged: then it goes on
// and reports what it found in its result.
type Verify struct {
	Files         []ChainFile `json:"verify,omitempty"`
	AcceptDamaged bool        `json:"accept_damaged,omitempty"`
}

// Damage is a backup file whose bytes no longer hash to the recorded hash
// (flipped bits, a truncated or replaced file), or that cannot be read.
type Damage struct {
	BackupID string `json:"backup_id"`
	Path     string `json:"path"`
	Recorded string `json:"recorded"`
	// Found is the file's hash now, or why it could not be read.
	Found string `json:"found"`
}

func (d Damage) String() string {
	return fmt.Sprintf("backup %s: file %s hashes to %s, recorded %s", d.BackupID, d.Path, d.Found, d.Recorded)
}

// Damages says what was found, one damage after the other.
func Damages(ds []Damage) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = d.String()
	}
	return strings.Join(parts, "; ")
}
