package agent

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/hypervisor"
)

var targetRE = regexp.MustCompile(`^vd[a-z]$`)

func (a *Local) attachDisk(ctx context.Context, req agentapi.AttachDiskRequest, progress func(float64, string)) (any, error) {
	if req.Size <= 0 {
		return nil, cleanError{errors.New("the disk size must be positive")}
	}
	dom, err := a.hv.Domain(ctx, req.DomainUUID)
	if err != nil {
		return nil, cleanError{err}
	}
	target := req.Target
	if target == "" {
		target = nextTarget(dom)
	}
	if !targetRE.MatchString(target) {
		return nil, cleanError{fmt.Errorf("target %q: want vda to vdz", target)}
	}
	dir := ""
	for _, d := range dom.Disks {
		if d.Target == target {
			return nil, cleanError{fmt.Errorf("the VM has a disk %s already", target)}
		}
		if dir == "" && d.SourceType == "file" && d.Source != "" {
			dir = filepath.Dir(d.Source)
		}
	}
	if dir == "" {
		return nil, cleanError{errors.New("the VM has no file disk to place the new disk next to")}
	}
	path := freeName(filepath.Join(dir, dom.Name+"-"+target+".qcow2"))
	progress(20, "creating "+path)
	if err := a.img.Create(ctx, path, "qcow2", req.Size, nil); err != nil {
		return nil, cleanError{err}
	}
	if err := a.perm.Disk(path); err != nil {
		removeIfExists(path)
		return nil, cleanError{err}
	}
	running := dom.State == hypervisor.StateRunning
	if err := a.hv.AttachDisk(ctx, dom.UUID, hypervisor.NewDisk{Target: target, Bus: "virtio", Path: path, Format: "qcow2"}, running); err != nil {
		removeIfExists(path)
		return nil, cleanError{err}
	}
	return agentapi.RestoredDisk{Target: target, Path: path, Attached: true}, nil
}

func (a *Local) detachDisk(ctx context.Context, req agentapi.DetachDiskRequest, progress func(float64, string)) (any, error) {
	dom, err := a.hv.Domain(ctx, req.DomainUUID)
	if err != nil {
		return nil, cleanError{err}
	}
	for _, d := range dom.Disks {
		if d.Target != req.Target {
			continue
		}
		if isDeltaOf(d.Source, dom.UUID) {
			return nil, cleanError{fmt.Errorf("disk %s still runs on a backup delta; merge it first", req.Target)}
		}
		if err := a.hv.DetachDisk(ctx, dom.UUID, req.Target, dom.State == hypervisor.StateRunning); err != nil {
			return nil, cleanError{err}
		}
		return agentapi.DetachDiskResult{Target: req.Target, Path: d.Source}, nil
	}
	return nil, cleanError{fmt.Errorf("the VM has no disk %s", req.Target)}
}
