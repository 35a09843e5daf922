package lv

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/knib/knib/internal/guestagent"
	"github.com/knib/knib/internal/hypervisor"
)

func TestSocketFor(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", "/run/user/1000")
	for _, c := range []struct {
		uri, sock, remote string
	}{
		{"qemu:///system", SystemSocket, "qemu:///system"},
		{"qemu+unix:///system", SystemSocket, "qemu:///system"},
		{"test:///default", SystemSocket, "test:///default"},
		{"qemu:///session", "/run/user/1000/libvirt/libvirt-sock", "qemu:///session"},
		{"qemu:///system?socket=/tmp/s", "/tmp/s", "qemu:///system"},
		{"qemu:///system?socket=/tmp/s&screenshot_dir=/var/lib/x", "/tmp/s", "qemu:///system"},
	} {
		sock, remote, err := socketFor(c.uri)
		if err != nil || sock != c.sock || string(remote) != c.remote {
			t.Errorf("socketFor(%q) = %q, %q, %v; want %q, %q", c.uri, sock, remote, err, c.sock, c.remote)
		}
	}
	for _, bad := range []string{"qemu+ssh://host/system", "qemu://host/system", "qemu:///weird", "://x", "/system"} {
		if _, _, err := socketFor(bad); err == nil {
			t.Errorf("socketFor(%q): want error", bad)
		}
	}
}

func TestVersion(t *testing.T) {
	if got := version(9000000); got != "9.0.0" {
		t.Errorf("version = %q", got)
	}
	if got := version(7002022); got != "7.2.22" {
		t.Errorf("version = %q", got)
	}
}

func TestAgentTimeout(t *testing.T) {
	if got := agentTimeout(context.Background()); got != 30 {
		t.Errorf("no deadline: %d", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
	defer cancel()
	if got := agentTimeout(ctx); got != 3 {
		t.Errorf("2.5 s: %d", got)
	}
	ctx, cancel = context.WithTimeout(context.Background(), -time.Second)
	defer cancel()
	if got := agentTimeout(ctx); got != 1 {
		t.Errorf("past deadline: %d", got)
	}
}

func TestAgentErrorMapping(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		err  error
		want error
	}{
		{libvirt.Error{Code: uint32(libvirt.ErrNoDomain), Message: "Domain not found"}, hypervisor.ErrDomainNotFound},
		{libvirt.Error{Code: uint32(libvirt.ErrOperationInvalid), Message: "Requested operation is not valid: domain is not running"}, guestagent.ErrAgentUnavailable},
		{libvirt.Error{Code: uint32(libvirt.ErrAgentUnresponsive), Message: "Guest agent is not responding: QEMU guest agent is not connected"}, guestagent.ErrAgentUnavailable},
		{libvirt.Error{Code: uint32(libvirt.ErrAgentUnresponsive), Message: "Guest agent is not responding: Guest agent not available for now"}, guestagent.ErrAgentTimeout},
		{libvirt.Error{Code: uint32(libvirt.ErrNoSupport), Message: "this function is not supported by the connection driver: virDomainQemuAgentCommand"}, guestagent.ErrAgentUnavailable},
	} {
		if got := agentError(ctx, c.err); !errors.Is(got, c.want) {
			t.Errorf("%v: got %v, want %v", c.err, got, c.want)
		}
	}
	err := agentError(ctx, libvirt.Error{Code: uint32(libvirt.ErrInternalError),
		Message: "internal error: unable to execute QEMU agent command 'guest-exec': Failed to execute child process “/nope” (No such file or directory)"})
	var ae *guestagent.AgentError
	if !errors.As(err, &ae) || ae.Command != "guest-exec" || ae.Desc != "Failed to execute child process “/nope” (No such file or directory)" {
		t.Errorf("agent error reply: %v (%+v)", err, ae)
	}
}

func TestSniffImage(t *testing.T) {
	png := append([]byte("\x89PNG\r\n\x1a\n...."), 0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xae, 0x42, 0x60, 0x82)
	if got := sniffImage(png); got != "image/png" {
		t.Errorf("png: %q", got)
	}
	if got := sniffImage(png[:len(png)-1]); got != "" {
		t.Errorf("truncated png: %q", got)
	}
	if got := sniffImage([]byte("P6\n640 480\n255\n...")); got != "image/x-portable-pixmap" {
		t.Errorf("ppm: %q", got)
	}
}

// liveXML is what libvirt 9 shows for a running domain with an overlay
// chain, an empty cdrom, a network disk and a block disk.
const liveXML = `<domain type='qemu' id='3'>
  <name>vm</name><uuid>5f1c1e0a-8d1b-4a57-9a53-3f4f0e1d2c3b</uuid>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/img/top.qcow2' index='3'/>
      <backingStore type='file' index='2'>
        <format type='qcow2'/>
        <source file='/img/mid.qcow2'/>
        <backingStore type='file' index='1'>
          <format type='raw'/>
          <source file='/img/base.raw'/>
          <backingStore/>
        </backingStore>
      </backingStore>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <target dev='sda' bus='sata'/>
      <readonly/>
    </disk>
    <disk type='network' device='disk'>
      <driver name='qemu' type='raw'/>
      <source protocol='rbd' name='pool/image'/>
      <target dev='vdb' bus='virtio'/>
    </disk>
    <disk type='block' device='lun'>
      <driver name='qemu' type='raw'/>
      <source dev='/dev/sdz'/>
      <backingStore/>
      <target dev='sdb' bus='scsi'/>
    </disk>
  </devices>
</domain>`

func TestDiskFromXML(t *testing.T) {
	var x libvirtxml.Domain
	if err := x.Unmarshal(liveXML); err != nil {
		t.Fatal(err)
	}
	type result struct {
		disk  hypervisor.Disk
		chain []hypervisor.Layer
		known bool
	}
	var got []result
	for _, xd := range x.Devices.Disks {
		d, bs := diskFromXML(xd)
		chain, known := chainFromXML(bs)
		got = append(got, result{d, chain, known})
	}
	want := []result{
		{hypervisor.Disk{Target: "vda", Device: "disk", Bus: "virtio", SourceType: "file", Source: "/img/top.qcow2", Format: "qcow2"},
			[]hypervisor.Layer{{Path: "/img/mid.qcow2", Format: "qcow2"}, {Path: "/img/base.raw", Format: "raw"}}, true},
		{hypervisor.Disk{Target: "sda", Device: "cdrom", Bus: "sata", Format: "raw"}, nil, false},
		{hypervisor.Disk{Target: "vdb", Device: "disk", Bus: "virtio", SourceType: "network", Source: "rbd:pool/image", Format: "raw"}, nil, false},
		{hypervisor.Disk{Target: "sdb", Device: "lun", Bus: "scsi", SourceType: "block", Source: "/dev/sdz", Format: "raw"}, nil, true},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d disks", len(got))
	}
	for i := range want {
		g, w := got[i], want[i]
		if fmt.Sprint(g.disk) != fmt.Sprint(w.disk) || !slices.Equal(g.chain, w.chain) || g.known != w.known {
			t.Errorf("disk %d:\n got %+v %+v %v\nwant %+v %+v %v", i, g.disk, g.chain, g.known, w.disk, w.chain, w.known)
		}
	}
}
