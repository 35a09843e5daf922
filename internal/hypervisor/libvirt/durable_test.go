package lv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/digitalocean/go-libvirt"

	"github.com/knib/knib/internal/hypervisor"
	"github.com/knib/knib/internal/qemuimg"
	"github.com/knib/knib/internal/testbed"
)

// TestPullDurableWhenQEMUDies: a block pull that ended before WaitBlockJob
// looked (a small disk pulls in milliseconds) is on disk when WaitBlockJob
// returns: QEMU killed with SIGKILL right after loses none of it, and the
// overlay, which no longer names a backing file, reads what its backing
// file held.
func TestPullDurableWhenQEMUDies(t *testing.T) {
	d := testbed.NewDomain(t, testbed.DomainOptions{Name: "knib-t-lv-durable", DiskSizes: []int64{64 << 20}, NoFormat: true})
	ctx := guestCtx(t)
	base := d.Disks[0]
	qemuIO(t, base, "write -P 0x5a 0 8M")
	top := filepath.Join(d.Dir, "vda-top.qcow2")
	if err := qemuimg.Default.Create(ctx, top, "qcow2", 0, &qemuimg.Backing{Path: base, Format: "qcow2"}); err != nil {
		t.Fatal(err)
	}
	h := openT(t, "qemu:///system")
	if err := h.SetDiskSources(ctx, d.UUID, map[string]hypervisor.Layer{"vda": {Path: top, Format: "qcow2"}}); err != nil {
		t.Fatal(err)
	}
	if err := d.Start(ctx); err != nil {
		t.Fatalf("start: %v\n%s", err, d.Console())
	}
	if err := h.BlockPull(ctx, d.UUID, "vda"); err != nil {
		t.Fatal(err)
	}
	// Let the job end before WaitBlockJob looks.
	dom, err := h.Libvirt().DomainLookupByName(d.Name)
	if err != nil {
		t.Fatal(err)
	}
	for {
		found, _, _, _, _, err := h.Libvirt().DomainGetBlockJobInfo(dom, "vda", 0)
		if err != nil {
			t.Fatal(err)
		}
		if found == 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := h.WaitBlockJob(ctx, d.UUID, "vda", hypervisor.JobWait{Started: true}); err != nil {
		t.Fatal(err)
	}
	killQEMU(t, d.Name)
	for {
		st, _, err := h.Libvirt().DomainGetState(dom, 0)
		if err != nil {
			t.Fatal(err)
		}
		if libvirt.DomainState(st) != libvirt.DomainRunning && libvirt.DomainState(st) != libvirt.DomainPaused {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	infos, err := qemuimg.Default.Info(ctx, top, qemuimg.InfoOptions{ForceShare: true})
	if err != nil {
		t.Fatal(err)
	}
	if infos[0].BackingFilename != "" {
		t.Fatalf("the pull ended but the overlay still names %s", infos[0].BackingFilename)
	}
	qemuIO(t, top, "read -P 0x5a 0 8M")
}

// qemuIO runs one qemu-io command on a qcow2 file and fails the test when
// qemu-io reports a failure (a pattern mismatch included).
func qemuIO(t *testing.T, file, cmd string) {
	t.Helper()
	out, err := exec.Command("qemu-io", "-f", "qcow2", "-c", cmd, file).CombinedOutput()
	if err != nil || strings.Contains(string(out), "fail") || strings.Contains(string(out), "Pattern verification") {
		t.Fatalf("qemu-io %q on %s: %v\n%s", cmd, file, err, out)
	}
}

// killQEMU kills the domain's QEMU with SIGKILL: nothing it cached is
// written.
func killQEMU(t *testing.T, name string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("/run/libvirt/qemu", name+".pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
}
