package hvtest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"libvirt.org/go/libvirtxml"

	"github.com/knib/knib/internal/hypervisor"
	"github.com/knib/knib/internal/qemuimg"
)

// ChainHV is what the chain conformance suite drives: the base interface,
// ChainOps and Transient.
type ChainHV interface {
	hypervisor.Hypervisor
	hypervisor.ChainOps
	hypervisor.Transient
}

// ChainEnv describes where the suite may work.
type ChainEnv struct {
	// Dir is an existing directory the hypervisor can read and write image
	// files in; the suite creates its qcow2 files there.
	Dir string
	// Prefix starts the name of every domain the suite creates; leftovers
	// with it are removed first.
	Prefix string
}

// RunChainOps checks every clause of the ChainOps and Transient contracts
// (internal/hypervisor/chainops.go) on real qcow2 files: the chains the
// hypervisor reports after each operation, atomicity of a refused
// snapshot, and the life of transient domains. The same suite runs on the
// fake and on the libvirt adapter.
func RunChainOps(t *testing.T, open func(t *testing.T) ChainHV, env ChainEnv) {
	hv := open(t)
	t.Cleanup(func() {
		if err := hv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	ctx := func(t *testing.T) context.Context {
		c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		t.Cleanup(cancel)
		return c
	}
	cleanup := func(t *testing.T) {
		old, err := hv.DomainsNamed(context.Background(), env.Prefix)
		if err != nil {
			t.Fatalf("DomainsNamed: %v", err)
		}
		for _, u := range old {
			remove(t, hv, u)
		}
	}
	cleanup(t)
	t.Cleanup(func() { cleanup(t) })

	img := func(t *testing.T, name string, size int64, backing string) string {
		t.Helper()
		p := filepath.Join(env.Dir, name)
		os.Remove(p)
		var b *qemuimg.Backing
		if backing != "" {
			b = &qemuimg.Backing{Path: backing, Format: "qcow2"}
		}
		if err := qemuimg.Default.Create(ctx(t), p, "qcow2", size, b); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(p) })
		return p
	}
	// newDomain defines a domain named env.Prefix+name whose disks are the
	// given files (vda, vdb, ...): base ← top for the first one.
	newDomain := func(t *testing.T, name string, files ...string) string {
		t.Helper()
		doc, err := domainXML(env.Prefix+name, files, "", "")
		if err != nil {
			t.Fatal(err)
		}
		u, err := hv.DefineDomain(ctx(t), doc)
		if err != nil {
			t.Fatalf("DefineDomain: %v", err)
		}
		t.Cleanup(func() { remove(t, hv, u) })
		return u
	}
	disk := func(t *testing.T, uuid, target string) hypervisor.Disk {
		t.Helper()
		d, err := hv.Domain(ctx(t), uuid)
		if err != nil {
			t.Fatalf("Domain: %v", err)
		}
		for _, k := range d.Disks {
			if k.Target == target {
				return k
			}
		}
		t.Fatalf("disk %s not in %+v", target, d.Disks)
		return hypervisor.Disk{}
	}
	wantChain := func(t *testing.T, uuid, target, source string, backing ...string) {
		t.Helper()
		k := disk(t, uuid, target)
		var got []string
		for _, l := range k.BackingChain {
			got = append(got, l.Path)
		}
		if k.Source != source || !slices.Equal(got, backing) {
			t.Fatalf("disk %s: source %s backing %v, want %s %v", target, k.Source, got, source, backing)
		}
	}

	t.Run("DefineReportsTheRealChain", func(t *testing.T) {
		base := img(t, "def-base.qcow2", 16<<20, "")
		top := img(t, "def-top.qcow2", 0, base)
		u := newDomain(t, "def", top)
		d, err := hv.Domain(ctx(t), u)
		if err != nil || !d.Persistent || d.State != hypervisor.StateShutoff || d.Name != env.Prefix+"def" {
			t.Fatalf("defined domain %+v %v", d, err)
		}
		wantChain(t, u, "vda", top, base)
		if f := disk(t, u, "vda").BackingChain[0].Format; f != "qcow2" {
			t.Fatalf("backing format %q", f)
		}
	})

	t.Run("SnapshotsAndBlockJobs", func(t *testing.T) {
		base := img(t, "run-base.qcow2", 16<<20, "")
		top := img(t, "run-top.qcow2", 0, base)
		other := img(t, "run-other.qcow2", 8<<20, "")
		u := newDomain(t, "run", top, other)
		if err := hv.StartDomain(ctx(t), u); err != nil {
			t.Fatalf("StartDomain: %v", err)
		}
		if err := hv.StartDomain(ctx(t), u); err != nil {
			t.Fatalf("starting a running domain: %v", err)
		}
		if err := hv.ResumeDomain(ctx(t), u); err != nil {
			t.Fatalf("resuming a running domain: %v", err)
		}
		if d, err := hv.Domain(ctx(t), u); err != nil || d.State != hypervisor.StateRunning {
			t.Fatalf("after resuming a running domain: %+v %v", d, err)
		}
		ov := filepath.Join(env.Dir, "run-ov.qcow2")
		t.Cleanup(func() { os.Remove(ov) })

		// A snapshot naming a disk that is not attached changes nothing.
		err := hv.SnapshotDisks(ctx(t), u, []hypervisor.DiskSnapshot{{Target: "vda", File: ov}, {Target: "vdq", File: ov + ".q"}}, false)
		if err == nil {
			t.Fatal("a snapshot of an unattached disk succeeded")
		}
		wantChain(t, u, "vda", top, base)
		if _, err := os.Stat(ov); err == nil {
			t.Fatal("a refused snapshot left its overlay file")
		}

		// One atomic snapshot: the listed disk gets the overlay, the other stays.
		if err := hv.SnapshotDisks(ctx(t), u, []hypervisor.DiskSnapshot{{Target: "vda", File: ov}}, false); err != nil {
			t.Fatalf("SnapshotDisks: %v", err)
		}
		wantChain(t, u, "vda", ov, top, base)
		wantChain(t, u, "vdb", other)
		if _, err := os.Stat(ov); err != nil {
			t.Fatalf("overlay file: %v", err)
		}

		// No job: WaitBlockJob returns at once.
		if err := hv.WaitBlockJob(ctx(t), u, "vda", hypervisor.JobWait{}); err != nil {
			t.Fatalf("WaitBlockJob without a job: %v", err)
		}
		// Commit below the active layer: top goes into base.
		if err := hv.BlockCommit(ctx(t), u, "vda", top, base, false); err != nil {
			t.Fatalf("BlockCommit: %v", err)
		}
		if err := hv.WaitBlockJob(ctx(t), u, "vda", hypervisor.JobWait{Started: true}); err != nil {
			t.Fatalf("WaitBlockJob: %v", err)
		}
		wantChain(t, u, "vda", ov, base)
		// A base that is not below the top is refused.
		if err := hv.BlockCommit(ctx(t), u, "vda", base, ov, false); err == nil {
			t.Fatal("a commit of a base into its top was accepted")
		}
		// Active commit: the overlay goes into base and the disk pivots.
		if err := hv.BlockCommit(ctx(t), u, "vda", ov, base, true); err != nil {
			t.Fatalf("active BlockCommit: %v", err)
		}
		if err := hv.WaitBlockJob(ctx(t), u, "vda", hypervisor.JobWait{Started: true, Progress: func(cur, end uint64) {}}); err != nil {
			t.Fatalf("WaitBlockJob (pivot): %v", err)
		}
		wantChain(t, u, "vda", base)

		// Block pull: the active layer absorbs its backing chain.
		ov2 := filepath.Join(env.Dir, "run-ov2.qcow2")
		t.Cleanup(func() { os.Remove(ov2) })
		if err := hv.SnapshotDisks(ctx(t), u, []hypervisor.DiskSnapshot{{Target: "vda", File: ov2}}, false); err != nil {
			t.Fatalf("second SnapshotDisks: %v", err)
		}
		wantChain(t, u, "vda", ov2, base)
		if err := hv.BlockPull(ctx(t), u, "vda"); err != nil {
			t.Fatalf("BlockPull: %v", err)
		}
		if err := hv.WaitBlockJob(ctx(t), u, "vda", hypervisor.JobWait{Started: true}); err != nil {
			t.Fatalf("WaitBlockJob (pull): %v", err)
		}
		wantChain(t, u, "vda", ov2)
	})

	t.Run("StoppedDomainDisks", func(t *testing.T) {
		base := img(t, "st-base.qcow2", 16<<20, "")
		u := newDomain(t, "st", base)
		ov := img(t, "st-ov.qcow2", 0, base)
		if err := hv.SetDiskSources(ctx(t), u, map[string]hypervisor.Layer{"vda": {Path: ov, Format: "qcow2"}}); err != nil {
			t.Fatalf("SetDiskSources: %v", err)
		}
		wantChain(t, u, "vda", ov, base)
		if err := hv.SetDiskSources(ctx(t), u, map[string]hypervisor.Layer{"vdq": {Path: ov, Format: "qcow2"}}); err == nil {
			t.Fatal("SetDiskSources of an unknown disk succeeded")
		}
		extra := img(t, "st-extra.qcow2", 8<<20, "")
		if err := hv.AttachDisk(ctx(t), u, hypervisor.NewDisk{Target: "vdc", Bus: "virtio", Path: extra, Format: "qcow2"}, false); err != nil {
			t.Fatalf("AttachDisk: %v", err)
		}
		wantChain(t, u, "vdc", extra)
		if err := hv.DetachDisk(ctx(t), u, "vdc", false); err != nil {
			t.Fatalf("DetachDisk: %v", err)
		}
		d, err := hv.Domain(ctx(t), u)
		if err != nil || slices.ContainsFunc(d.Disks, func(k hypervisor.Disk) bool { return k.Target == "vdc" }) {
			t.Fatalf("detached disk still there: %+v %v", d.Disks, err)
		}
		if _, err := os.Stat(extra); err != nil {
			t.Fatalf("DetachDisk removed the file: %v", err)
		}
		if err := hv.DetachDisk(ctx(t), u, "vdq", false); err == nil {
			t.Fatal("detaching an unknown disk succeeded")
		}
		if err := hv.UndefineDomain(ctx(t), u); err != nil {
			t.Fatalf("UndefineDomain: %v", err)
		}
		if _, err := hv.Domain(ctx(t), u); !errors.Is(err, hypervisor.ErrDomainNotFound) {
			t.Fatalf("an undefined domain is still there: %v", err)
		}
		if _, err := os.Stat(base); err != nil {
			t.Fatalf("UndefineDomain removed a disk file: %v", err)
		}
	})

	t.Run("BootFilesThatExist", func(t *testing.T) {
		base := img(t, "boot-base.qcow2", 16<<20, "")
		kernel := filepath.Join(env.Dir, "boot-kernel")
		if err := os.WriteFile(kernel, []byte("not really a kernel"), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(kernel) })
		doc, err := domainXML(env.Prefix+"boot", []string{base}, kernel, filepath.Join(env.Dir, "boot-missing-initrd"))
		if err != nil {
			t.Fatal(err)
		}
		u, err := hv.DefineDomain(ctx(t), doc)
		if err != nil {
			t.Fatalf("DefineDomain: %v", err)
		}
		t.Cleanup(func() { remove(t, hv, u) })
		files, err := hv.BootFiles(ctx(t), u)
		if err != nil || !slices.Equal(files, []string{kernel}) {
			t.Fatalf("BootFiles %v %v, want only the kernel", files, err)
		}
	})

	t.Run("TransientDomains", func(t *testing.T) {
		base := img(t, "tr-base.qcow2", 16<<20, "")
		doc, err := domainXML(env.Prefix+"tr", []string{base}, "", "")
		if err != nil {
			t.Fatal(err)
		}
		u, err := hv.CreateTransient(ctx(t), doc)
		if err != nil {
			t.Fatalf("CreateTransient: %v", err)
		}
		d, err := hv.Domain(ctx(t), u)
		if err != nil || d.Persistent || d.State != hypervisor.StateRunning {
			t.Fatalf("transient domain %+v %v", d, err)
		}
		named, err := hv.DomainsNamed(ctx(t), env.Prefix+"tr")
		if err != nil || !slices.Contains(named, u) {
			t.Fatalf("DomainsNamed %v %v, want %s", named, err, u)
		}
		if err := hv.DestroyDomain(ctx(t), u); err != nil {
			t.Fatalf("DestroyDomain: %v", err)
		}
		if _, err := hv.Domain(ctx(t), u); !errors.Is(err, hypervisor.ErrDomainNotFound) {
			t.Fatalf("a destroyed transient domain is still there: %v", err)
		}
		if err := hv.DestroyDomain(ctx(t), u); err != nil {
			t.Fatalf("destroying an absent domain: %v", err)
		}
	})
}

// remove destroys and undefines a domain the suite made.
func remove(t *testing.T, hv ChainHV, uuid string) {
	ctx := context.Background()
	if err := hv.DestroyDomain(ctx, uuid); err != nil {
		t.Errorf("destroy %s: %v", uuid, err)
	}
	if err := hv.UndefineDomain(ctx, uuid); err != nil && !errors.Is(err, hypervisor.ErrDomainNotFound) {
		t.Errorf("undefine %s: %v", uuid, err)
	}
}

// domainXML is a small TCG domain with the given qcow2 disks (vda, vdb,
// ...), no network, and optionally a direct kernel boot.
func domainXML(name string, disks []string, kernel, initrd string) (string, error) {
	d := libvirtxml.Domain{
		Type:   "qemu",
		Name:   name,
		Memory: &libvirtxml.DomainMemory{Value: 64, Unit: "MiB"},
		VCPU:   &libvirtxml.DomainVCPU{Value: 1},
		OS: &libvirtxml.DomainOS{
			Type:   &libvirtxml.DomainOSType{Arch: "x86_64", Machine: "pc", Type: "hvm"},
			Kernel: kernel,
			Initrd: initrd,
		},
		Devices: &libvirtxml.DomainDeviceList{Emulator: "/usr/bin/qemu-system-x86_64"},
	}
	for i, p := range disks {
		d.Devices.Disks = append(d.Devices.Disks, libvirtxml.DomainDisk{
			Device: "disk",
			Driver: &libvirtxml.DomainDiskDriver{Name: "qemu", Type: "qcow2"},
			Source: &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: p}},
			Target: &libvirtxml.DomainDiskTarget{Dev: "vd" + string(rune('a'+i)), Bus: "virtio"},
		})
	}
	return d.Marshal()
}
