package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/knib/knib/internal/testbed"
)

// TestCrashPointsRecoverByThemselves kills the all-in-one server (SIGKILL,
// from inside, at a named step) during a backup of a running VM, restarts it,
// and proves that recovery alone returns the VM to a consistent chain with
// the guest's data intact, no orphan delta or partial file, and that the
// next backup succeeds.
func TestCrashPointsRecoverByThemselves(t *testing.T) {
	dom := testbed.NewDomain(t, testbed.DomainOptions{Name: "knib-t-crash", DiskSizes: []int64{64 << 20, 32 << 20}, Start: true})
	s := StartServer(t, "")
	var off struct{ ID string }
	s.MustJSON(&off, "offering", "create", "--name", "crash")
	s.CLI("host", "refresh")
	s.CLI("vm", "assign", dom.Name, "--offering", off.ID)

	points := []string{"backup.after-snapshot", "backup.during-copy", "backup.before-merge", "backup.during-merge", "backup.before-commit", "backup.before-merge-task"}
	// The merge of the previous delta follows the committed backup: a crash
	// there leaves the backup BackedUp (and whole), the VM to recovery.
	afterCommit := map[string]bool{"backup.before-merge": true, "backup.during-merge": true, "backup.before-merge-task": true}
	for i, point := range points {
		t.Run(point, func(t *testing.T) {
			// A healthy chain head first, so the crashing backup is an
			// incremental that must also merge the previous delta.
			s.backup(dom.Name)
			known := s.backups(dom.Name)
			marker := "before-" + point
			guest(t, dom, "echo "+marker+" > /data/f"+strings.Repeat("x", i)+" && sync")
			if err := dom.WriteDisk(ctxT(t), 1, byte(0x10+i), int64(i)<<20, 1<<20); err != nil {
				t.Fatal(err)
			}

			s.Restart("KNIB_CRASH_AT=" + point)
			r := s.Run(nil, "backup", "create", dom.Name, "--async")
			if r.Code != 0 {
				t.Fatalf("backup create: %s", r.Stderr)
			}
			if err := s.Wait(3 * time.Minute); err != nil {
				t.Fatalf("the crash point was not reached: %v\n%s", err, s.Log())
			}
			if !strings.Contains(s.Log(), "crash point "+point) {
				t.Fatalf("server died elsewhere:\n%s", s.Log())
			}

			s.Restart() // recovery runs by itself at start
			v := waitRecovered(t, s, dom.Name)
			if v.State != "Running" || len(v.deltas()) != 0 || v.LastError != "" {
				t.Fatalf("after recovery: %+v", v)
			}
			for _, disk := range dom.Disks {
				run(t, "qemu-img", "check", "-U", "-q", disk)
			}
			if left, _ := filepath.Glob(filepath.Join(dom.Dir, "knib-delta.*")); len(left) != 0 {
				t.Fatalf("orphan deltas: %v", left)
			}
			for _, b := range s.backups(dom.Name) {
				if b.Status == "BackingUp" {
					t.Fatalf("backup still BackingUp: %+v", b)
				}
				if _, old := known[b.ID]; !old && afterCommit[point] {
					if b.Status != "BackedUp" || b.Type != "incremental" {
						t.Fatalf("the backup committed before the crash: %+v", b)
					}
					raw := flatten(t, s.storage(b.Files[1].Path))
					if !pattern(t, raw, byte(0x10+i), int64(i)<<20, 1<<20) {
						t.Fatal("the backup committed before the crash misses the data written before it")
					}
				}
				if b.Status == "Error" {
					if _, err := os.Stat(s.storage(filepath.Join("backups", dom.UUID, b.ID))); !os.IsNotExist(err) {
						t.Fatalf("partial backup %s left on storage: %v", b.ID, err)
					}
				}
			}
			if got := guest(t, dom, "cat /data/f"+strings.Repeat("x", i)); got != marker+"\n" {
				t.Fatalf("guest data after recovery: %q", got)
			}
			// The next backup succeeds and is full (the chain ended).
			b := s.backup(dom.Name)
			if b.Type != "full" {
				t.Fatalf("next backup: %+v", b)
			}
			raw := flatten(t, s.storage(b.Files[1].Path))
			if !pattern(t, raw, byte(0x10+i), int64(i)<<20, 1<<20) {
				t.Fatal("the next backup misses data written before the crash")
			}
			s.CLI("chain", "finish", dom.Name)
		})
	}
}

// waitRecovered waits until no backup of the VM is BackingUp and the VM is
// not in a work state: its last backup's merge and any recovery have ended.
func waitRecovered(t *testing.T, s *Server, vm string) VMDisks {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		v := s.vmDisks(vm)
		busy := v.State == "BackingUp" || v.State == "BackupError" || v.Busy != ""
		for _, b := range s.backups(vm) {
			busy = busy || b.Status == "BackingUp"
		}
		if !busy {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("not recovered after 3 minutes: %+v\n%s", v, s.Log())
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// TestStorageGoneLeavesVMInBackupError: when a file of the VM's chain is
// really missing, recovery cannot finish; the VM stays BackupError and `vm
// show` names the missing file; once the file is back, recovery finishes by
// itself.
func TestStorageGoneLeavesVMInBackupError(t *testing.T) {
	dom := testbed.NewDomain(t, testbed.DomainOptions{Name: "knib-t-gone"})
	s := StartServer(t, "")
	var off struct{ ID string }
	s.MustJSON(&off, "offering", "create", "--name", "gone")
	s.CLI("host", "refresh")
	s.CLI("vm", "assign", dom.Name, "--offering", off.ID)
	s.Restart("KNIB_CRASH_AT=backup.after-snapshot")
	s.Run(nil, "backup", "create", dom.Name, "--async")
	if err := s.Wait(2 * time.Minute); err != nil {
		t.Fatal(err)
	}
	hidden := dom.Disks[0] + ".away"
	if err := os.Rename(dom.Disks[0], hidden); err != nil {
		t.Fatal(err)
	}
	s.Env = []string{}
	s.ReconcileEvery = "2s"
	s.Restart()
	deadline := time.Now().Add(time.Minute)
	var v VMDisks
	for {
		v = s.vmDisks(dom.Name)
		if v.State == "BackupError" && v.LastError != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("VM not in BackupError: %+v", v)
		}
		time.Sleep(time.Second)
	}
	if !strings.Contains(v.LastError, dom.Disks[0]) {
		t.Fatalf("vm show must name the missing file %s: %q", dom.Disks[0], v.LastError)
	}
	if err := os.Rename(hidden, dom.Disks[0]); err != nil {
		t.Fatal(err)
	}
	v = waitRecovered(t, s, dom.Name)
	if v.State != "Stopped" || len(v.deltas()) != 0 || v.LastError != "" {
		t.Fatalf("after the file came back: %+v", v)
	}
	s.backup(dom.Name)
}
