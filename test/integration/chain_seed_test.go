package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/knib/knib/internal/store/sqlstore"
	"github.com/knib/knib/internal/testbed"
)

// Issue 11's gaps in the chain rules and restores that the seed's tables
// name or imply: isolated scheduled backups, the outcome of `chain finish`,
// detaching a disk that still runs on a backup delta, and a quick restore
// onto another host of a VM that lost a disk.

// schedule is the JSON of `knib schedule create/list`.
type schedule struct {
	ID         string    `json:"id"`
	Isolated   bool      `json:"isolated"`
	MaxBackups int       `json:"max_backups"`
	NextRun    time.Time `json:"next_run"`
}

// makeDue moves a schedule's next run into the past in the catalogue, as if
// its time had come: the server's clock is real and a schedule's earliest
// run is minutes away. The server's scheduler (every JobsEvery) then claims
// and runs it like any due run.
func (s *Server) makeDue(id string) {
	t := s.t
	t.Helper()
	ctx := ctxT(t)
	db, err := sqlstore.OpenExisting(ctx, filepath.Join(s.DataDir, "knib.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	sc, err := db.Schedule(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if won, err := db.AdvanceSchedule(ctx, id, sc.NextRun, time.Now().Add(-time.Minute)); err != nil || !won {
		t.Fatalf("make schedule %s due: won %v, %v", id, won, err)
	}
}

// scheduleOf returns the schedule a backup was taken by, from the
// catalogue (the API does not show it).
func (s *Server) scheduleOf(backupID string) string {
	t := s.t
	t.Helper()
	ctx := ctxT(t)
	db, err := sqlstore.OpenExisting(ctx, filepath.Join(s.DataDir, "knib.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	b, err := db.Backup(ctx, backupID)
	if err != nil {
		t.Fatal(err)
	}
	return b.ScheduleID
}

// waitNewBackup waits until exactly one backup that is not in known has
// finished (not BackingUp) and the VM is idle again (a schedule's retention
// runs inside its backup operation), and returns it.
func (s *Server) waitNewBackup(vm string, known map[string]Backup) Backup {
	t := s.t
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		var fresh []Backup
		for id, b := range s.backups(vm) {
			if _, ok := known[id]; !ok {
				fresh = append(fresh, b)
			}
		}
		var v struct {
			Busy string `json:"busy"`
		}
		s.MustJSON(&v, "vm", "show", vm)
		if len(fresh) > 1 {
			t.Fatalf("more than one new backup: %+v", fresh)
		}
		if len(fresh) == 1 && fresh[0].Status != "BackingUp" && v.Busy == "" {
			return fresh[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new backup of %s finished: %+v\n%s", vm, fresh, s.Log())
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// TestScheduledIsolatedBackups (issue 11 R4): a schedule created with
// --isolated takes isolated backups when it is due: full, without a parent,
// holding the guest's data, never the chain head; the VM's deltas and chain
// head stay what they were, the schedule's retention deletes its older
// isolated backup without touching the chain, and the next manual backup is
// still incremental on the chain.
func TestScheduledIsolatedBackups(t *testing.T) {
	dom := testbed.NewDomain(t, testbed.DomainOptions{Name: "knib-t-scsched", Start: true})
	s := StartServer(t, "")
	s.Stop()
	s.JobsEvery = "1s" // the schedule runner's round
	s.Restart()
	var off struct{ ID string }
	s.MustJSON(&off, "offering", "create", "--name", "sched", "--backup-chain-size", "5")
	s.CLI("host", "refresh")
	s.CLI("vm", "assign", dom.Name, "--offering", off.ID)

	guest(t, dom, "echo a > /data/a && sync")
	b1 := s.backup(dom.Name)
	guest(t, dom, "echo b > /data/b && sync")
	b2 := s.backup(dom.Name)
	if b2.Type != "incremental" || b2.ParentID != b1.ID {
		t.Fatalf("b2: %+v", b2)
	}
	waitRecovered(t, s, dom.Name) // b2's merge follows it
	before := s.vmDisks(dom.Name)
	if before.ChainHead != b2.ID || len(before.deltas()) != 1 {
		t.Fatalf("after b2: %+v", before)
	}

	// Half an hour away: the schedule never comes due by itself during the test.
	at := fmt.Sprint((time.Now().UTC().Minute() + 30) % 60)
	var sc schedule
	s.MustJSON(&sc, "schedule", "create", dom.Name, "--interval", "hourly", "--at", at, "--isolated", "--max-backups", "1")
	var list []schedule
	s.MustJSON(&list, "schedule", "list", dom.Name)
	if !sc.Isolated || sc.MaxBackups != 1 || len(list) != 1 || list[0].ID != sc.ID || !list[0].Isolated {
		t.Fatalf("schedule: %+v, listed %+v", sc, list)
	}

	// Two due runs, each after new data: every one is an isolated backup
	// beside the chain.
	var isos []Backup
	for _, name := range []string{"iso1", "iso2"} {
		guest(t, dom, "echo "+name+" > /data/"+name+" && sync")
		known := s.backups(dom.Name)
		s.makeDue(sc.ID)
		iso := s.waitNewBackup(dom.Name, known)
		if iso.Status != "BackedUp" || iso.Type != "full" || !iso.Isolated || iso.ParentID != "" || iso.ChainHead {
			t.Fatalf("scheduled backup %s: %+v\n%s", name, iso, s.Log())
		}
		if got := s.scheduleOf(iso.ID); got != sc.ID {
			t.Fatalf("backup %s was not taken by the schedule: %q", iso.ID, got)
		}
		raw := flatten(t, s.storage(iso.Files[0].Path))
		for _, f := range []string{"a", "b", name} {
			if got, ok := ext4Cat(t, raw, "/"+f); !ok || got != f+"\n" {
				t.Fatalf("scheduled backup %s: /%s is %q (%v)", name, f, got, ok)
			}
		}
		after := s.vmDisks(dom.Name)
		if after.ChainHead != b2.ID || strings.Join(after.deltas(), ",") != strings.Join(before.deltas(), ",") {
			t.Fatalf("the isolated backup %s changed the chain: %+v -> %+v", name, before, after)
		}
		if left, _ := filepath.Glob(filepath.Join(dom.Dir, "knib-delta.*."+iso.ID+"*")); len(left) != 0 {
			t.Fatalf("the isolated backup left its delta: %v", left)
		}
		var now []schedule
		s.MustJSON(&now, "schedule", "list", dom.Name)
		if len(now) != 1 || !now[0].NextRun.After(time.Now()) {
			t.Fatalf("the run did not move the schedule's next run: %+v", now)
		}
		isos = append(isos, iso)
	}

	// Retention (--max-backups 1) deleted the first isolated backup, its
	// directory too, and nothing of the chain.
	all := s.backups(dom.Name)
	if _, ok := all[isos[0].ID]; ok {
		t.Fatalf("retention kept %s: %+v", isos[0].ID, all[isos[0].ID])
	}
	if _, err := os.Stat(s.storage(filepath.Join("backups", dom.UUID, isos[0].ID))); !os.IsNotExist(err) {
		t.Fatalf("the directory of the retired backup: %v", err)
	}
	for _, b := range []Backup{b1, b2, isos[1]} {
		if all[b.ID].Status != "BackedUp" {
			t.Fatalf("after retention %s is %+v", b.ID, all[b.ID])
		}
	}

	// The next manual backup continues the chain from b2 and has the data.
	b3 := s.backup(dom.Name)
	if b3.Type != "incremental" || b3.ParentID != b2.ID || !b3.ChainHead {
		t.Fatalf("b3 must continue the chain from b2: %+v", b3)
	}
	if got, ok := ext4Cat(t, flatten(t, s.storage(b3.Files[0].Path)), "/iso2"); !ok || got != "iso2\n" {
		t.Fatalf("b3 /iso2: %q %v", got, ok)
	}
	s.checkRestorable(map[string]Backup{isos[1].ID: isos[1]})
}

// TestDetachWithDeltaAndChainFinish (issue 11 R7 and R6). Detaching a disk
// that still runs on a backup delta merges the delta first: the detached
// file holds the disk's latest data and has no backing file, no delta of it
// is left, and the other disk keeps its chain (the next backup is
// incremental for it). Then `chain finish` merges every knib delta (none in
// the disks' chains or directory), clears the chain head and marks it the
// end of its chain; the next backup is full, and the guest's data is intact.
func TestDetachWithDeltaAndChainFinish(t *testing.T) {
	dom := testbed.NewDomain(t, testbed.DomainOptions{Name: "knib-t-scfin", DiskSizes: []int64{64 << 20, 16 << 20}, Start: true})
	s := StartServer(t, "")
	var off struct{ ID string }
	s.MustJSON(&off, "offering", "create", "--name", "fin", "--backup-chain-size", "5")
	s.CLI("host", "refresh")
	s.CLI("vm", "assign", dom.Name, "--offering", off.ID)

	guest(t, dom, "echo a > /data/a && sync")
	if err := dom.WriteDisk(ctxT(t), 1, 0x41, 0, 1<<20); err != nil {
		t.Fatal(err)
	}
	b1 := s.backup(dom.Name)
	guest(t, dom, "echo b > /data/b && sync")
	if err := dom.WriteDisk(ctxT(t), 1, 0x42, 1<<20, 1<<20); err != nil {
		t.Fatal(err)
	}
	b2 := s.backup(dom.Name)
	if b2.Type != "incremental" || b2.ParentID != b1.ID {
		t.Fatalf("b2: %+v", b2)
	}
	// Written after b2: only in vdb's live delta.
	if err := dom.WriteDisk(ctxT(t), 1, 0x43, 2<<20, 1<<20); err != nil {
		t.Fatal(err)
	}
	v := s.vmDisks(dom.Name)
	if len(v.Disks) != 2 || !strings.HasPrefix(filepath.Base(v.Disks[1].Source), "knib-delta.") || len(v.Disks[1].Backing) != 1 ||
		v.Disks[1].Backing[0].Path != dom.Disks[1] {
		t.Fatalf("vdb should run on b2's delta over its own file: %+v", v.Disks)
	}
	vdaDelta := v.Disks[0].Source
	if !strings.HasPrefix(filepath.Base(vdaDelta), "knib-delta.") {
		t.Fatalf("vda should run on b2's delta: %+v", v.Disks[0])
	}

	// Detach vdb while the VM runs.
	s.CLI("vm", "detach-disk", dom.Name, "vdb")
	v = s.vmDisks(dom.Name)
	if len(v.Disks) != 1 || v.Disks[0].Target != "vda" || v.Disks[0].Source != vdaDelta || v.ChainHead != b2.ID || v.State != "Running" {
		t.Fatalf("after detaching vdb: %+v", v)
	}
	if left, _ := filepath.Glob(filepath.Join(dom.Dir, "knib-delta.*.vdb.*")); len(left) != 0 {
		t.Fatalf("vdb's delta is left over: %v", left)
	}
	var info struct {
		BackingFilename string `json:"backing-filename"`
	}
	if err := json.Unmarshal([]byte(run(t, "qemu-img", "info", "-U", "--output", "json", dom.Disks[1])), &info); err != nil {
		t.Fatal(err)
	}
	if info.BackingFilename != "" {
		t.Fatalf("the detached file still has a backing file: %s", info.BackingFilename)
	}
	run(t, "qemu-img", "check", "-q", dom.Disks[1])
	raw := flatten(t, dom.Disks[1])
	if !pattern(t, raw, 0x41, 0, 1<<20) || !pattern(t, raw, 0x42, 1<<20, 1<<20) || !pattern(t, raw, 0x43, 2<<20, 1<<20) {
		t.Fatal("the detached file does not hold vdb's latest data")
	}
	// vda keeps its chain: the next backup is incremental on b2.
	b3 := s.backup(dom.Name)
	if full := s.fullDisks(b3.ID); b3.Type != "incremental" || b3.ParentID != b2.ID || len(full) != 1 || full["vda"] {
		t.Fatalf("b3 after the detach: %+v, full %v", b3, full)
	}

	// chain finish.
	guest(t, dom, "echo c > /data/c && sync")
	var fin struct{ VM, Chain string }
	s.MustJSON(&fin, "chain", "finish", dom.Name)
	if fin.VM != dom.Name || fin.Chain != "ended" {
		t.Fatalf("chain finish: %+v", fin)
	}
	v = s.vmDisks(dom.Name)
	if len(v.deltas()) != 0 || v.ChainHead != "" || v.State != "Running" || v.LastError != "" {
		t.Fatalf("after chain finish: %+v", v)
	}
	if v.Disks[0].Source != dom.Disks[0] || len(v.Disks[0].Backing) != 0 {
		t.Fatalf("vda should be its own file again: %+v", v.Disks[0])
	}
	if left, _ := filepath.Glob(filepath.Join(dom.Dir, "knib-delta.*")); len(left) != 0 {
		t.Fatalf("delta files left after chain finish: %v", left)
	}
	all := s.backups(dom.Name)
	if h := all[b3.ID]; h.ChainHead || !h.EndOfChain || h.Status != "BackedUp" {
		t.Fatalf("the old head after chain finish: %+v", h)
	}
	if got := guest(t, dom, "cat /data/a /data/b /data/c"); got != "a\nb\nc\n" {
		t.Fatalf("guest data after chain finish: %q", got)
	}
	run(t, "qemu-img", "check", "-U", "-q", dom.Disks[0])
	b4 := s.backup(dom.Name)
	if b4.Type != "full" || b4.ParentID != "" || !b4.ChainHead {
		t.Fatalf("the backup after chain finish must be full: %+v", b4)
	}
	if got, ok := ext4Cat(t, flatten(t, s.storage(b4.Files[0].Path)), "/c"); !ok || got != "c\n" {
		t.Fatalf("b4 /c: %q %v", got, ok)
	}
}

// TestQuickRestoreOntoHostBRecreatesDetachedDisk is the seed's restoreBackup
// row 4: a disk is detached from the VM after its backup, then a quick
// restore with --host hostb re-creates the detached disk from the backup,
// attaches it, starts the VM on host B and consolidates; every disk holds
// the backup's data, and the detached file on host A is left alone.
func TestQuickRestoreOntoHostBRecreatesDetachedDisk(t *testing.T) {
	s, hostB := crossHost(t)
	dom := testbed.NewDomain(t, testbed.DomainOptions{Name: "knib-t-scxdet", DiskSizes: []int64{64 << 20, 16 << 20}, Start: true})
	lB := testbed.ConnectHost(t, hostB)
	t.Cleanup(func() { testbed.RemoveDomain(lB, dom.Name) })
	var off struct{ ID string }
	s.MustJSON(&off, "offering", "create", "--name", "xdet", "--allow-quick-restore")
	s.CLI("host", "refresh")
	s.CLI("vm", "assign", dom.Name, "--offering", off.ID)

	guest(t, dom, "echo v1 > /data/v && sync")
	if err := dom.WriteDisk(ctxT(t), 1, 0x44, 1<<20, 1<<20); err != nil {
		t.Fatal(err)
	}
	b := s.backup(dom.Name)
	// After the backup: new data on both disks, then vdb goes.
	guest(t, dom, "echo v2 > /data/v && sync")
	if err := dom.WriteDisk(ctxT(t), 1, 0x45, 1<<20, 1<<20); err != nil {
		t.Fatal(err)
	}
	s.CLI("vm", "detach-disk", dom.Name, "vdb")
	if v := s.vmDisks(dom.Name); len(v.Disks) != 1 {
		t.Fatalf("detach: %+v", v)
	}
	if err := dom.Destroy(ctxT(t)); err != nil {
		t.Fatal(err)
	}

	var res struct {
		Host         string `json:"host"`
		Started      bool   `json:"started"`
		Consolidated bool   `json:"consolidated"`
		Disks        []struct{ Target, Path, Verified string }
	}
	s.MustJSON(&res, "backup", "restore", b.ID, "--quick-restore", "--host", "hostb")
	if res.Host != "hostb" || !res.Started || !res.Consolidated || len(res.Disks) != 2 {
		t.Fatalf("quick restore onto hostb: %+v\n%s", res, s.Log())
	}
	var vm struct {
		Host  string `json:"host"`
		State string `json:"state"`
	}
	s.MustJSON(&vm, "vm", "show", dom.Name)
	if vm.Host != "hostb" || vm.State != "Running" {
		t.Fatalf("after the restore onto hostb the VM is %+v", vm)
	}
	// Both disks, vdb re-created, are B's own files without a backing chain.
	v := s.vmDisks(dom.Name)
	targets := map[string]bool{}
	for _, d := range v.Disks {
		targets[d.Target] = true
		if !strings.HasPrefix(d.Source, filepath.Join(s.DataDir, "hosts", "hostb", "disks")+"/") || len(d.Backing) != 0 {
			t.Fatalf("disk %s on host B: %s, backing %+v", d.Target, d.Source, d.Backing)
		}
	}
	if len(v.Disks) != 2 || !targets["vda"] || !targets["vdb"] {
		t.Fatalf("the VM on host B should have vda and vdb: %+v", v.Disks)
	}
	d, err := lB.DomainLookupByName(dom.Name)
	if err != nil {
		t.Fatalf("the VM is not defined on host B: %v", err)
	}
	if _, err := dom.L.DomainLookupByName(dom.Name); err == nil {
		t.Fatalf("the VM is still defined on host A")
	}
	onB := &testbed.Domain{Name: dom.Name, UUID: dom.UUID, L: lB, Dom: d}
	if err := onB.WaitAgent(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if got := guest(t, onB, "cat /data/v"); got != "v1\n" {
		t.Fatalf("vda on host B: %q, want the backup's v1", got)
	}
	got := guest(t, onB, "dd if=/dev/vdb bs=1M skip=1 count=1 2>/dev/null | md5sum")
	want := guest(t, onB, "dd if=/dev/zero bs=1M count=1 2>/dev/null | tr '\\000' 'D' | md5sum")
	if got != want {
		t.Fatalf("the re-created vdb on host B: %s, want the backup's 0x44 pattern %s", got, want)
	}
	// The detached file on host A is left alone, with what it held.
	if !pattern(t, flatten(t, dom.Disks[1]), 0x45, 1<<20, 1<<20) {
		t.Fatal("the detached vdb file on host A changed")
	}
	s.checkRestorable(map[string]Backup{b.ID: b})
}
