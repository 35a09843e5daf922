package lv

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"libvirt.org/go/libvirtxml"

	"github.com/knib/knib/internal/guestagent"
	"github.com/knib/knib/internal/hypervisor"
	"github.com/knib/knib/internal/hypervisor/hvtest"
	"github.com/knib/knib/internal/qemuimg"
	"github.com/knib/knib/internal/testbed"
)

func guestCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// TestRealGuest runs the conformance suite against qemu:///system with the
// booted test guest (two qcow2 disks, guest agent, VNC display).
func TestRealGuest(t *testing.T) {
	d := testbed.NewDomain(t, testbed.DomainOptions{Name: "knib-t-lv-guest", DiskSizes: []int64{64 << 20, 32 << 20}, Start: true})
	if len(d.Disks) != 2 || len(d.Targets) != 2 {
		t.Fatalf("testbed made disks %v targets %v", d.Disks, d.Targets)
	}
	want := hypervisor.Domain{
		UUID: d.UUID, Name: d.Name, State: hypervisor.StateRunning, Persistent: true,
		VCPUs: 1, MemoryBytes: testbed.DefaultMemoryMiB << 20,
		Disks: []hypervisor.Disk{
			{Target: d.Targets[0], Device: "disk", Bus: "virtio", SourceType: "file", Source: d.Disks[0], Format: "qcow2", VirtualSize: 64 << 20},
			{Target: d.Targets[1], Device: "disk", Bus: "virtio", SourceType: "file", Source: d.Disks[1], Format: "qcow2", VirtualSize: 32 << 20},
		},
	}
	hvtest.Run(t, func(t *testing.T) hypervisor.Hypervisor { return openT(t, "qemu:///system") }, hvtest.Env{
		Domain:           want,
		AgentDomain:      d.UUID,
		EchoPath:         "/bin/echo",
		ScreenshotDomain: d.UUID,
	})

	h := openT(t, "qemu:///system")
	c := guestagent.New(h)

	t.Run("LiveXMLHasBackingStore", func(t *testing.T) {
		// The chain of a running domain comes from libvirt, not qemu-img:
		// libvirt closes each probed chain with an empty <backingStore/>.
		x, err := h.DomainXML(guestCtx(t), d.UUID, false)
		if err != nil {
			t.Fatal(err)
		}
		var dom libvirtxml.Domain
		if err := dom.Unmarshal(x); err != nil {
			t.Fatal(err)
		}
		for _, disk := range dom.Devices.Disks {
			if _, known := chainFromXML(disk.BackingStore); !known {
				t.Errorf("disk %s: live XML has no <backingStore>", disk.Target.Dev)
			}
		}
	})

	t.Run("ScreenshotPNG", func(t *testing.T) {
		var buf bytes.Buffer
		mime, err := h.Screenshot(guestCtx(t), d.UUID, &buf)
		if err != nil {
			t.Fatal(err)
		}
		if mime != "image/png" || !bytes.HasPrefix(buf.Bytes(), []byte("\x89PNG\r\n\x1a\n")) {
			t.Errorf("mime %q, first bytes % x", mime, buf.Bytes()[:min(8, buf.Len())])
		}
	})

	t.Run("ExecTrickyArgs", func(t *testing.T) {
		args := []string{`a"b`, `x","y":"z`, "line1\nline2", `{}`, `\`, `$(reboot)`, "'single'", ""}
		res, err := c.Exec(guestCtx(t), d.UUID, guestagent.ExecRequest{Path: "/bin/echo", Args: args})
		if err != nil {
			t.Fatal(err)
		}
		if want := strings.Join(args, " ") + "\n"; string(res.Stdout) != want {
			t.Errorf("stdout %q, want %q", res.Stdout, want)
		}
	})

	t.Run("ExecStdinStderrExitCode", func(t *testing.T) {
		res, err := c.Exec(guestCtx(t), d.UUID, guestagent.ExecRequest{
			Path: "/bin/sh", Args: []string{"-c", `cat; echo "to stderr" >&2; exit 7`}, Input: []byte("from stdin\x00\xff"),
		})
		if err != nil {
			t.Fatal(err)
		}
		if string(res.Stdout) != "from stdin\x00\xff" || string(res.Stderr) != "to stderr\n" || res.ExitCode != 7 {
			t.Errorf("got %+v", res)
		}
	})

	t.Run("ExecMissingProgram", func(t *testing.T) {
		_, err := c.Exec(guestCtx(t), d.UUID, guestagent.ExecRequest{Path: "/no/such/program"})
		var ae *guestagent.AgentError
		if !errors.As(err, &ae) || ae.Command != "guest-exec" {
			t.Errorf("got %v, want *guestagent.AgentError for guest-exec", err)
		}
	})

	// Last: it leaves the guest agent stopped.
	t.Run("AgentTimeout", func(t *testing.T) { testAgentTimeout(t, h, d.UUID) })
}

// testAgentTimeout stops the guest's qemu-ga (SIGSTOP, from a child it
// runs) and checks that a command then fails within its context's deadline
// as a timeout. It leaves the agent unusable: run it last on a domain.
func testAgentTimeout(t *testing.T, h *Hypervisor, uuid string) {
	c := guestagent.New(h)
	var started struct{ PID int }
	if err := c.Call(guestCtx(t), uuid, "guest-exec", map[string]any{
		"path": "/bin/sh", "arg": []string{"-c", "sleep 0.2; kill -STOP $PPID"},
	}, &started); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	err := c.Ping(ctx, uuid)
	took := time.Since(start)
	if !errors.Is(err, guestagent.ErrAgentTimeout) && !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("ping of a stopped agent: %v, want a timeout", err)
	}
	if took > 5*time.Second {
		t.Errorf("ping of a stopped agent took %v, want about 2 s", took)
	}
	t.Logf("ping of a stopped agent after %v: %v", took.Round(10*time.Millisecond), err)
}

// TestRealGuestBackingChain gives a stopped test domain a chain of two
// external overlays, then checks the chain reported from qemu-img (domain
// stopped) and from libvirt's live XML (domain running).
func TestRealGuestBackingChain(t *testing.T) {
	d := testbed.NewDomain(t, testbed.DomainOptions{Name: "knib-t-lv-chain", DiskSizes: []int64{64 << 20}})
	ctx := guestCtx(t)
	base := d.Disks[0]
	mid := filepath.Join(d.Dir, "vda-1.qcow2")
	top := filepath.Join(d.Dir, "vda-2.qcow2")
	if err := qemuimg.Default.Create(ctx, mid, "qcow2", 0, &qemuimg.Backing{Path: base, Format: "qcow2"}); err != nil {
		t.Fatal(err)
	}
	if err := qemuimg.Default.Create(ctx, top, "qcow2", 0, &qemuimg.Backing{Path: mid, Format: "qcow2"}); err != nil {
		t.Fatal(err)
	}

	h := openT(t, "qemu:///system")
	// Redefine the domain with the top overlay as vda's source.
	x, err := h.DomainXML(ctx, d.UUID, true)
	if err != nil {
		t.Fatal(err)
	}
	var def libvirtxml.Domain
	if err := def.Unmarshal(x); err != nil {
		t.Fatal(err)
	}
	def.Devices.Disks[0].Source.File.File = top
	doc, err := def.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Libvirt().DomainDefineXML(doc); err != nil {
		t.Fatal(err)
	}

	wantChain := []hypervisor.Layer{{Path: mid, Format: "qcow2"}, {Path: base, Format: "qcow2"}}
	check := func(t *testing.T, state hypervisor.DomainState) {
		t.Helper()
		dom, err := h.Domain(ctx, d.UUID)
		if err != nil {
			t.Fatal(err)
		}
		if dom.State != state || len(dom.Disks) != 1 {
			t.Fatalf("state %q, %d disks", dom.State, len(dom.Disks))
		}
		disk := dom.Disks[0]
		if disk.Source != top || disk.Format != "qcow2" || disk.VirtualSize != 64<<20 || disk.Problem != "" {
			t.Errorf("disk %+v", disk)
		}
		if !slices.Equal(disk.BackingChain, wantChain) {
			t.Errorf("backing chain %+v, want %+v", disk.BackingChain, wantChain)
		}
	}

	t.Run("Stopped", func(t *testing.T) {
		check(t, hypervisor.StateShutoff)
		if err := guestagent.New(h).Ping(ctx, d.UUID); !errors.Is(err, guestagent.ErrAgentUnavailable) {
			t.Errorf("ping of stopped domain: %v, want ErrAgentUnavailable", err)
		}
		var buf bytes.Buffer
		if _, err := h.Screenshot(ctx, d.UUID, &buf); !errors.Is(err, hypervisor.ErrUnsupported) {
			t.Errorf("screenshot of stopped domain: %v, want ErrUnsupported", err)
		}
	})

	t.Run("Running", func(t *testing.T) {
		if err := d.Start(ctx); err != nil {
			t.Fatalf("start: %v\n%s", err, d.Console())
		}
		x, err := h.DomainXML(ctx, d.UUID, false)
		if err != nil {
			t.Fatal(err)
		}
		var live libvirtxml.Domain
		if err := live.Unmarshal(x); err != nil {
			t.Fatal(err)
		}
		chain, known := chainFromXML(live.Devices.Disks[0].BackingStore)
		if !known || !slices.Equal(chain, wantChain) {
			t.Errorf("live XML chain %+v (known %v), want %+v", chain, known, wantChain)
		}
		check(t, hypervisor.StateRunning)
		if err := guestagent.New(h).Sync(ctx, d.UUID); err != nil {
			t.Errorf("sync: %v", err)
		}
	})
}

// TestSecondHost runs the conformance suite against the second,
// independent libvirt daemon (testbed.SecondHost) with a booted test guest
// defined there, and checks the domain is not visible on the first daemon.
func TestSecondHost(t *testing.T) {
	host := testbed.SecondHost(t)
	d := testbed.NewDomainOn(t, host, testbed.DomainOptions{Name: "knib-t-lv-hostb", DiskSizes: []int64{64 << 20}, Start: true})
	want := hypervisor.Domain{
		UUID: d.UUID, Name: d.Name, State: hypervisor.StateRunning, Persistent: true,
		Disks: []hypervisor.Disk{
			{Target: d.Targets[0], Device: "disk", Bus: "virtio", SourceType: "file", Source: d.Disks[0], Format: "qcow2", VirtualSize: 64 << 20},
		},
	}
	hvtest.Run(t, func(t *testing.T) hypervisor.Hypervisor { return openT(t, host.URI) }, hvtest.Env{
		Domain:           want,
		AgentDomain:      d.UUID,
		EchoPath:         "/bin/echo",
		ScreenshotDomain: d.UUID,
	})
	t.Run("ScreenshotPNG", func(t *testing.T) {
		var buf bytes.Buffer
		mime, err := openT(t, host.URI).Screenshot(guestCtx(t), d.UUID, &buf)
		if err != nil {
			t.Fatal(err)
		}
		if mime != "image/png" || !bytes.HasPrefix(buf.Bytes(), []byte("\x89PNG\r\n\x1a\n")) {
			t.Errorf("mime %q, first bytes % x", mime, buf.Bytes()[:min(8, buf.Len())])
		}
	})
	t.Run("IndependentOfFirstDaemon", func(t *testing.T) {
		first := openT(t, "qemu:///system")
		if _, err := first.Domain(guestCtx(t), d.UUID); !errors.Is(err, hypervisor.ErrDomainNotFound) {
			t.Errorf("first daemon looking up host B's domain: %v, want ErrDomainNotFound", err)
		}
	})
}

// The chain conformance suite on the real adapter: the same clauses the
// fake passes, on qemu:///system with real qcow2 files (no guest needed:
// the domains run firmware only).
func TestChainOpsConformance(t *testing.T) {
	testbed.Require(t)
	dir := filepath.Join(testbed.ImagesDir, "hvtest-chainops")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	hvtest.RunChainOps(t, func(t *testing.T) hvtest.ChainHV { return openT(t, "qemu:///system") }, hvtest.ChainEnv{Dir: dir, Prefix: "knib-t-hvt-"})
}
