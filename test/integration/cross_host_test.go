package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/knib/knib/internal/testbed"
)

// crossHost is a server with two in-process agents: "localhost" on the
// system libvirt daemon and "hostb" on the second, independent daemon
// (testbed.SecondHost), in one zone, sharing the server's backup storage.
func crossHost(t *testing.T) (*Server, testbed.Host) {
	t.Helper()
	hostB := testbed.SecondHost(t)
	s := StartServer(t, "")
	s.Stop()
	s.JobsEvery = "1s"
	s.Args = []string{"--extra-host", "hostb=" + hostB.URI}
	s.Restart()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var hosts []struct{ Name, Zone string }
		s.MustJSON(&hosts, "host", "list")
		names := map[string]string{}
		for _, h := range hosts {
			names[h.Name] = h.Zone
		}
		if names["hostb"] != "" && names["hostb"] == names["localhost"] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("host B did not register in the local host's zone: %+v\n%s", hosts, s.Log())
		}
		time.Sleep(200 * time.Millisecond)
	}
	return s, hostB
}

// TestCrossHost is issue 6's acceptance scenario without the remote
// transport: a VM on host A (system daemon) is backed up (full, then
// incremental with data written between); the validation runs on host B
// (the second daemon) and the backup is Valid; a quick restore with
// --host hostb starts the VM on B with the backed-up data, its old
// definition on A is gone, and it can be backed up again on B.
func TestCrossHost(t *testing.T) {
	s, hostB := crossHost(t)
	dom := testbed.NewDomain(t, testbed.DomainOptions{Name: "knib-t-cross", Start: true})
	lB := testbed.ConnectHost(t, hostB)
	t.Cleanup(func() { testbed.RemoveDomain(lB, dom.Name) })

	s.CLI("settings", "set", "backup.validation.boot.default.timeout", "120")
	s.CLI("settings", "set", "backup.validation.screenshot.default.wait", "2")
	s.CLI("settings", "set", "backup.validation.max.job.retries", "0")
	s.CLI("host", "refresh")
	var off struct{ ID string }
	s.MustJSON(&off, "offering", "create", "--name", "cross", "--validate", "--validation-steps", "wait_for_boot,screenshot",
		"--allow-quick-restore")
	s.CLI("vm", "assign", dom.Name, "--offering", off.ID)

	guest(t, dom, "echo v1 > /data/v && sync")
	full := s.backup(dom.Name)
	guest(t, dom, "echo v2 > /data/v && dd if=/dev/urandom of=/data/blob bs=64k count=16 2>/dev/null && sync")
	wantBlob := guest(t, dom, "md5sum < /data/blob")
	inc := s.backup(dom.Name)
	if full.Type != "full" || inc.Type != "incremental" || inc.ParentID != full.ID {
		t.Fatalf("backups: full %+v, incremental %+v", full, inc)
	}

	// Validation: on host B (the VM's own host A carries the VM), Valid.
	for _, b := range []Backup{full, inc} {
		if v := s.waitValidation(b.ID); v.ValidationStatus != "Valid" || !v.HasScreenshot {
			t.Fatalf("validation of %s: %+v\n%s", b.ID, v, s.Log())
		}
	}
	for _, b := range []Backup{full, inc} {
		validatedOnHostB(t, s, b.ID, "hostb", hostB.QEMULogDir)
	}

	// Quick restore onto B.
	guest(t, dom, "echo v3 > /data/v && sync")
	if err := dom.Destroy(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	oldDisk := dom.Disks[0]
	var res map[string]any
	s.MustJSON(&res, "backup", "restore", inc.ID, "--quick-restore", "--host", "hostb")
	if res["host"] != "hostb" || res["started"] != true || res["consolidated"] != true {
		t.Fatalf("quick restore onto hostb: %v\n%s", res, s.Log())
	}
	var vm struct {
		Host  string `json:"host"`
		State string `json:"state"`
	}
	s.MustJSON(&vm, "vm", "show", dom.Name)
	if vm.Host != "hostb" || vm.State != "Running" {
		t.Fatalf("after the restore onto hostb the VM is %+v", vm)
	}
	// Defined and running on B; gone from A (its old disk file stays).
	d, err := lB.DomainLookupByName(dom.Name)
	if err != nil {
		t.Fatalf("the VM is not defined on host B: %v", err)
	}
	if st, _, err := lB.DomainGetState(d, 0); err != nil || st != 1 { // VIR_DOMAIN_RUNNING
		t.Fatalf("the VM on host B: state %d, %v", st, err)
	}
	if _, err := dom.L.DomainLookupByName(dom.Name); err == nil {
		t.Fatalf("the VM is still defined on host A")
	}
	if _, err := os.Stat(oldDisk); err != nil {
		t.Errorf("the old disk file on host A: %v (it is left to the operator)", err)
	}
	// Its disks are B's own files now, consolidated off backup storage.
	v := s.vmDisks(dom.Name)
	for _, disk := range v.Disks {
		if !strings.HasPrefix(disk.Source, filepath.Join(s.DataDir, "hosts", "hostb", "disks")+"/") || len(disk.Backing) != 0 {
			t.Fatalf("disk %s on host B: %s, backing %+v", disk.Target, disk.Source, disk.Backing)
		}
	}
	onB := &testbed.Domain{Name: dom.Name, UUID: dom.UUID, L: lB, Dom: d}
	checkRestoredOnB(t, onB, wantBlob)
	// The backups stay intact, and the VM is backed up on its new host.
	s.checkRestorable(s.backups(dom.Name))
	guest(t, onB, "echo v4 > /data/v && sync")
	b := s.backup(dom.Name)
	if b.Type != "full" {
		t.Fatalf("first backup on host B: %+v (the restore ended the chain)", b)
	}
	// Its validation avoids the VM's host, now B: it runs on A.
	if v := s.waitValidation(b.ID); v.ValidationStatus != "Valid" {
		t.Fatalf("validation of the backup taken on host B: %+v", v)
	}
	validatedOn(t, s, b.ID, "localhost")

	// A full (not quick) restore with --host moves it back to A: defined
	// there with full copies in A's disk directory, not started; gone from B.
	t.Cleanup(func() { os.RemoveAll(filepath.Join("/var/lib/libvirt/images/knib", dom.UUID)) })
	if err := onB.Destroy(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	s.MustJSON(&res, "backup", "restore", inc.ID, "--host", "localhost")
	if res["host"] != "localhost" || res["started"] == true {
		t.Fatalf("restore onto localhost: %v", res)
	}
	s.MustJSON(&vm, "vm", "show", dom.Name)
	if vm.Host != "localhost" || vm.State != "Stopped" {
		t.Fatalf("after the restore back onto localhost the VM is %+v", vm)
	}
	if _, err := lB.DomainLookupByName(dom.Name); err == nil {
		t.Fatalf("the VM is still defined on host B")
	}
	back := attach(t, dom, dom.Name, dom.UUID)
	for _, disk := range s.vmDisks(dom.Name).Disks {
		if !strings.HasPrefix(disk.Source, filepath.Join("/var/lib/libvirt/images/knib", dom.UUID)+"/") {
			t.Fatalf("disk %s on host A: %s", disk.Target, disk.Source)
		}
	}
	if err := back.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if got := guest(t, back, "cat /data/v; md5sum < /data/blob"); got != "v2\n"+wantBlob {
		t.Fatalf("data after the restore back onto A: %q", got)
	}

	// create-vm --host: a new VM from the backup on host B.
	t.Cleanup(func() { testbed.RemoveDomain(lB, "knib-t-cross2") })
	s.MustJSON(&res, "backup", "create-vm", inc.ID, "--name", "knib-t-cross2", "--host", "hostb", "--start")
	d2, err := lB.DomainLookupByName("knib-t-cross2")
	if err != nil {
		t.Fatalf("create-vm --host hostb: not on host B: %v (%v)", err, res)
	}
	if _, err := dom.L.DomainLookupByName("knib-t-cross2"); err == nil {
		t.Fatalf("create-vm --host hostb defined the VM on host A")
	}
	second := &testbed.Domain{Name: "knib-t-cross2", L: lB, Dom: d2}
	if err := second.WaitAgent(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if got := guest(t, second, "cat /data/v"); got != "v2\n" {
		t.Fatalf("data of the VM created on host B: %q", got)
	}
	// Bad input changes nothing: unknown host, users may not choose hosts.
	if msg := s.Fail(nil, 1, "backup", "restore", inc.ID, "--host", "nosuchhost"); !strings.Contains(msg, "nosuchhost") {
		t.Fatalf("unknown host: %s", msg)
	}
}

// TestCrossHostMoveRecoversAfterCrash kills the server after the VM runs on
// host B but before the catalogue and host A were updated: the next start
// rolls the move forward (VM on hostb, old definition on A gone,
// consolidated).
func TestCrossHostMoveRecoversAfterCrash(t *testing.T) {
	s, hostB := crossHost(t)
	dom := testbed.NewDomain(t, testbed.DomainOptions{Name: "knib-t-xcrash", Start: true})
	lB := testbed.ConnectHost(t, hostB)
	t.Cleanup(func() { testbed.RemoveDomain(lB, dom.Name) })
	var off struct{ ID string }
	s.MustJSON(&off, "offering", "create", "--name", "xc", "--allow-quick-restore")
	s.CLI("host", "refresh")
	s.CLI("vm", "assign", dom.Name, "--offering", off.ID)
	guest(t, dom, "echo x1 > /data/x && sync")
	b := s.backup(dom.Name)
	if err := dom.Destroy(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	s.ReconcileEvery = "2s"
	s.Restart("KNIB_CRASH_AT=move.after-target")
	if r := s.Run(nil, "backup", "restore", b.ID, "--quick-restore", "--host", "hostb", "--async"); r.Code != 0 {
		t.Fatalf("quick restore onto host B: %s", r.Stderr)
	}
	if err := s.Wait(2 * time.Minute); err != nil {
		t.Fatal(err)
	}
	// The crash left the VM running on B and still defined on A.
	if _, err := dom.L.DomainLookupByName(dom.Name); err != nil {
		t.Fatalf("before recovery the VM should still be defined on A: %v", err)
	}
	s.Restart()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var vm struct {
			Host      string `json:"host"`
			State     string `json:"state"`
			LastError string `json:"last_error"`
		}
		s.MustJSON(&vm, "vm", "show", dom.Name)
		v := s.vmDisks(dom.Name)
		_, errA := dom.L.DomainLookupByName(dom.Name)
		if vm.Host == "hostb" && vm.State == "Running" && vm.LastError == "" && errA != nil && len(v.Disks) > 0 && len(v.Disks[0].Backing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("move not recovered: %+v, defined on A: %v\n%s", vm, errA == nil, s.Log())
		}
		time.Sleep(time.Second)
	}
	if !strings.Contains(s.Log(), "finishing an interrupted restore onto another host") {
		t.Fatalf("recovery did not finish the move:\n%s", s.Log())
	}
	d, err := lB.DomainLookupByName(dom.Name)
	if err != nil {
		t.Fatal(err)
	}
	onB := &testbed.Domain{Name: dom.Name, UUID: dom.UUID, L: lB, Dom: d}
	if err := onB.WaitAgent(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if got := guest(t, onB, "cat /data/x"); got != "x1\n" {
		t.Fatalf("data on host B: %q", got)
	}
}

// validatedOn checks that the successful validation job of a backup ran on
// the named host.
// checkRestoredOnB waits for the guest agent of the VM restored on host B
// and checks the incremental backup's data: /data/v is "v2" and the blob
// has its md5.
func checkRestoredOnB(t *testing.T, onB *testbed.Domain, wantBlob string) {
	t.Helper()
	if err := onB.WaitAgent(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if got := guest(t, onB, "cat /data/v"); got != "v2\n" {
		t.Fatalf("restored data on host B: %q, want v2", got)
	}
	if got := guest(t, onB, "md5sum < /data/blob"); got != wantBlob {
		t.Fatalf("restored blob on host B: %q, want %q", got, wantBlob)
	}
}

// validatedOnHostB checks that the validation of a backup ran on host B
// (named host): its job says so, and its throw-away VM lived on B's daemon,
// which logged its QEMU in logDirB, not on host A's.
func validatedOnHostB(t *testing.T, s *Server, backupID, host, logDirB string) {
	t.Helper()
	validatedOn(t, s, backupID, host)
	log := "knib-validate-" + backupID[:8] + ".log"
	if _, err := os.Stat(filepath.Join(logDirB, log)); err != nil {
		t.Errorf("no QEMU log of the validation VM on host B: %v", err)
	}
	if _, err := os.Stat(filepath.Join(testbed.QEMULogDir, log)); err == nil {
		t.Errorf("the validation VM of %s ran on host A's daemon", backupID)
	}
}

func validatedOn(t *testing.T, s *Server, backupID, host string) {
	t.Helper()
	var jobs []struct {
		BackupID string `json:"backup_id"`
		Host     string `json:"host"`
		State    string `json:"state"`
	}
	s.MustJSON(&jobs, "job", "list", "--type", "BackupValidation", "--all", "--backup", backupID)
	for _, j := range jobs {
		if j.State == "Succeeded" {
			if j.Host != host {
				t.Fatalf("validation of %s ran on %q, want %s", backupID, j.Host, host)
			}
			return
		}
	}
	t.Fatalf("no successful validation job of %s: %+v", backupID, jobs)
}
