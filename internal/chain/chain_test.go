package chain

import (
	"reflect"
	"strings"
	"testing"
)

func TestNextFollowsChainSize(t *testing.T) {
	// chain size 3: full, incr, incr(end), full, ...
	var head *Backup
	var got []string
	for i := 0; i < 7; i++ {
		d := Next(head, 3, false)
		got = append(got, string(d.Type)[:1]+map[bool]string{true: "E", false: ""}[d.EndOfChain])
		b := &Backup{ID: string(rune('a' + i)), ParentID: d.ParentID, Type: d.Type, Position: d.Position, EndOfChain: d.EndOfChain, Status: BackedUp}
		if d.EndOfChain {
			head = nil // the end of chain keeps no delta: no head
		} else {
			head = b
		}
	}
	want := []string{"f", "i", "iE", "f", "i", "iE", "f"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v want %v", got, want)
	}
	if d := Next(&Backup{ID: "x", Position: 1, Status: BackedUp}, 1, false); d.Type != Full || !d.EndOfChain {
		t.Fatalf("chain size 1: %+v", d)
	}
	if d := Next(&Backup{ID: "x", Position: 40, Status: BackedUp}, 0, false); d.Type != Incremental || d.EndOfChain || d.Position != 41 {
		t.Fatalf("unlimited: %+v", d)
	}
	if d := Next(&Backup{ID: "x", Position: 1, Status: BackedUp}, -5, false); d.Type != Incremental || d.EndOfChain {
		t.Fatalf("negative is unlimited: %+v", d)
	}
	if d := Next(&Backup{ID: "x", Position: 1, Status: Error}, 8, false); d.Type != Full {
		t.Fatalf("a head that is not BackedUp starts a new chain: %+v", d)
	}
	if d := Next(&Backup{ID: "x", Position: 1, Status: BackedUp}, 8, true); d.Type != Full || !d.Isolated || d.ParentID != "" {
		t.Fatalf("isolated: %+v", d)
	}
}

func TestPlanDisks(t *testing.T) {
	dec := Decision{Type: Incremental, ParentID: "p", Position: 2}
	recorded := []Recorded{{Target: "vda", Delta: "/p/d1", Base: "/p/a"}, {Target: "vdb", Delta: "/p/d2", Base: "/p/b"}}
	real := []RealDisk{
		{Target: "vda", Top: "/p/d1", Backing: []string{"/p/a"}},
		{Target: "vdb", Top: "/q/moved", Backing: nil},
		{Target: "vdc", Top: "/p/new"},
	}
	plans := PlanDisks(dec, map[string]bool{"vda": true, "vdb": true}, recorded, real, nil)
	if p := plans[0]; p.Full || p.MergeInto != "/p/a" || p.Frozen != "/p/d1" || p.Delta != "/p/d1" || len(p.Layers) != 1 {
		t.Fatalf("vda: %+v", p)
	}
	if p := plans[1]; !p.Full || p.MergeInto != "" || !strings.Contains(p.Reason, "changed outside knib") {
		t.Fatalf("vdb: %+v", p)
	}
	if p := plans[2]; !p.Full || p.Frozen != "/p/new" || !strings.Contains(p.Reason, "no backup delta") {
		t.Fatalf("vdc: %+v", p)
	}
	// Parent without a file for the disk.
	plans = PlanDisks(dec, map[string]bool{}, recorded, real[:1], nil)
	if !plans[0].Full || plans[0].MergeInto != "/p/a" {
		t.Fatalf("no parent file: %+v", plans[0])
	}
	// Isolated: full, never merges.
	plans = PlanDisks(Decision{Type: Full, Isolated: true}, nil, recorded, real[:1], nil)
	if !plans[0].Full || plans[0].MergeInto != "" || plans[0].Reason != "" {
		t.Fatalf("isolated: %+v", plans[0])
	}
}

func bk(id, parent string, st Status) Backup {
	return Backup{ID: id, ParentID: parent, Status: st}
}

func TestPlanDeleteCascades(t *testing.T) {
	// b3 full <- b4 <- b5 (head); b6 isolated
	all := []Backup{bk("b3", "", BackedUp), bk("b4", "b3", BackedUp), bk("b5", "b4", BackedUp), bk("b6", "", BackedUp), bk("bf", "", Failed)}
	p, err := PlanDelete(all, "b5", []string{"b4"})
	if err != nil || !reflect.DeepEqual(p.MarkRemoved, []string{"b4"}) || len(p.Expunge) != 0 || p.MergeHead {
		t.Fatalf("b4 with dependant: %+v %v", p, err)
	}
	all[1].Status = Removed
	p, err = PlanDelete(all, "b5", []string{"b5"})
	if err != nil || !reflect.DeepEqual(p.Expunge, []string{"b5", "b4"}) || !p.MergeHead {
		t.Fatalf("b5 cascades into b4: %+v %v", p, err)
	}
	// Batch: b4 then b5 then b3 in one call.
	all[1].Status = BackedUp
	p, err = PlanDelete(all, "b5", []string{"b4", "b5", "b3", "bf"})
	if err != nil || !reflect.DeepEqual(p.Expunge, []string{"b5", "b4", "b3"}) || len(p.MarkRemoved) != 0 ||
		!reflect.DeepEqual(p.CatalogueOnly, []string{"bf"}) {
		t.Fatalf("batch: %+v %v", p, err)
	}
	if _, err := PlanDelete(all, "", []string{"nope"}); err == nil {
		t.Fatal("unknown id accepted")
	}
	busy := []Backup{bk("x", "", BackingUp)}
	if _, err := PlanDelete(busy, "", []string{"x"}); err == nil {
		t.Fatal("deleting a running backup accepted")
	}
}

// An Error backup whose deletion failed kept its files: deleting it again
// deletes them, with the removed ancestors nothing else needs; an Error
// backup without files (a failed backup) leaves the catalogue only.
func TestPlanDeleteRetriesAFailedDeletion(t *testing.T) {
	withFiles := bk("b5", "b4", Error)
	withFiles.HasFiles = true
	all := []Backup{bk("b3", "", BackedUp), bk("b4", "b3", Removed), withFiles, bk("e", "", Error)}
	p, err := PlanDelete(all, "", []string{"b5", "e"})
	if err != nil || !reflect.DeepEqual(p.Expunge, []string{"b5", "b4"}) || !reflect.DeepEqual(p.CatalogueOnly, []string{"e"}) || p.MergeHead {
		t.Fatalf("retried deletion: %+v %v", p, err)
	}
}

func TestAncestors(t *testing.T) {
	all := []Backup{bk("a", "", BackedUp), bk("b", "a", Removed), bk("c", "b", BackedUp)}
	got := Ancestors(all, "c")
	if len(got) != 3 || got[0].ID != "c" || got[2].ID != "a" {
		t.Fatalf("ancestors: %+v", got)
	}
}

func TestPlanDisksWithSnapshotsAboveTheDelta(t *testing.T) {
	dec := Decision{Type: Incremental, ParentID: "p", Position: 2}
	recorded := []Recorded{{Target: "vda", Delta: "/p/d1", Base: "/p/a"}}
	snap := func(p string) bool { return strings.HasPrefix(p, "/p/snap") }
	real := []RealDisk{{Target: "vda", Top: "/p/snap2", Backing: []string{"/p/snap1", "/p/d1", "/p/a"}}}
	p := PlanDisks(dec, map[string]bool{"vda": true}, recorded, real, snap)[0]
	if p.Full || p.Delta != "/p/d1" || p.MergeInto != "/p/a" || strings.Join(p.Layers, ",") != "/p/snap2,/p/snap1,/p/d1" {
		t.Fatalf("snapshots above the delta: %+v", p)
	}
	// Anything else above the delta is a change outside knib: full.
	real[0].Top = "/q/other"
	p = PlanDisks(dec, map[string]bool{"vda": true}, recorded, real, snap)[0]
	if !p.Full || p.MergeInto != "" {
		t.Fatalf("foreign layer above the delta: %+v", p)
	}
}

func TestPlanBackup(t *testing.T) {
	head := &Backup{ID: "h", Type: Full, Position: 1, Status: BackedUp}
	rec := []Recorded{{Target: "vda", Delta: "/d/delta-h", Base: "/d/base"}}
	same := []RealDisk{{Target: "vda", Top: "/d/delta-h", Backing: []string{"/d/base"}}}
	moved := []RealDisk{{Target: "vda", Top: "/elsewhere/disk"}}
	parent := map[string]bool{"vda": true}
	for _, tc := range []struct {
		name      string
		in        BackupInput
		typ       Type
		pos       int
		end, iso  bool
		merge     bool
		full      bool
		mergeInto string
	}{
		{"first backup of a VM", BackupInput{ChainSize: 8, Real: moved}, Full, 1, false, false, false, true, ""},
		{"incremental on the recorded delta", BackupInput{Head: head, ChainSize: 8, ParentFiles: parent, Recorded: rec, Real: same}, Incremental, 2, false, false, false, false, "/d/base"},
		{"the incremental that fills the chain merges its delta back", BackupInput{Head: head, ChainSize: 2, ParentFiles: parent, Recorded: rec, Real: same}, Incremental, 2, true, false, true, false, "/d/base"},
		{"every disk changed outside knib: a new chain", BackupInput{Head: head, ChainSize: 8, ParentFiles: parent, Recorded: rec, Real: moved}, Full, 1, false, false, false, true, ""},
		{"a new chain of size 1 ends at once", BackupInput{Head: head, ChainSize: 1, ParentFiles: parent, Recorded: rec, Real: moved}, Full, 1, true, false, true, true, ""},
		{"isolated: full, merged back, the chain untouched", BackupInput{Head: head, ChainSize: 8, Isolated: true, ParentFiles: parent, Recorded: rec, Real: same}, Full, 1, false, true, true, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := PlanBackup(tc.in)
			d := p.Decision
			if d.Type != tc.typ || d.Position != tc.pos || d.EndOfChain != tc.end || d.Isolated != tc.iso || p.MergeNewDelta != tc.merge {
				t.Fatalf("decision %+v merge %v", d, p.MergeNewDelta)
			}
			if len(p.Disks) != 1 || p.Disks[0].Full != tc.full || p.Disks[0].MergeInto != tc.mergeInto {
				t.Fatalf("disks %+v", p.Disks)
			}
			if d.Type == Full && d.ParentID != "" {
				t.Fatalf("a full backup has no parent: %+v", d)
			}
		})
	}
}
