package lv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/knib/knib/internal/hypervisor"
	"github.com/knib/knib/internal/hypervisor/hvtest"
	"github.com/knib/knib/internal/qemuimg"
)

// requireLibvirt skips the test when libvirt's system socket cannot be
// connected, or fails it when KNIB_TEST_REQUIRE_INFRA=1.
func requireLibvirt(t *testing.T) {
	t.Helper()
	c, err := net.DialTimeout("unix", SystemSocket, 2*time.Second)
	if err == nil {
		c.Close()
		return
	}
	if os.Getenv("KNIB_TEST_REQUIRE_INFRA") == "1" {
		t.Fatalf("libvirt socket unavailable and KNIB_TEST_REQUIRE_INFRA=1: %v", err)
	}
	t.Skipf("libvirt socket unavailable: %v", err)
}

func openT(t *testing.T, uri string) *Hypervisor {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h, err := Open(ctx, uri, WithLogger(slog.New(slog.NewTextHandler(t.Output(), nil))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}

func randomName(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// defineTestDomain defines a domain in test:///default (whose state lives in
// the daemon, shared by every client) and undefines it when the test ends.
func defineTestDomain(t *testing.T, h *Hypervisor, x *libvirtxml.Domain, start bool) libvirt.Domain {
	t.Helper()
	doc, err := x.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	l := h.Libvirt()
	d, err := l.DomainDefineXML(doc)
	if err != nil {
		t.Fatalf("define: %v", err)
	}
	t.Cleanup(func() {
		_ = l.DomainDestroy(d)
		if err := l.DomainUndefine(d); err != nil && !libvirt.IsNotFound(err) {
			t.Errorf("undefine %s: %v", x.Name, err)
		}
	})
	if start {
		if err := l.DomainCreate(d); err != nil {
			t.Fatalf("start: %v", err)
		}
	}
	return d
}

func fileDisk(target, bus, format, path string) libvirtxml.DomainDisk {
	return libvirtxml.DomainDisk{
		Device: "disk",
		Driver: &libvirtxml.DomainDiskDriver{Name: "qemu", Type: format},
		Source: &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: path}},
		Target: &libvirtxml.DomainDiskTarget{Dev: target, Bus: bus},
	}
}

// TestTestDriver runs the conformance suite against libvirt's test driver
// with two domains of our own: a stopped one whose first disk is the top
// of a three-image chain that only qemu-img can describe (the test driver
// reports no <backingStore>), and a running one for screenshots.
func TestTestDriver(t *testing.T) {
	requireLibvirt(t)
	if _, err := os.Stat("/usr/bin/qemu-img"); err != nil && os.Getenv("KNIB_TEST_REQUIRE_INFRA") != "1" {
		t.Skip("qemu-img missing")
	}
	ctx := context.Background()
	dir := t.TempDir()
	base := filepath.Join(dir, "base.qcow2")
	mid := filepath.Join(dir, "mid.qcow2")
	top := filepath.Join(dir, "top.qcow2")
	data := filepath.Join(dir, "data.raw")
	for _, step := range []func() error{
		func() error { return qemuimg.Default.Create(ctx, base, "qcow2", 4<<20, nil) },
		func() error {
			return qemuimg.Default.Create(ctx, mid, "qcow2", 0, &qemuimg.Backing{Path: "base.qcow2", Format: "qcow2"})
		},
		func() error {
			return qemuimg.Default.Create(ctx, top, "qcow2", 0, &qemuimg.Backing{Path: mid, Format: "qcow2"})
		},
		func() error { return qemuimg.Default.Create(ctx, data, "raw", 1<<20, nil) },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}

	h := openT(t, "test:///default")
	stopped := &libvirtxml.Domain{
		Type: "test", Name: randomName("knib-t-lv-"),
		Memory: &libvirtxml.DomainMemory{Value: 64, Unit: "MiB"},
		OS:     &libvirtxml.DomainOS{Type: &libvirtxml.DomainOSType{Type: "hvm"}},
		Devices: &libvirtxml.DomainDeviceList{Disks: []libvirtxml.DomainDisk{
			fileDisk("vda", "virtio", "qcow2", top),
			fileDisk("vdb", "virtio", "raw", data),
			{Device: "cdrom", Driver: &libvirtxml.DomainDiskDriver{Name: "qemu", Type: "raw"},
				Target: &libvirtxml.DomainDiskTarget{Dev: "hdc", Bus: "ide"}},
		}},
	}
	sd := defineTestDomain(t, h, stopped, false)
	running := &libvirtxml.Domain{
		Type: "test", Name: randomName("knib-t-lv-run-"),
		Memory: &libvirtxml.DomainMemory{Value: 64, Unit: "MiB"},
		OS:     &libvirtxml.DomainOS{Type: &libvirtxml.DomainOSType{Type: "hvm"}},
	}
	rd := defineTestDomain(t, h, running, true)

	want := hypervisor.Domain{
		UUID: hypervisor.FormatUUID(sd.UUID), Name: stopped.Name, State: hypervisor.StateShutoff, Persistent: true,
		Disks: []hypervisor.Disk{
			// The test driver invents block sizes, so VirtualSize is not
			// compared here (the real-guest test does).
			{Target: "vda", Device: "disk", Bus: "virtio", SourceType: "file", Source: top, Format: "qcow2",
				BackingChain: []hypervisor.Layer{{Path: mid, Format: "qcow2"}, {Path: base, Format: "qcow2"}}},
			{Target: "vdb", Device: "disk", Bus: "virtio", SourceType: "file", Source: data, Format: "raw", BackingChain: nil},
			{Target: "hdc", Device: "cdrom", Bus: "ide", Format: "raw"},
		},
	}
	hvtest.Run(t, func(t *testing.T) hypervisor.Hypervisor { return openT(t, "test:///default") }, hvtest.Env{
		Domain:        want,
		StoppedDomain: want.UUID,
		// No ScreenshotDomain: screenshots go through QEMU's monitor
		// (screendump), which the test driver does not have; the real-guest
		// suite covers them.
	})
	_ = rd

	t.Run("HostInfoURI", func(t *testing.T) {
		hi, err := h.HostInfo(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if hi.URI != "test:///default" {
			t.Errorf("URI %q", hi.URI)
		}
	})

	t.Run("MissingImageIsAProblem", func(t *testing.T) {
		if err := os.Remove(data); err != nil {
			t.Fatal(err)
		}
		d, err := h.Domain(ctx, want.UUID)
		if err != nil {
			t.Fatal(err)
		}
		if d.Disks[1].Problem == "" || d.Disks[0].Problem != "" {
			t.Errorf("problems: vda %q, vdb %q", d.Disks[0].Problem, d.Disks[1].Problem)
		}
	})

	t.Run("CanceledDuringCall", func(t *testing.T) {
		c, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := h.Domain(c, want.UUID); !errors.Is(err, context.Canceled) {
			t.Errorf("got %v", err)
		}
	})
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := Open(ctx, "qemu+ssh://host/system"); err == nil {
		t.Error("remote uri: want error")
	}
	if _, err := Open(ctx, "qemu:///system", WithSocket(filepath.Join(t.TempDir(), "none"))); err == nil {
		t.Error("missing socket: want error")
	}
}
