package integration

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/knib/knib/internal/testbed"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// guest runs a shell command in the guest and returns its output.
func guest(t *testing.T, d *testbed.Domain, script string) string {
	t.Helper()
	out, code, err := d.Exec(ctxT(t), "/bin/sh", "-c", script)
	if err != nil || code != 0 {
		t.Fatalf("guest %q: exit %d, %v: %s", script, code, err, out)
	}
	return out
}

// TestBackupChainAcceptance is the seed's "Basic tests with backup" with
// backup.chain.size=3, on a two-disk VM, checking data in the backup files.
func TestBackupChainAcceptance(t *testing.T) {
	dom := testbed.NewDomain(t, testbed.DomainOptions{Name: "knib-t-basic", DiskSizes: []int64{64 << 20, 32 << 20}})
	s := StartServer(t, "")
	s.CLI("settings", "set", "backup.chain.size", "3")
	var off struct{ ID string }
	s.MustJSON(&off, "offering", "create", "--name", "basic")
	s.CLI("host", "refresh")
	s.CLI("vm", "assign", dom.Name, "--offering", off.ID)

	// 1. VM stopped: b1 is full.
	b1 := s.backup(dom.Name)
	if b1.Type != "full" || !b1.ChainHead || len(b1.Files) != 2 || b1.Files[0].Hash == "" {
		t.Fatalf("b1: %+v", b1)
	}
	for _, name := range []string{"domain.xml", "manifest.json", "vda.qcow2", "vdb.qcow2", "boot/vmlinuz"} {
		if _, err := os.Stat(s.storage(filepath.Join("backups", dom.UUID, b1.ID, name))); err != nil {
			t.Fatalf("b1 %s: %v", name, err)
		}
	}
	v := s.vmDisks(dom.Name)
	if v.State != "Stopped" || len(v.deltas()) != 2 || v.ChainHead != b1.ID {
		t.Fatalf("after b1: one delta per disk expected: %+v", v)
	}

	// 2. Start, write data, b2 is incremental.
	if err := dom.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	guest(t, dom, "echo data-b2 > /data/f1 && sync")
	if err := dom.WriteDisk(ctxT(t), 1, 0x5a, 1<<20, 1<<20); err != nil {
		t.Fatal(err)
	}
	b2 := s.backup(dom.Name)
	if b2.Type != "incremental" || b2.ParentID != b1.ID || !b2.ChainHead {
		t.Fatalf("b2: %+v", b2)
	}
	if b2.Size > 8<<20 || b2.VirtualSize != 96<<20 {
		t.Fatalf("incremental b2 holds %d bytes of %d: it should hold about the 1 MiB written", b2.Size, b2.VirtualSize)
	}
	v = s.vmDisks(dom.Name)
	if v.State != "Running" || len(v.deltas()) != 2 {
		t.Fatalf("after b2: exactly one delta per disk: %+v", v)
	}
	// 3./4. What each backup holds: b1 no data, b2 the data.
	files := func(b Backup) map[string]string {
		m := map[string]string{}
		for _, f := range b.Files {
			m[f.Disk] = s.storage(f.Path)
		}
		return m
	}
	b1vda, b1vdb := flatten(t, files(b1)["vda"]), flatten(t, files(b1)["vdb"])
	b2vda, b2vdb := flatten(t, files(b2)["vda"]), flatten(t, files(b2)["vdb"])
	if _, ok := ext4Cat(t, b1vda, "/f1"); ok {
		t.Fatal("b1 must not hold /f1")
	}
	if got, ok := ext4Cat(t, b2vda, "/f1"); !ok || got != "data-b2\n" {
		t.Fatalf("b2 /f1: %q %v", got, ok)
	}
	if !pattern(t, b1vdb, 0, 1<<20, 1<<20) || !pattern(t, b2vdb, 0x5a, 1<<20, 1<<20) {
		t.Fatal("vdb pattern: b1 must be zero and b2 0x5a at 1 MiB")
	}
	// 3. Stop, restore b1, start: no data. 4. Stop, restore b2, start: the data.
	if err := dom.Destroy(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	s.CLI("backup", "restore", b1.ID)
	if v := s.vmDisks(dom.Name); len(v.deltas()) != 0 || v.ChainHead != "" || v.State != "Stopped" {
		t.Fatalf("restore must end the chain: %+v", v)
	}
	if err := dom.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if out, code, _ := dom.Exec(ctxT(t), "/bin/cat", "/data/f1"); code == 0 {
		t.Fatalf("after restoring b1, /data/f1 exists: %q", out)
	}
	if err := dom.Destroy(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	s.CLI("backup", "restore", b2.ID)
	if err := dom.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if got := guest(t, dom, "cat /data/f1"); got != "data-b2\n" {
		t.Fatalf("after restoring b2: %q", got)
	}
	if !pattern(t, flatten(t, dom.Disks[1]), 0x5a, 1<<20, 1<<20) {
		t.Fatal("after restoring b2, vdb misses the pattern")
	}

	// 5. b3 full, b4 and b5 incremental, b6 full.
	b3, b4, b5, b6 := s.backup(dom.Name), s.backup(dom.Name), s.backup(dom.Name), s.backup(dom.Name)
	if b3.Type != "full" || b4.Type != "incremental" || b4.ParentID != b3.ID || b5.Type != "incremental" || b5.ParentID != b4.ID ||
		!b5.EndOfChain || b6.Type != "full" || b6.ParentID != "" {
		t.Fatalf("chain of 3: b3 %s b4 %s/%s b5 %s/%s end %v b6 %s", b3.Type, b4.Type, b4.ParentID, b5.Type, b5.ParentID, b5.EndOfChain, b6.Type)
	}
	all := s.backups(dom.Name)
	s.checkRestorable(all)

	// 6. Deleting the chain head b6 merges its delta on primary.
	if len(s.vmDisks(dom.Name).deltas()) != 2 {
		t.Fatal("b6 should have left one delta per disk")
	}
	s.CLI("backup", "delete", b6.ID)
	if v := s.vmDisks(dom.Name); len(v.deltas()) != 0 || v.ChainHead != "" {
		t.Fatalf("delete head: deltas left: %+v", v)
	}
	if _, err := os.Stat(s.storage(filepath.Join("backups", dom.UUID, b6.ID))); !os.IsNotExist(err) {
		t.Fatalf("b6 directory still there: %v", err)
	}
	all = s.backups(dom.Name)
	s.checkRestorable(all)

	// 7. b4 is needed by b5: only marked removed, files kept; then b5 goes and takes b4 along.
	// The seed's text marks both b4 and b5 Removed and keeps their files;
	// knib does not follow it on purpose: b5 has no live dependant, so it is
	// expunged with its files, and the Removed b4 it held goes with it
	// (kboss-behaviour.md §4 steps 5 and 7; README "Deleting backups").
	s.CLI("backup", "delete", b4.ID)
	all = s.backups(dom.Name)
	if all[b4.ID].Status != "Removed" {
		t.Fatalf("b4: %+v", all[b4.ID])
	}
	if _, err := os.Stat(s.storage(b4.Files[0].Path)); err != nil {
		t.Fatalf("b4's files must stay while b5 needs them: %v", err)
	}
	s.checkRestorable(all)
	s.CLI("backup", "delete", b5.ID)
	all = s.backups(dom.Name)
	if _, ok := all[b4.ID]; ok {
		t.Fatal("b4 must go with its last dependant")
	}
	if _, ok := all[b5.ID]; ok {
		t.Fatal("b5 still listed")
	}
	for _, b := range []Backup{b4, b5} {
		if _, err := os.Stat(s.storage(filepath.Join("backups", dom.UUID, b.ID))); !os.IsNotExist(err) {
			t.Fatalf("the directory of %s is still on storage: %v", b.ID, err)
		}
	}
	s.checkRestorable(all)

	// 8. Batch-delete the rest: nothing left on storage.
	s.CLI("backup", "delete", b1.ID, b2.ID, b3.ID)
	if len(s.backups(dom.Name)) != 0 {
		t.Fatal("backups left after batch delete")
	}
	entries, _ := os.ReadDir(s.storage(filepath.Join("backups", dom.UUID)))
	if len(entries) != 0 {
		t.Fatalf("files left on storage: %v", entries)
	}

	// 9. New backup; 10. unassign merges the deltas; 11. delete the last backup.
	b7 := s.backup(dom.Name)
	if b7.Type != "full" {
		t.Fatalf("b7: %+v", b7)
	}
	s.CLI("vm", "unassign", dom.Name)
	if v := s.vmDisks(dom.Name); len(v.deltas()) != 0 {
		t.Fatalf("unassign left deltas: %+v", v)
	}
	s.CLI("backup", "delete", b7.ID)
	if len(s.backups(dom.Name)) != 0 {
		t.Fatal("b7 still listed")
	}
	// The guest's data is intact after all the merges.
	if got := guest(t, dom, "cat /data/f1"); got != "data-b2\n" {
		t.Fatalf("guest data after merges: %q", got)
	}
	run(t, "qemu-img", "check", "-U", "-q", dom.Disks[0])
}

// TestIsolatedBackupLeavesChainUntouched: an isolated backup in the middle of
// a chain is full and the next backup continues the chain.
func TestIsolatedBackupLeavesChainUntouched(t *testing.T) {
	dom := testbed.NewDomain(t, testbed.DomainOptions{Name: "knib-t-isol", Start: true})
	s := StartServer(t, "")
	var off struct{ ID string }
	s.MustJSON(&off, "offering", "create", "--name", "iso", "--backup-chain-size", "5")
	s.CLI("host", "refresh")
	s.CLI("vm", "assign", dom.Name, "--offering", off.ID)
	b1 := s.backup(dom.Name)
	guest(t, dom, "echo one > /data/one && sync")
	b2 := s.backup(dom.Name)
	deltasBefore := s.vmDisks(dom.Name).deltas()
	guest(t, dom, "echo iso > /data/iso && sync")
	iso := s.backup(dom.Name, "--isolated")
	if iso.Type != "full" || !iso.Isolated || iso.ParentID != "" || iso.ChainHead {
		t.Fatalf("isolated: %+v", iso)
	}
	if after := s.vmDisks(dom.Name).deltas(); strings.Join(after, ",") != strings.Join(deltasBefore, ",") {
		t.Fatalf("isolated backup changed the chain: %v -> %v", deltasBefore, after)
	}
	b3 := s.backup(dom.Name)
	if b3.Type != "incremental" || b3.ParentID != b2.ID {
		t.Fatalf("b3 must continue the chain from b2: %+v", b3)
	}
	// b3 holds what was written before the isolated backup too.
	raw := flatten(t, s.storage(b3.Files[0].Path))
	for _, f := range []string{"/one", "/iso"} {
		if _, ok := ext4Cat(t, raw, f); !ok {
			t.Fatalf("b3 misses %s", f)
		}
	}
	rawIso := flatten(t, s.storage(iso.Files[0].Path))
	if got, ok := ext4Cat(t, rawIso, "/iso"); !ok || got != "iso\n" {
		t.Fatalf("isolated backup content: %q", got)
	}
	_ = b1
}

// TestBackupWhileGuestWrites takes backups of a running VM whose guest
// writes and syncs continuously: the backed-up file system passes fsck and
// holds every write acknowledged before the backup started. It also proves
// --quiesce works with the guest agent and fails cleanly without it.
func TestBackupWhileGuestWrites(t *testing.T) {
	dom := testbed.NewDomain(t, testbed.DomainOptions{Name: "knib-t-writes", DiskSizes: []int64{128 << 20}, Journal: true, Start: true})
	s := StartServer(t, "")
	var off struct{ ID string }
	s.MustJSON(&off, "offering", "create", "--name", "writes")
	s.CLI("host", "refresh")
	s.CLI("vm", "assign", dom.Name, "--offering", off.ID)
	guest(t, dom, "(i=0; while true; do echo $i >> /data/log; sync; i=$((i+1)); done) </dev/null >/dev/null 2>&1 &")

	check := func(b Backup, acked int) {
		raw := flatten(t, s.storage(b.Files[0].Path))
		run(t, "e2fsck", "-f", "-n", raw)
		content, ok := ext4Cat(t, raw, "/log")
		if !ok {
			t.Fatal("backup misses /log")
		}
		lines := strings.Split(content, "\n")
		complete := 0
		for i, l := range lines[:len(lines)-1] {
			if l != strconv.Itoa(i) {
				t.Fatalf("line %d of the backed-up log is %q", i, l)
			}
			complete++
		}
		if complete < acked {
			t.Fatalf("backup holds %d lines, %d were acknowledged before it started", complete, acked)
		}
	}
	lines := func() int {
		n, err := strconv.Atoi(strings.TrimSpace(guest(t, dom, "wc -l < /data/log")))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	for i := 0; i < 2; i++ { // a full, then an incremental
		acked := lines()
		if acked == 0 {
			t.Fatal("the guest writer is not running")
		}
		b := s.backup(dom.Name)
		check(b, acked)
	}
	acked := lines()
	b := s.backup(dom.Name, "--quiesce")
	check(b, acked)

	// Without a guest agent, --quiesce fails cleanly: nothing changes.
	before := s.vmDisks(dom.Name)
	dom.Exec(ctxT(t), "/bin/sh", "-c", "(sleep 1; killall qemu-ga) </dev/null >/dev/null 2>&1 &")
	time.Sleep(3 * time.Second)
	r := s.Run(nil, "backup", "create", dom.Name, "--quiesce")
	if r.Code != 1 || !strings.Contains(r.Stderr, "nothing was changed") {
		t.Fatalf("quiesce without agent: exit %d: %s", r.Code, r.Stderr)
	}
	after := s.vmDisks(dom.Name)
	if after.State != "Running" || strings.Join(after.deltas(), ",") != strings.Join(before.deltas(), ",") || after.ChainHead != before.ChainHead {
		t.Fatalf("a failed quiesce changed the VM: %+v -> %+v", before, after)
	}
	failed := 0
	for _, bk := range s.backups(dom.Name) {
		if bk.Status == "Failed" {
			failed++
		}
	}
	if failed != 1 {
		t.Fatalf("want one Failed backup, got %d", failed)
	}
}
