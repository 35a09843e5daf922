package integration

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/knib/knib/internal/testbed"
)

// virsh runs virsh against host A's daemon (argument list, no shell).
func virsh(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("virsh", append([]string{"-c", "qemu:///system"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("virsh %v: %v: %s", args, err, out)
	}
	return string(out)
}

// A VM with snapshots made outside knib (a snapshot with the VM's memory,
// or a disk-only one with libvirt metadata) is refused by an offering
// assignment, as the specification says, and its backup is refused too
// when the snapshot appears after the assignment; each refusal names the
// snapshots and changes nothing. Without them, both work.
func TestForeignSnapshotsAreRefused(t *testing.T) {
	dom := testbed.NewDomain(t, testbed.DomainOptions{Name: "knib-t-fsnap", Start: true})
	s := StartServer(t, "")
	var off struct{ ID string }
	s.MustJSON(&off, "offering", "create", "--name", "fsnap")
	s.CLI("host", "refresh")
	if err := dom.WaitAgent(ctxT(t)); err != nil {
		t.Fatal(err)
	}

	// A snapshot with memory (internal, in the qcow2 images).
	virsh(t, "snapshot-create-as", dom.Name, "mem1")
	msg := s.Fail(nil, 1, "vm", "assign", dom.Name, "--offering", off.ID)
	if !strings.Contains(msg, "mem1 (with memory)") || !strings.Contains(msg, "outside knib") {
		t.Fatalf("assignment of a VM with a memory snapshot: %s", msg)
	}
	var vm struct {
		Offering string `json:"offering"`
	}
	s.MustJSON(&vm, "vm", "show", dom.Name)
	if vm.Offering != "" {
		t.Fatalf("a refused assignment assigned the VM: %+v", vm)
	}
	virsh(t, "snapshot-delete", dom.Name, "mem1")
	s.CLI("vm", "assign", dom.Name, "--offering", off.ID)
	b1 := s.backup(dom.Name)

	// A disk-only snapshot with metadata appears after the assignment: the
	// next backup is refused and the chain stays as it was.
	virsh(t, "snapshot-create-as", dom.Name, "ext1", "--disk-only", "--atomic")
	t.Cleanup(func() {
		exec.Command("virsh", "-c", "qemu:///system", "snapshot-delete", dom.Name, "ext1", "--metadata").Run()
	})
	r := s.Run(nil, "backup", "create", dom.Name)
	if r.Code == 0 || !strings.Contains(r.Stderr+r.Stdout, "ext1 (disk-only)") {
		t.Fatalf("backup of a VM with a disk-only snapshot made outside knib: exit %d: %s%s", r.Code, r.Stderr, r.Stdout)
	}
	if got := s.backups(dom.Name); len(got) != 1 || got[b1.ID].Status != "BackedUp" {
		t.Fatalf("a refused backup changed the catalogue: %+v", got)
	}
	var state struct{ State string }
	s.MustJSON(&state, "vm", "show", dom.Name)
	if state.State != "Running" {
		t.Fatalf("after a refused backup the VM is %s", state.State)
	}
}
