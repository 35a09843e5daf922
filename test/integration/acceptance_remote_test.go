package integration

import (
	"bytes"
	"crypto/md5"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/knib/knib/internal/testbed"
)

// TestTwoRemoteAgents is issue 6's acceptance scenario with the real remote
// transport: one server without an in-process agent (--libvirt-uri ”),
// two `knib agent` processes joined over mutual TLS with their own one-time
// tokens into one zone, agent A on the system libvirt daemon and agent B on
// the second, independent daemon (testbed.SecondHost), and one backup
// storage directory shared by both, added with `knib storage add`.
//
// A VM on host A gets data written (guest files through the guest agent,
// and a pattern on its second disk through QEMU), then a full and an
// incremental backup land on the shared storage. Their validations run on
// host B (the job's host, and the validation VM's QEMU log is on B's daemon,
// not A's) and both become Valid. A quick restore of the incremental with
// --host B starts the VM on B's daemon (its catalogue host is B, it is gone
// from A's daemon), consolidation ends with disks in B's disk directory that
// no longer depend on the backup storage, and the guest on B reads back the
// data of the incremental. Backed up again on B, its next validation runs
// on A.
func TestTwoRemoteAgents(t *testing.T) {
	hostB := testbed.SecondHost(t)
	dom := testbed.NewDomain(t, testbed.DomainOptions{Name: "knib-t-2agents", DiskSizes: []int64{64 << 20, 32 << 20}, Start: true})
	lB := testbed.ConnectHost(t, hostB)
	t.Cleanup(func() { testbed.RemoveDomain(lB, dom.Name) })

	// The server: no in-process agent, an agent listener, jobs every second.
	s := &Server{t: t, DataDir: dataDirFor(t), Listen: freePort(t), NoLocalAgent: true}
	s.URL = "http://" + s.Listen
	s.AgentListen = freePort(t)
	s.Args = []string{"--libvirt-uri", "", "--agent-listen", s.AgentListen, "--agent-heartbeat", "1s", "--agent-failures", "2"}
	s.ReconcileEvery, s.JobsEvery = "5s", "1s"
	s.start()
	t.Cleanup(s.Stop)
	// Cleanups run last-first: the VM leaves host B before its disks in
	// the data directory go.
	t.Cleanup(func() { testbed.RemoveDomain(lB, dom.Name) })

	// The shared backup storage (an NFS mount on both hosts in real life)
	// and host B's own disk directory, both traversable by libvirt-qemu.
	shared := filepath.Join(s.DataDir, "shared-storage")
	disksB := filepath.Join(s.DataDir, "hostb-disks")
	for _, d := range []string{shared, disksB} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}

	// Two agents, each joined with its own one-time token into zone-ab. A
	// bad --disk-dir is refused before the token is spent.
	const zone = "zone-ab"
	bad := s.NewAgent(t, "kvm-bad")
	bad.Args = []string{"--disk-dir", "relative/disks"}
	tokBad := s.joinToken(zone)
	bad.Start(tokBad)
	if code, err := bad.Wait(time.Minute); err != nil || code != 2 || !strings.Contains(bad.Log(), "--disk-dir") {
		t.Fatalf("agent with a relative --disk-dir: code %d, %v:\n%s", code, err, bad.Log())
	}
	if r := s.Run(nil, "host", "show", bad.Name); r.Code == 0 {
		t.Fatalf("the refused agent created a host: %s", r.Stdout)
	}
	agA := s.NewAgent(t, "kvm-a")
	agA.Storage = shared
	agB := s.NewAgent(t, "kvm-b")
	agB.Storage = shared
	agB.Args = []string{"--libvirt-uri", hostB.URI, "--disk-dir", disksB}
	agA.Start(tokBad) // not spent by the refused agent
	agB.Start(s.joinToken(zone))
	for _, ag := range []*Agent{agA, agB} {
		h := s.WaitAgentState(ag.Name, "Connected", 2*time.Minute, ag)
		if h.Zone != zone || h.Local || !h.Enabled || h.AgentURL != "https://"+ag.Listen {
			t.Fatalf("joined host %s: %+v", ag.Name, h)
		}
	}

	// The shared storage is the only one of the zone: it takes the chain.
	s.CLI("storage", "add", "--zone", zone, "--path", shared, "--name", "shared")
	st := s.storages()
	sh, ok := st["shared"]
	if !ok || sh.Zone != zone || !sh.Enabled || sh.Capacity <= 0 {
		t.Fatalf("shared storage: %+v", st)
	}
	for name, other := range st {
		if name != "shared" && other.Zone == zone {
			t.Fatalf("zone %s has another storage: %+v", zone, other)
		}
	}

	s.CLI("settings", "set", "backup.validation.boot.default.timeout", "120")
	s.CLI("settings", "set", "backup.validation.screenshot.default.wait", "2")
	s.CLI("settings", "set", "backup.validation.max.job.retries", "0")
	var off struct{ ID string }
	s.MustJSON(&off, "offering", "create", "--name", "two-agents", "--validate", "--validation-steps", "wait_for_boot,screenshot",
		"--allow-quick-restore")
	s.CLI("host", "refresh")
	var vmA struct {
		Host  string `json:"host"`
		State string `json:"state"`
	}
	s.MustJSON(&vmA, "vm", "show", dom.Name)
	if vmA.Host != agA.Name || vmA.State != "Running" {
		t.Fatalf("the VM through agent A: %+v", vmA)
	}
	s.CLI("vm", "assign", dom.Name, "--offering", off.ID)

	// Data, a full backup, more data, an incremental.
	guest(t, dom, "echo v1 > /data/v && sync")
	full := s.backup(dom.Name)
	guest(t, dom, "echo v2 > /data/v && dd if=/dev/urandom of=/data/blob bs=64k count=16 2>/dev/null && sync")
	wantBlob := guest(t, dom, "md5sum < /data/blob")
	if err := dom.WriteDisk(ctxT(t), 1, 0x6b, 2<<20, 1<<20); err != nil {
		t.Fatal(err)
	}
	wantVdb := fmt.Sprintf("%x  -\n", md5.Sum(bytes.Repeat([]byte{0x6b}, 1<<20)))
	if got := guest(t, dom, "dd if=/dev/vdb bs=1M skip=2 count=1 2>/dev/null | md5sum"); got != wantVdb {
		t.Fatalf("the pattern on vdb as host A's guest reads it: %q, want %q", got, wantVdb)
	}
	inc := s.backup(dom.Name)
	if full.Type != "full" || inc.Type != "incremental" || inc.ParentID != full.ID {
		t.Fatalf("backups: full %+v, incremental %+v", full, inc)
	}
	for _, b := range []Backup{full, inc} {
		if got := s.storageOf(b.ID); got != sh.ID {
			t.Fatalf("backup %s is on storage %s, want shared %s", b.ID, got, sh.ID)
		}
		for _, f := range b.Files {
			file := filepath.Join(shared, f.Path)
			run(t, "qemu-img", "check", "-q", file)
			if got := hashFile(t, file); got != f.Hash {
				t.Fatalf("backup %s disk %s on the shared storage: hash %s, recorded %s", b.ID, f.Disk, got, f.Hash)
			}
		}
	}
	incFiles := map[string]string{}
	for _, f := range inc.Files {
		incFiles[f.Disk] = filepath.Join(shared, f.Path)
	}
	if got, ok := ext4Cat(t, flatten(t, incFiles["vda"]), "/v"); !ok || got != "v2\n" {
		t.Fatalf("incremental /v on the shared storage: %q %v", got, ok)
	}
	if !pattern(t, flatten(t, incFiles["vdb"]), 0x6b, 2<<20, 1<<20) {
		t.Fatal("the incremental's vdb misses the pattern")
	}

	// Validation: on host B (A carries the VM), Valid; the throw-away VM
	// ran on B's daemon, which logged its QEMU, and not on A's.
	for _, b := range []Backup{full, inc} {
		if v := s.waitValidation(b.ID); v.ValidationStatus != "Valid" || !v.HasScreenshot {
			t.Fatalf("validation of %s: %+v\n%s\nagent B:\n%s", b.ID, v, s.Log(), agB.Log())
		}
	}
	for _, b := range []Backup{full, inc} {
		validatedOnHostB(t, s, b.ID, agB.Name, hostB.QEMULogDir)
	}

	// Quick restore of the incremental onto host B.
	guest(t, dom, "echo v3 > /data/v && sync")
	if err := dom.Destroy(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	var res map[string]any
	s.MustJSON(&res, "backup", "restore", inc.ID, "--quick-restore", "--host", agB.Name)
	if res["host"] != agB.Name || res["started"] != true || res["consolidated"] != true {
		t.Fatalf("quick restore onto %s: %v\n%s\nagent B:\n%s", agB.Name, res, s.Log(), agB.Log())
	}
	var vm struct {
		Host  string `json:"host"`
		State string `json:"state"`
	}
	s.MustJSON(&vm, "vm", "show", dom.Name)
	if vm.Host != agB.Name || vm.State != "Running" {
		t.Fatalf("after the quick restore onto %s the VM is %+v", agB.Name, vm)
	}
	d, err := lB.DomainLookupByName(dom.Name)
	if err != nil {
		t.Fatalf("the VM is not defined on host B's daemon: %v", err)
	}
	if st, _, err := lB.DomainGetState(d, 0); err != nil || st != 1 { // VIR_DOMAIN_RUNNING
		t.Fatalf("the VM on host B: state %d, %v", st, err)
	}
	if _, err := dom.L.DomainLookupByName(dom.Name); err == nil {
		t.Fatalf("the VM is still defined on host A's daemon")
	}

	// Consolidated: B's own files in its disk directory, without backing
	// files, none of them on the backup storage.
	v := s.vmDisks(dom.Name)
	if len(v.Disks) != 2 {
		t.Fatalf("disks of the VM on host B: %+v", v.Disks)
	}
	for _, disk := range v.Disks {
		if !strings.HasPrefix(disk.Source, filepath.Join(disksB, dom.UUID)+"/") || len(disk.Backing) != 0 {
			t.Fatalf("disk %s on host B: %s, backing %+v", disk.Target, disk.Source, disk.Backing)
		}
		var infos []struct {
			Filename string `json:"filename"`
		}
		out := run(t, "qemu-img", "info", "-U", "--output=json", "--backing-chain", disk.Source)
		if err := json.Unmarshal([]byte(out), &infos); err != nil {
			t.Fatal(err)
		}
		if len(infos) != 1 {
			t.Fatalf("disk %s on host B still has a backing chain: %s", disk.Target, out)
		}
		for _, in := range infos {
			if strings.HasPrefix(in.Filename, shared+"/") {
				t.Fatalf("disk %s on host B depends on the backup storage: %s", disk.Target, out)
			}
		}
	}
	onB := &testbed.Domain{Name: dom.Name, UUID: dom.UUID, L: lB, Dom: d}
	// The guest agent on B's daemon reads back the incremental's data.
	checkRestoredOnB(t, onB, wantBlob)
	if got := guest(t, onB, "dd if=/dev/vdb bs=1M skip=2 count=1 2>/dev/null | md5sum"); got != wantVdb {
		t.Fatalf("restored vdb pattern on host B: %q, want %q", got, wantVdb)
	}
	// The backups on the shared storage are untouched by the restore.
	for _, b := range []Backup{full, inc} {
		for _, f := range b.Files {
			if got := hashFile(t, filepath.Join(shared, f.Path)); got != f.Hash {
				t.Fatalf("backup %s disk %s changed by the restore: hash %s, recorded %s", b.ID, f.Disk, got, f.Hash)
			}
		}
	}

	// On its new host the VM is backed up through agent B (a new chain: the
	// restore ended the old one) onto the shared storage, and its
	// validation now avoids B: it runs on A's daemon.
	guest(t, onB, "echo v4 > /data/v && sync")
	onNew := s.backup(dom.Name)
	if onNew.Type != "full" || s.storageOf(onNew.ID) != sh.ID {
		t.Fatalf("first backup on host B: %+v on storage %s", onNew, s.storageOf(onNew.ID))
	}
	for _, f := range onNew.Files {
		if f.Disk == "vda" {
			if got, ok := ext4Cat(t, flatten(t, filepath.Join(shared, f.Path)), "/v"); !ok || got != "v4\n" {
				t.Fatalf("backup taken on host B, /v: %q %v", got, ok)
			}
		}
	}
	if v := s.waitValidation(onNew.ID); v.ValidationStatus != "Valid" {
		t.Fatalf("validation of the backup taken on host B: %+v\n%s\nagent A:\n%s", v, s.Log(), agA.Log())
	}
	validatedOn(t, s, onNew.ID, agA.Name)
	if _, err := os.Stat(filepath.Join(testbed.QEMULogDir, "knib-validate-"+onNew.ID[:8]+".log")); err != nil {
		t.Errorf("no QEMU log of the validation VM on host A: %v", err)
	}
}
