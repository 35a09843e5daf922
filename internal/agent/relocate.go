package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"libvirt.org/go/libvirtxml"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/hypervisor"
)

// DefaultDiskDir is where an agent puts the disks of VMs restored onto its
// host from another host, when its configuration names no other.
const DefaultDiskDir = "/var/lib/libvirt/images/knib"

func (a *Local) diskDir() string {
	if a.cfg.DiskDir != "" {
		return a.cfg.DiskDir
	}
	return DefaultDiskDir
}

// restoreHere runs KindRestoreHere (see agentapi.RestoreHereRequest).
func (a *Local) restoreHere(ctx context.Context, req agentapi.RestoreHereRequest, progress func(float64, string)) (any, error) {
	if req.DomainUUID == "" || !filepath.IsLocal(req.DomainUUID) || strings.ContainsAny(req.DomainUUID, `/\`) {
		return nil, cleanError{fmt.Errorf("invalid domain uuid %q", req.DomainUUID)}
	}
	dir, storedXML, bases, err := a.openBackup(req.Storage, req.Dir)
	if err != nil {
		return nil, err
	}
	vmDir := filepath.Join(a.diskDir(), req.DomainUUID)
	res := agentapi.RestoreResult{UUID: req.DomainUUID}

	dom, err := a.hv.Domain(ctx, req.DomainUUID)
	defined := err == nil
	switch {
	case errors.Is(err, hypervisor.ErrDomainNotFound):
	case err != nil:
		return nil, cleanError{err}
	default:
		for _, d := range dom.Disks {
			if d.Device == "disk" && filepath.Dir(d.Source) != vmDir {
				return nil, cleanError{fmt.Errorf("domain %s (%s) is already defined on this host with disk %s at %s, outside %s; not replacing it",
					dom.Name, dom.UUID, d.Target, d.Source, vmDir)}
			}
		}
		res.Name = dom.Name
		if dom.State == hypervisor.StateRunning || dom.State == hypervisor.StatePaused {
			if !req.Quick {
				return nil, cleanError{fmt.Errorf("domain %s is %s on this host; stop it before restoring", dom.Name, dom.State)}
			}
			// An earlier attempt got as far as starting it: done.
			for _, f := range req.Files {
				res.Disks = append(res.Disks, agentapi.RestoredDisk{Target: f.Disk, Path: filepath.Join(vmDir, f.Disk+".qcow2"), Verified: verifiedLabel(true)})
			}
			res.Started = true
			return res, nil
		}
	}
	if err := a.perm.MkdirAll(vmDir); err != nil {
		return nil, cleanError{err}
	}
	var trash []string
	defer func() {
		if len(trash) > 0 {
			go removeFiles(trash)
		}
	}()
	var chk *check
	if !req.Quick {
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		chk = startCheck(cctx, req.Storage, req.Verify)
	}
	dests := map[string]string{}
	formats := map[string]string{}
	for i, f := range req.Files {
		progress(5+80*float64(i)/float64(len(req.Files)), "restoring "+f.Disk)
		if !validTarget(f.Disk) {
			return res, cleanError{fmt.Errorf("invalid disk target %q", f.Disk)}
		}
		src, err := inStorage(req.Storage, f.Path)
		if err != nil {
			return res, cleanError{err}
		}
		format := bases[f.Disk].Format
		if req.Quick || format == "" {
			format = "qcow2"
		}
		dest := filepath.Join(vmDir, f.Disk+"."+format)
		verified, err := a.writeDisk(ctx, src, dest, format, req.Quick, &trash)
		if err != nil {
			err = chk.or(fmt.Errorf("restore disk %s: %w", f.Disk, err))
			if damageOf(err) != nil {
				for _, d := range dests {
					os.Remove(d)
				}
			}
			return res, err
		}
		dests[f.Disk], formats[f.Disk] = dest, format
		res.Disks = append(res.Disks, agentapi.RestoredDisk{Target: f.Disk, Path: dest, Verified: verified})
	}
	// The disks here are new files of this host; the VM is defined (or its
	// disks used) only from intact backup files.
	damaged, err := chk.result(req.Verify)
	if err != nil {
		if damageOf(err) != nil {
			for _, d := range dests {
				os.Remove(d)
			}
			return res, cleanError{err}
		}
		return res, err
	}
	res.Damaged = damaged
	if !defined {
		progress(88, "defining the VM from the backup")
		doc, err := a.rewriteDefinition(storedXML, func(def *libvirtxml.Domain) error {
			if def.UUID != req.DomainUUID {
				return fmt.Errorf("the backup belongs to domain %s, not %s", def.UUID, req.DomainUUID)
			}
			if def.Devices != nil {
				// Console logs go with the disks: the old host's
				// directories need not exist here.
				for _, p := range serialFiles(def) {
					*p = filepath.Join(vmDir, filepath.Base(*p))
				}
				// Disks not in the backup are dropped: they live on the
				// old host.
				keepDisks(def, dests)
			}
			return pointDisks(def, func(target string) (string, string, bool) {
				p, ok := dests[target]
				return p, formats[target], ok
			})
		})
		if err != nil {
			return res, cleanError{err}
		}
		if err := a.restoreBootFiles(dir, storedXML); err != nil {
			return res, err
		}
		if _, err := a.hv.DefineDomain(ctx, doc); err != nil {
			return res, err
		}
		res.Defined = true
	}
	if dom, err := a.hv.Domain(ctx, req.DomainUUID); err == nil {
		res.Name = dom.Name
	}
	if req.Quick {
		progress(95, "starting the VM")
		if err := a.hv.StartDomain(ctx, req.DomainUUID); err != nil {
			return res, err
		}
		res.Started = true
	}
	return res, nil
}

// validTarget accepts disk target names such as vda, sdb, hdc, xvda.
func validTarget(t string) bool {
	if t == "" || len(t) > 16 {
		return false
	}
	for _, c := range t {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// undefine runs KindUndefine (see agentapi.UndefineRequest).
func (a *Local) undefine(ctx context.Context, req agentapi.UndefineRequest, progress func(float64, string)) (any, error) {
	dom, err := a.hv.Domain(ctx, req.DomainUUID)
	if errors.Is(err, hypervisor.ErrDomainNotFound) {
		return agentapi.UndefineResult{}, nil
	}
	if err != nil {
		return nil, cleanError{err}
	}
	if dom.State != hypervisor.StateShutoff && dom.State != hypervisor.StateCrashed {
		return nil, cleanError{fmt.Errorf("domain %s is %s on this host; not undefining a VM that runs", dom.Name, dom.State)}
	}
	res := agentapi.UndefineResult{Undefined: true}
	for _, d := range dom.Disks {
		if d.Source != "" {
			res.Files = append(res.Files, d.Source)
		}
	}
	if err := a.hv.UndefineDomain(ctx, req.DomainUUID); err != nil && !errors.Is(err, hypervisor.ErrDomainNotFound) {
		return nil, err
	}
	a.log.Info("vm undefined; its disk files stay", "vm", dom.Name, "uuid", dom.UUID, "files", res.Files)
	return res, nil
}
