package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/knib/knib/internal/testbed"
)

// TestFoundationThroughCLI drives offerings, inventory, ownership and
// assignment through the real CLI against a real server process whose
// in-process agent reads a booted test VM from libvirt.
func TestFoundationThroughCLI(t *testing.T) {
	dom := testbed.NewDomain(t, testbed.DomainOptions{Name: "knib-t-found", DiskSizes: []int64{64 << 20, 32 << 20}, Start: true})
	s := StartServer(t, "")

	// The admin token was written with mode 0600.
	st, err := os.Stat(filepath.Join(s.DataDir, "admin.token"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("admin.token: %v %v", st, err)
	}

	// Inventory: the VM, its disks and their backing chains as libvirt sees them.
	s.CLI("host", "refresh")
	var vm struct {
		ID, Name, State, Host string
		Disks                 []struct {
			Target, Format, Source string
			VirtualSize            int64 `json:"virtual_size"`
		}
	}
	s.MustJSON(&vm, "vm", "show", dom.Name)
	if vm.ID != dom.UUID || vm.State != "Running" || vm.Host != "localhost" || len(vm.Disks) != 2 {
		t.Fatalf("vm show: %+v", vm)
	}
	for i, d := range vm.Disks {
		want := []int64{64 << 20, 32 << 20}[i]
		if d.Target != dom.Targets[i] || d.Format != "qcow2" || d.Source != dom.Disks[i] || d.VirtualSize != want {
			t.Fatalf("disk %d: %+v", i, d)
		}
	}
	var hosts []struct {
		Name, Zone        string
		LibvirtVersion    string `json:"libvirt_version"`
		HypervisorVersion string `json:"hypervisor_version"`
		StorageCapacity   uint64 `json:"storage_capacity"`
	}
	s.MustJSON(&hosts, "host", "list")
	if len(hosts) != 1 || hosts[0].Name != "localhost" || hosts[0].Zone != "default" || hosts[0].LibvirtVersion == "" ||
		hosts[0].HypervisorVersion == "" || hosts[0].StorageCapacity == 0 {
		t.Fatalf("hosts: %+v", hosts)
	}

	// Offerings with the seed's defaults, and refusals that change nothing.
	var off struct {
		ID, Name           string
		Validate, Compress bool
		Steps              []string `json:"validation_steps"`
		Library            string   `json:"compression_library"`
		Chain              *int     `json:"backup_chain_size"`
	}
	s.MustJSON(&off, "offering", "create", "--name", "gold", "--validate", "--backup-chain-size", "3")
	if off.Library != "zstd" || len(off.Steps) != 1 || off.Steps[0] != "screenshot" || off.Chain == nil || *off.Chain != 3 || off.Compress {
		t.Fatalf("offering: %+v", off)
	}
	for _, bad := range [][]string{
		{"--name", "x", "--compression-library", "lz4"},
		{"--name", "x", "--validate", "--validation-steps", "dance"},
		{"--name", "x", "--backup-chain-size", "abc"},
		{"--name", ""},
		{"--name", "gold"},
	} {
		msg := s.Fail(nil, 0, append([]string{"offering", "create"}, bad...)...)
		if msg == "knib: " {
			t.Fatalf("%v: empty message", bad)
		}
	}
	var list []map[string]any
	s.MustJSON(&list, "offering", "list")
	if len(list) != 1 {
		t.Fatalf("refused creations changed the catalogue: %v", list)
	}
	if r := s.Run(nil, "offering", "create", "--name", "x", "--backup-chain-size", "abc"); r.Code != 2 || !strings.Contains(r.Stderr, "backup-chain-size") {
		t.Fatalf("non-integer chain size: exit %d %q", r.Code, r.Stderr)
	}

	// Assignment, and an offering in use cannot be deleted.
	s.CLI("vm", "assign", dom.Name, "--offering", off.ID)
	msg := s.Fail(nil, 1, "offering", "delete", off.ID)
	if !strings.Contains(msg, dom.Name) {
		t.Fatalf("refusal must name the VM: %s", msg)
	}
	s.CLI("vm", "unassign", dom.Name)
	s.CLI("offering", "delete", off.ID)
	s.MustJSON(&list, "offering", "list")
	if len(list) != 0 {
		t.Fatalf("removed offering listed: %v", list)
	}
	s.MustJSON(&list, "offering", "list", "--show-removed")
	if len(list) != 1 || list[0]["removed"] == nil {
		t.Fatalf("--show-removed: %v", list)
	}

	// A user sees only the VMs of their account; admin-only commands refuse.
	s.CLI("account", "create", "alice")
	var tok struct{ Token string }
	s.MustJSON(&tok, "token", "create", "--account", "alice", "--role", "user")
	user := []string{"KNIB_TOKEN=" + tok.Token}
	if r := s.Run(user, "vm", "list", "-o", "json"); r.Code != 0 || strings.TrimSpace(r.Stdout) != "[]" {
		t.Fatalf("user vm list: %+v", r)
	}
	if msg := s.Fail(user, 1, "offering", "list"); !strings.Contains(msg, "admin") {
		t.Fatalf("user offering list: %s", msg)
	}
	s.Fail(user, 1, "vm", "show", dom.Name)
	s.CLI("vm", "set-owner", dom.Name, "--account", "alice")
	if r := s.Run(user, "vm", "show", dom.Name, "-o", "json"); r.Code != 0 || !strings.Contains(r.Stdout, dom.UUID) {
		t.Fatalf("user vm show after set-owner: %+v", r)
	}
	s.Fail(user, 1, "vm", "set-owner", dom.Name, "--account", "admin")

	// Settings and VM details.
	s.CLI("settings", "set", "backup.chain.size", "5")
	s.Fail(nil, 1, "settings", "set", "backup.chain.size", "five")
	s.Fail(nil, 1, "settings", "set", "backup.chain.size", "5", "--host", "localhost")
	s.CLI("settings", "set", "backup.validation.max.concurrent.operations.per.host", "--host", "localhost", "--", "-1")
	var settings []struct{ Key, Value, Source string }
	s.MustJSON(&settings, "settings", "list", "--scope", "host", "--host", "localhost")
	found := 0
	for _, st := range settings {
		switch st.Key {
		case "backup.chain.size":
			found++
			if st.Value != "5" || st.Source != "global" {
				t.Fatalf("chain size: %+v", st)
			}
		case "backup.validation.max.concurrent.operations.per.host":
			found++
			if st.Value != "-1" || st.Source != "host" {
				t.Fatalf("per-host limit: %+v", st)
			}
		}
	}
	if found != 2 || len(settings) < 20 {
		t.Fatalf("settings list: %d settings, %d checked", len(settings), found)
	}
	s.CLI("vm", "detail", "set", dom.Name, "backupValidationCommand", "echo")
	if msg := s.Fail(user, 1, "vm", "detail", "set", dom.Name, "backupValidationBootTimeout", "60"); !strings.Contains(msg, "read-only") {
		t.Fatalf("read-only detail: %s", msg)
	}
	s.Fail(nil, 1, "vm", "detail", "set", dom.Name, "backupValidationCommandExpectedResult", "***")
}

// TestGuestCommandThroughAgent sends a guest-agent command through the
// agent's QGA client; arguments with quotes, commas and newlines arrive
// verbatim (the JSON is built with an encoder, nothing is injected).
func TestGuestCommandThroughAgent(t *testing.T) {
	dom := testbed.NewDomain(t, testbed.DomainOptions{Name: "knib-t-exec", Start: true})
	s := StartServer(t, "")
	s.CLI("host", "refresh")
	args := []string{`a"b`, `x","y":"z`, "line1\nline2", `back\slash`, "{}"}
	out := s.CLI(append([]string{"vm", "exec", dom.Name, "--", "/bin/echo"}, args...)...)
	if want := strings.Join(args, " ") + "\n"; out != want {
		t.Fatalf("echo through the guest agent: got %q want %q", out, want)
	}
	out = s.CLI("vm", "exec", dom.Name, "--", "sh", "-c", "echo hello > /data/hello && sync && cat /data/hello")
	if out != "hello\n" {
		t.Fatalf("write and read in the guest: %q", out)
	}
	if msg := s.Fail(nil, 1, "vm", "exec", dom.Name, "--", "sh", "-c", "exit 3"); !strings.Contains(msg, "3") {
		t.Fatalf("exit code: %s", msg)
	}
}

// TestInventoryShowsBackingChainOfStoppedVM: a stopped VM whose disk is an
// overlay shows its whole backing chain.
func TestInventoryShowsBackingChainOfStoppedVM(t *testing.T) {
	dom := testbed.NewDomain(t, testbed.DomainOptions{Name: "knib-t-chain"})
	overlay := filepath.Join(dom.Dir, "overlay.qcow2")
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", dom.Disks[0], overlay).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	inactive, err := dom.L.DomainGetXMLDesc(dom.Dom, libvirt.DomainXMLInactive)
	if err != nil {
		t.Fatal(err)
	}
	var def libvirtxml.Domain
	if err := def.Unmarshal(inactive); err != nil {
		t.Fatal(err)
	}
	def.Devices.Disks[0].Source.File.File = overlay
	xml, err := def.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dom.L.DomainDefineXML(xml); err != nil {
		t.Fatal(err)
	}
	s := StartServer(t, "")
	s.CLI("host", "refresh")
	var vm struct {
		State string
		Disks []struct {
			Source  string
			Backing []struct{ Path, Format string } `json:"backing_chain"`
		}
	}
	s.MustJSON(&vm, "vm", "show", dom.Name)
	if vm.State != "Stopped" || len(vm.Disks) != 1 || vm.Disks[0].Source != overlay || len(vm.Disks[0].Backing) != 1 ||
		vm.Disks[0].Backing[0].Path != dom.Disks[0] || vm.Disks[0].Backing[0].Format != "qcow2" {
		t.Fatalf("chain of a stopped VM: %+v", vm)
	}
	// Started, libvirt reports the same chain from the running domain.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := dom.Start(ctx); err != nil {
		t.Fatal(err)
	}
	s.CLI("host", "refresh")
	s.MustJSON(&vm, "vm", "show", dom.Name)
	if vm.State != "Running" || len(vm.Disks[0].Backing) != 1 || vm.Disks[0].Backing[0].Path != dom.Disks[0] {
		t.Fatalf("chain of the running VM: %+v", vm)
	}
}
