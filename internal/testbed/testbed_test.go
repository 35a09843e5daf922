package testbed

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"
)

func TestValidateName(t *testing.T) {
	for _, ok := range []string{"knib-t-a", "knib-t-Abc-123", "x"} {
		if err := ValidateName(ok); err != nil {
			t.Errorf("ValidateName(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"", "-x", "knib t", "knib/t", "knib_t", "knib.t", "../x", strings.Repeat("a", 65)} {
		if err := ValidateName(bad); err == nil {
			t.Errorf("ValidateName(%q) = nil, want an error", bad)
		}
	}
}

func TestDomainXML(t *testing.T) {
	s, err := DomainXML("knib-t-xml", 256, []string{"/x/vda.qcow2", "/x/vdb.qcow2"}, []string{"vda", "vdb"}, "/x/console.log")
	if err != nil {
		t.Fatal(err)
	}
	var d libvirtxml.Domain
	if err := d.Unmarshal(s); err != nil {
		t.Fatal(err)
	}
	if d.Type != "qemu" || d.OS.Kernel != KernelPath() || d.OS.Initrd != InitrdPath() || d.OS.Cmdline != KernelCmdline {
		t.Errorf("type/boot wrong:\n%s", s)
	}
	if len(d.Devices.Disks) != 2 || d.Devices.Disks[1].Target.Dev != "vdb" || d.Devices.Disks[1].Target.Bus != "virtio" {
		t.Errorf("disks wrong:\n%s", s)
	}
	if len(d.Devices.Channels) != 1 || d.Devices.Channels[0].Target.VirtIO == nil ||
		d.Devices.Channels[0].Target.VirtIO.Name != AgentChannel || d.Devices.Channels[0].Source.UNIX == nil {
		t.Errorf("agent channel wrong:\n%s", s)
	}
	if len(d.Devices.Graphics) != 1 || d.Devices.Graphics[0].VNC == nil || len(d.Devices.Videos) != 1 {
		t.Errorf("graphics/video missing:\n%s", s)
	}
	if len(d.Devices.Interfaces) != 0 {
		t.Errorf("unexpected network interface:\n%s", s)
	}
	if _, err := DomainXML("x", 256, []string{"a"}, nil, ""); err == nil {
		t.Error("DomainXML accepted mismatched disks and targets")
	}
}

// TestGuest boots a two-disk test domain and exercises the guest agent, the
// ext4 /data disk, WriteDisk and a destroy/start cycle.
func TestGuest(t *testing.T) {
	const mib = 1 << 20
	d := NewDomain(t, DomainOptions{Name: "knib-t-testbed", DiskSizes: []int64{64 * mib, 32 * mib}, Start: true})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	if d.UUID == "" || len(d.Disks) != 2 || d.Targets[1] != "vdb" {
		t.Fatalf("domain fields: %+v", d)
	}
	if !strings.Contains(d.Console(), BootMarker) {
		t.Errorf("boot marker missing from console log:\n%s", d.Console())
	}

	out, code, err := d.Exec(ctx, "/bin/echo", "ababa")
	if err != nil || code != 0 || out != "ababa\n" {
		t.Fatalf("echo ababa = %q, %d, %v", out, code, err)
	}
	if _, code, err := d.Exec(ctx, "/bin/sh", "-c", "exit 3"); err != nil || code != 3 {
		t.Fatalf("sh -c 'exit 3' = %d, %v", code, err)
	}
	r, err := d.ExecFull(ctx, "sh", "-c", "echo oops >&2")
	if err != nil || r.Stderr != "oops\n" {
		t.Fatalf("stderr = %+v, %v", r, err)
	}
	if _, _, err := d.Exec(ctx, "/no/such/program"); err == nil {
		t.Error("Exec of a missing program did not fail")
	}

	if out, code, err := d.Exec(ctx, "/bin/sh", "-c", "echo hello > /data/f && sync"); err != nil || code != 0 {
		t.Fatalf("write /data/f: %q, %d, %v", out, code, err)
	}
	if out, code, err := d.Exec(ctx, "/bin/cat", "/data/f"); err != nil || code != 0 || out != "hello\n" {
		t.Fatalf("cat /data/f = %q, %d, %v", out, code, err)
	}
	if out, _, err := d.Exec(ctx, "md5sum", "/data/f"); err != nil || !strings.HasPrefix(out, "b1946ac92492d2347c6235b4d2611184 ") {
		t.Fatalf("md5sum /data/f = %q, %v", out, err)
	}

	// WriteDisk into the second (blank) disk, then read it from the host.
	const off, n = 1 * mib, 64 << 10
	if err := d.WriteDisk(ctx, 1, 0x5a, off, n); err != nil {
		t.Fatal(err)
	}
	hostRead(t, d.Disks[1], 0x5a, off, n)
	if err := d.WriteDisk(ctx, 5, 0x5a, 0, 512); err == nil {
		t.Error("WriteDisk accepted a disk index out of range")
	}
	if err := d.WriteDisk(ctx, 1, 0x5a, 1<<30, 512); err == nil || !strings.Contains(err.Error(), "write failed") {
		t.Errorf("WriteDisk past the end of the disk: %v, want a write failure", err)
	}

	// The guest sees it too (bypassing its page cache with O_DIRECT is not
	// available in busybox dd; the disk was never read, so the cache is
	// cold).
	out, _, err = d.Exec(ctx, "/bin/sh", "-c", "dd if=/dev/vdb bs=65536 skip=16 count=1 2>/dev/null | md5sum")
	if err != nil {
		t.Fatal(err)
	}
	hostSum, err := exec.Command("sh", "-c", "head -c 65536 /dev/zero | tr '\\0' Z | md5sum").Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Fields(out)[0] != strings.Fields(string(hostSum))[0] {
		t.Errorf("guest reads %q at vdb+1MiB, want md5 %q", out, hostSum)
	}

	// Pull the plug and boot again: the synced file survives.
	if err := d.Destroy(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.Destroy(ctx); err != nil {
		t.Fatalf("second Destroy: %v", err)
	}
	start := time.Now()
	if err := d.Start(ctx); err != nil {
		t.Fatalf("restart: %v\n%s", err, d.Console())
	}
	t.Logf("restart to agent: %.1fs", time.Since(start).Seconds())
	if out, _, err := d.Exec(ctx, "cat", "/data/f"); err != nil || out != "hello\n" {
		t.Fatalf("after restart cat /data/f = %q, %v", out, err)
	}
}

// hostRead checks with qemu-io from the host that the image holds pattern
// at [off, off+n).
func hostRead(t *testing.T, image string, pattern byte, off, n int64) {
	t.Helper()
	cmd := fmt.Sprintf("read -P 0x%02x %d %d", pattern, off, n)
	out, err := exec.Command("qemu-io", "-U", "-r", "-f", "qcow2", "-c", cmd, image).CombinedOutput()
	s := string(out)
	if err != nil || strings.Contains(s, "failed") || !strings.Contains(s, fmt.Sprintf("read %d/%d bytes", n, n)) {
		t.Fatalf("qemu-io %q %s: %v\n%s", cmd, image, err, s)
	}
}

// TestBlankDisk boots with NoFormat: /data stays unmounted and the disk
// reads as zeros. It also takes a screenshot and shuts the guest down the way
// `virsh shutdown` does.
func TestBlankDisk(t *testing.T) {
	t.Parallel()
	d := NewDomain(t, DomainOptions{Name: "knib-t-testbed-blank", NoFormat: true, Start: true, MemoryMiB: 192})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, code, err := d.Exec(ctx, "/bin/sh", "-c", "grep ' /data ' /proc/mounts"); err != nil || code == 0 {
		t.Fatalf("/data mounted on a blank disk: %q, %d, %v", out, code, err)
	}
	out, _, err := d.Exec(ctx, "/bin/sh", "-c", "dd if=/dev/vda bs=1M count=1 2>/dev/null | tr -d '\\0' | wc -c")
	if err != nil || strings.TrimSpace(out) != "0" {
		t.Fatalf("blank disk has data: %q, %v", out, err)
	}

	// A screenshot through QMP screendump (go-libvirt's stream download of
	// virDomainScreenshot can deadlock the connection; knib does the same).
	shot := filepath.Join("/var/lib/libvirt/qemu", "knib-testbed-shot.png")
	defer os.Remove(shot)
	cmd, _ := json.Marshal(map[string]any{"execute": "screendump", "arguments": map[string]any{"filename": shot, "format": "png"}})
	if _, err := d.L.QEMUDomainMonitorCommand(d.Dom, string(cmd), 0); err != nil {
		t.Fatalf("screendump: %v", err)
	}
	png, err := os.ReadFile(shot)
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Errorf("screenshot: %d bytes, %v", len(png), err)
	}

	// Like `virsh shutdown`: libvirt asks the guest agent (guest-shutdown).
	if err := d.L.DomainShutdownFlags(d.Dom, 0); err != nil {
		t.Fatal(err)
	}
	for {
		st, err := d.State()
		if err != nil {
			t.Fatal(err)
		}
		if st == libvirt.DomainShutoff {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("guest did not power off after shutdown (state %d)\n%s", st, d.Console())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
