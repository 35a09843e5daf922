package chain

import (
	"errors"
	"fmt"
	"time"

	"github.com/knib/knib/internal/domain"
)

// Status and Type are the catalogue's.
type (
	Status = domain.BackupStatus
	Type   = domain.BackupType
)

// Shorter names for the statuses and types used here.
const (
	BackingUp   = domain.BackupBackingUp
	BackedUp    = domain.BackupBackedUp
	Failed      = domain.BackupFailed
	Error       = domain.BackupError
	Removed     = domain.BackupRemoved
	Restoring   = domain.BackupRestoring
	Expunged    = domain.BackupExpunged
	Full        = domain.BackupFull
	Incremental = domain.BackupIncremental
)

// Backup is what planning needs to know about one backup.
type Backup struct {
	ID         string
	ParentID   string // "" for a full backup
	Type       Type
	Isolated   bool
	EndOfChain bool
	Position   int // 1 for a full backup, parent's + 1 for an incremental
	Status     Status
	Created    time.Time
	// HasFiles is true when the backup still has files on its storage
	// (an Error backup whose deletion failed).
	HasFiles bool
}

// Decision is the plan for a new backup.
type Decision struct {
	Type       Type
	ParentID   string
	Position   int
	EndOfChain bool // this backup fills the chain: merge its delta back at once
	Isolated   bool
}

// Next decides the next backup of a VM. head is the current chain head (nil
// when there is no chain); chainSize < 1 means unlimited, 1 means every
// backup is full.
func Next(head *Backup, chainSize int, isolated bool) Decision {
	if isolated {
		return Decision{Type: Full, Position: 1, Isolated: true}
	}
	if head == nil || head.EndOfChain || head.Status != BackedUp || head.Isolated {
		return Decision{Type: Full, Position: 1, EndOfChain: chainSize == 1}
	}
	pos := head.Position + 1
	if chainSize == 1 {
		return Decision{Type: Full, Position: 1, EndOfChain: true}
	}
	return Decision{Type: Incremental, ParentID: head.ID, Position: pos, EndOfChain: chainSize >= 1 && pos >= chainSize}
}

// Recorded is the delta knib recorded for one disk of the chain head.
type Recorded struct {
	Target string
	Delta  string // the overlay file
	Base   string // the file below it
}

// RealDisk is one disk as the hypervisor shows it at backup time.
type RealDisk struct {
	Target  string
	Top     string   // active file
	Backing []string // files below Top, top to bottom
}

// DiskPlan is what a backup does with one disk.
type DiskPlan struct {
	Target string
	// Full: copy the flattened image; else copy Frozen alone on top of the
	// parent backup's file.
	Full bool
	// Reason says why a disk of an incremental backup is copied full.
	Reason string
	// Frozen is the current top; the snapshot freezes it and the backup copies it.
	Frozen string
	// MergeInto, when set, is the base the previous delta is merged into
	// after the copy, so that one delta per disk remains.
	MergeInto string
	// Delta is the previous backup's delta (the file merged into MergeInto).
	// It is Frozen, unless VM snapshots were taken since: then the snapshot
	// overlays sit between Frozen and Delta.
	Delta string
	// Layers are the files an incremental copies, top (Frozen) to bottom
	// (Delta): more than one when VM snapshots were taken since the parent
	// backup. They are collapsed into one backup file.
	Layers []string
}

// PlanDisks decides per disk. It trusts the hypervisor: a disk whose real
// chain is not what knib recorded (new disk, replaced or moved file, chain
// changed outside knib) is copied full, and its previous delta is not merged.
// Only VM snapshot overlays (isSnapshot) may sit above the recorded delta.
// parentFiles lists the disk targets the parent backup has a file for.
func PlanDisks(d Decision, parentFiles map[string]bool, recorded []Recorded, real []RealDisk, isSnapshot func(path string) bool) []DiskPlan {
	rec := map[string]Recorded{}
	for _, r := range recorded {
		rec[r.Target] = r
	}
	out := make([]DiskPlan, 0, len(real))
	for _, disk := range real {
		p := DiskPlan{Target: disk.Target, Frozen: disk.Top, Full: d.Type == Full}
		r, known := rec[disk.Target]
		files := append([]string{disk.Top}, disk.Backing...)
		k := -1
		if known {
			for i, f := range files {
				if f == r.Delta {
					k = i
					break
				}
				if isSnapshot == nil || !isSnapshot(f) {
					break
				}
			}
		}
		consistent := k >= 0 && k+1 < len(files) && files[k+1] == r.Base
		if consistent {
			p.Delta, p.Layers = r.Delta, files[:k+1]
			if !d.Isolated {
				p.MergeInto = r.Base
			}
		}
		if !p.Full {
			switch {
			case !known:
				p.Full, p.Reason = true, "the disk has no backup delta on primary storage (new or re-attached disk, or chain ended)"
			case !consistent:
				p.Full, p.Reason = true, fmt.Sprintf("the disk's real chain (top %s) is not the one recorded (delta %s on %s): changed outside knib", disk.Top, r.Delta, r.Base)
			case !parentFiles[disk.Target]:
				p.Full, p.Reason = true, "the parent backup has no file for this disk"
			}
		}
		out = append(out, p)
	}
	return out
}

// ErrBusy means a backup cannot be deleted in its current status.
var ErrBusy = errors.New("backup is busy")

// DeletePlan is the outcome of deleting backups.
type DeletePlan struct {
	// MarkRemoved are backups kept on storage because others depend on them.
	MarkRemoved []string
	// Expunge are backups whose files go and that leave the catalogue, in order.
	Expunge []string
	// CatalogueOnly are failed backups that only leave the catalogue.
	CatalogueOnly []string
	// MergeHead: the chain head is deleted; its deltas on primary must be
	// merged back and the chain ends.
	MergeHead bool
}

// PlanDelete plans deleting ids (in order) among all backups of one VM.
func PlanDelete(all []Backup, headID string, ids []string) (DeletePlan, error) {
	byID := map[string]*Backup{}
	for i := range all {
		b := all[i]
		byID[b.ID] = &b
	}
	live := func(s Status) bool { return s != Expunged && s != Failed && s != Error }
	hasLiveChild := func(id string) bool {
		for _, b := range byID {
			if b.ParentID == id && live(b.Status) {
				return true
			}
		}
		return false
	}
	var plan DeletePlan
	for _, id := range ids {
		b, ok := byID[id]
		if !ok || b.Status == Expunged {
			return DeletePlan{}, fmt.Errorf("backup %s is not in the catalogue", id)
		}
		switch b.Status {
		case Failed, Error:
			if b.Status == Failed || !b.HasFiles {
				b.Status = Expunged
				plan.CatalogueOnly = append(plan.CatalogueOnly, id)
				continue
			}
			// An Error backup that kept its files (its deletion failed):
			// deleted again, files and removed ancestors with it.
		case BackingUp, Restoring:
			return DeletePlan{}, fmt.Errorf("backup %s is %s: %w", id, b.Status, ErrBusy)
		case Removed:
			return DeletePlan{}, fmt.Errorf("backup %s was deleted already and goes with its last dependant", id)
		}
		if id == headID {
			plan.MergeHead = true
		}
		if hasLiveChild(id) {
			b.Status = Removed
			plan.MarkRemoved = append(plan.MarkRemoved, id)
			continue
		}
		b.Status = Expunged
		plan.Expunge = append(plan.Expunge, id)
		// Cascade through removed ancestors that nothing needs any more.
		for p := byID[b.ParentID]; p != nil && p.Status == Removed && !hasLiveChild(p.ID); p = byID[p.ParentID] {
			p.Status = Expunged
			plan.Expunge = append(plan.Expunge, p.ID)
		}
	}
	// A backup first marked removed may have been expunged by a later cascade.
	kept := plan.MarkRemoved[:0]
	for _, id := range plan.MarkRemoved {
		if byID[id].Status == Removed {
			kept = append(kept, id)
		}
	}
	plan.MarkRemoved = kept
	return plan, nil
}

// Ancestors returns the chain from id up to its full backup, newest first.
func Ancestors(all []Backup, id string) []Backup {
	byID := map[string]Backup{}
	for _, b := range all {
		byID[b.ID] = b
	}
	var out []Backup
	for b, ok := byID[id]; ok; b, ok = byID[b.ParentID] {
		out = append(out, b)
		if b.ParentID == "" || len(out) > len(all) {
			break
		}
	}
	return out
}

// BackupInput is what planning a backup looks at: the chain head (nil
// without a chain), the chain size (< 1 unlimited), whether the backup is
// isolated, the disks the head has files for, the deltas knib recorded and
// the disks as the hypervisor shows them now.
type BackupInput struct {
	Head        *Backup
	ChainSize   int
	Isolated    bool
	ParentFiles map[string]bool
	Recorded    []Recorded
	Real        []RealDisk
	IsSnapshot  func(path string) bool
}

// BackupPlan is the whole plan of one backup: its place in the chain, what
// it does with each disk, and whether the new deltas are merged back at
// the end (end of chain, isolated backup).
type BackupPlan struct {
	Decision      Decision
	Disks         []DiskPlan
	MergeNewDelta bool
}

// PlanBackup plans a backup: Next, then PlanDisks; an incremental whose
// every disk must be copied full (all changed outside knib) starts a new
// chain instead.
func PlanBackup(in BackupInput) BackupPlan {
	d := Next(in.Head, in.ChainSize, in.Isolated)
	disks := PlanDisks(d, in.ParentFiles, in.Recorded, in.Real, in.IsSnapshot)
	allFull := len(disks) > 0
	for _, p := range disks {
		allFull = allFull && p.Full
	}
	if d.Type == Incremental && allFull {
		d = Decision{Type: Full, Position: 1, EndOfChain: in.ChainSize == 1}
	}
	return BackupPlan{Decision: d, Disks: disks, MergeNewDelta: d.EndOfChain || d.Isolated}
}
