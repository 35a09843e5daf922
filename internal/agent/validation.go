package agent

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"libvirt.org/go/libvirtxml"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/crashpoint"
	"github.com/knib/knib/internal/guestagent"
	"github.com/knib/knib/internal/qemuimg"
)

// validationDir is where a validation VM's overlays live (on the backup
// storage, readable by QEMU; never the backup's own directory).
func validationDir(backupID string) string { return filepath.Join("validation", backupID) }

func (a *Local) validate(ctx context.Context, req agentapi.ValidateRequest, progress func(float64, string)) (any, error) {
	if req.Lifetime > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, req.Lifetime)
		defer cancel()
	}
	dir, err := inStorage(req.Storage, req.Dir)
	if err != nil {
		return nil, err
	}
	work, err := inStorage(req.Storage, validationDir(req.BackupID))
	if err != nil {
		return nil, err
	}
	// The teardown of this backup's previous validation VM (same name,
	// same directory) ends first.
	if err := a.teardowns.wait(ctx, agentapi.ValidationPrefix+req.BackupID[:8]); err != nil {
		return nil, err
	}
	// A validation VM of this backup left by a dead agent process (kept by
	// the cleanup while its job ran) goes before the new one boots.
	a.destroyLeftover(ctx, agentapi.ValidationPrefix+req.BackupID[:8], work)
	os.RemoveAll(work)
	if err := a.perm.MkdirAll(work); err != nil {
		return nil, err
	}
	_, storedXML, err := a.readManifest(dir)
	if err != nil {
		return nil, err
	}
	name := agentapi.ValidationPrefix + req.BackupID[:8]
	overlays := map[string]string{}
	for _, f := range req.Files {
		src, err := inStorage(req.Storage, f.Path)
		if err != nil {
			return nil, err
		}
		ov := filepath.Join(work, f.Disk+".qcow2")
		if err := a.img.Create(ctx, ov, "qcow2", 0, &qemuimg.Backing{Path: src, Format: "qcow2"}); err != nil {
			return nil, err
		}
		// QEMU writes the overlay; the backup file below stays read-only.
		if err := a.perm.Disk(ov); err != nil {
			return nil, err
		}
		overlays[f.Disk] = ov
	}
	doc, err := a.rewriteDefinition(storedXML, func(def *libvirtxml.Domain) error {
		def.Name, def.UUID = name, ""
		if def.Devices != nil {
			def.Devices.Interfaces = nil // no network interface: the clone must not clash with the original
			kept := def.Devices.Disks[:0]
			for _, d := range def.Devices.Disks {
				if d.Target != nil && (d.Device == "" || d.Device == "disk") && overlays[d.Target.Dev] == "" {
					continue
				}
				kept = append(kept, d)
			}
			def.Devices.Disks = kept
			for _, p := range serialFiles(def) {
				*p = filepath.Join(work, filepath.Base(*p))
			}
		}
		if def.OS != nil {
			for _, p := range []*string{&def.OS.Kernel, &def.OS.Initrd} {
				if *p == "" {
					continue
				}
				if _, err := os.Stat(*p); err != nil {
					*p = filepath.Join(dir, "boot", filepath.Base(*p))
				}
			}
		}
		return pointDisks(def, func(target string) (string, string, bool) {
			p, ok := overlays[target]
			return p, "qcow2", ok
		})
	})
	if err != nil {
		return nil, err
	}
	progress(10, "booting "+name)
	uuid, err := a.hv.CreateTransient(ctx, doc)
	if err != nil {
		os.RemoveAll(work)
		return nil, err
	}
	crashpoint.Hit("validation.after-boot")
	// Always: destroy the VM and its overlays, even when the task is
	// cancelled. Once the verdict is known this happens after the task
	// ends (teardownLater); on any other way out, here.
	later := false
	defer func() {
		if !later {
			a.teardown(uuid, work)
		}
	}()
	res := agentapi.ValidateResult{Reasons: []string{}}
	if bootWanted(req) {
		progress(20, "waiting for the guest agent")
		res.Booted = a.waitBoot(ctx, uuid, req.BootTimeout)
		if !res.Booted {
			failStep(&res, "wait_for_boot", fmt.Sprintf("the guest agent did not answer guest-sync within %s", req.BootTimeout))
		} else {
			passStep(&res, "wait_for_boot", bootDetail(req))
		}
	}
	// The screenshot (after its wait, counted from the guest agent's
	// answer) and the command run at the same time; the steps are recorded
	// in their fixed order.
	var shot *agentapi.StepResult
	var shotErr error
	shotDone := make(chan struct{})
	if slices.Contains(req.Steps, "screenshot") {
		progress(50, "taking the screenshot")
		go func() {
			defer close(shotDone)
			shot, shotErr = a.validationScreenshot(ctx, uuid, req)
		}()
	} else {
		close(shotDone)
	}
	var cmd *agentapi.StepResult
	if slices.Contains(req.Steps, "execute_command") {
		if why := commandSkipped(req, res.Booted); why != "" {
			a.log.Warn("validation command not run", "backup", req.BackupID, "why", why)
			cmd = &agentapi.StepResult{Step: "execute_command", Outcome: agentapi.StepSkipped, Detail: why}
		} else {
			progress(70, "running "+req.Command)
			if reason := a.runCheck(ctx, uuid, req); reason != "" {
				cmd = &agentapi.StepResult{Step: "execute_command", Outcome: agentapi.StepFailed, Detail: reason}
			} else {
				cmd = &agentapi.StepResult{Step: "execute_command", Outcome: agentapi.StepPassed, Detail: "command " + req.Command + " passed"}
			}
		}
	}
	<-shotDone
	if shotErr != nil {
		return nil, shotErr
	}
	for _, st := range []*agentapi.StepResult{shot, cmd} {
		switch {
		case st == nil:
		case st.Outcome == agentapi.StepFailed:
			failStep(&res, st.Step, st.Detail)
		case st.Outcome == agentapi.StepPassed:
			if st.Step == "screenshot" {
				res.Screenshot = st.Detail
			}
			passStep(&res, st.Step, st.Detail)
		default:
			res.Steps = append(res.Steps, *st)
		}
	}
	// A VM that vanished under us proves nothing about the backup: no verdict.
	if _, err := a.hv.Domain(ctx, uuid); err != nil {
		return nil, fmt.Errorf("the validation VM disappeared during the validation: %w", err)
	}
	later = true
	a.teardowns.start(name, func() { a.teardown(uuid, work) })
	return res, nil
}

// teardown destroys a validation VM and removes its overlays. libvirt's
// destroy of a TCG guest takes 1.5 to 2 s here (SIGTERM, then QEMU's exit).
func (a *Local) teardown(uuid, work string) {
	cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a.hv.DestroyDomain(cctx, uuid)
	os.RemoveAll(work)
}

// validationTeardowns are the teardowns of validation VMs that run after
// their validation returned its verdict. The next validation of the same
// backup (same VM name, same overlay directory) waits for its
// predecessor's; the agent's Close waits for all of them, so a validation
// VM never outlives the process that ran it.
type validationTeardowns struct {
	mu      sync.Mutex
	wg      sync.WaitGroup
	pending map[string]chan struct{} // by VM name; closed when done
}

// start runs fn in the background as the teardown of VM name.
func (t *validationTeardowns) start(name string, fn func()) {
	t.mu.Lock()
	if t.pending == nil {
		t.pending = map[string]chan struct{}{}
	}
	done := make(chan struct{})
	prev := t.pending[name]
	t.pending[name] = done
	t.wg.Add(1)
	t.mu.Unlock()
	go func() {
		defer t.wg.Done()
		if prev != nil {
			<-prev
		}
		fn()
		t.mu.Lock()
		if t.pending[name] == done {
			delete(t.pending, name)
		}
		t.mu.Unlock()
		close(done)
	}()
}

// wait waits for the teardown of VM name, if one runs.
func (t *validationTeardowns) wait(ctx context.Context, name string) error {
	t.mu.Lock()
	done := t.pending[name]
	t.mu.Unlock()
	if done == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// waitAll waits for every teardown.
func (t *validationTeardowns) waitAll() { t.wg.Wait() }

// bootWanted reports whether a validation waits for the boot: when its steps
// ask for it, and for a command, which needs the guest agent.
func bootWanted(req agentapi.ValidateRequest) bool {
	return slices.Contains(req.Steps, "wait_for_boot") || (slices.Contains(req.Steps, "execute_command") && req.Command != "")
}

// bootDetail says why the boot was waited for when the steps did not ask.
func bootDetail(req agentapi.ValidateRequest) string {
	if slices.Contains(req.Steps, "wait_for_boot") {
		return ""
	}
	return "waited for by execute_command"
}

// commandSkipped says why the execute_command step does not run ("" when it
// runs): no command is set for the VM, or the guest did not boot.
func commandSkipped(req agentapi.ValidateRequest, booted bool) string {
	switch {
	case req.Command == "":
		return "no command: the VM detail backupValidationCommand is not set"
	case !booted:
		return "the guest agent did not answer: the command was not run"
	}
	return ""
}

// passStep records a step that passed.
func passStep(res *agentapi.ValidateResult, step, detail string) {
	res.Steps = append(res.Steps, agentapi.StepResult{Step: step, Outcome: agentapi.StepPassed, Detail: detail})
}

// failStep records a step that failed; its reason is one of the verdict's.
func failStep(res *agentapi.ValidateResult, step, reason string) {
	res.Reasons = append(res.Reasons, reason)
	res.Steps = append(res.Steps, agentapi.StepResult{Step: step, Outcome: agentapi.StepFailed, Detail: reason})
}

// validationScreenshot waits req.ScreenshotWait, then takes the screenshot
// and writes it beside the backup. The step's Detail is the screenshot's
// path when it passed, the reason when it failed; err is for what ends the
// whole validation (cancelled, the backup directory not writable).
func (a *Local) validationScreenshot(ctx context.Context, uuid string, req agentapi.ValidateRequest) (*agentapi.StepResult, error) {
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(req.ScreenshotWait):
	}
	var png bytes.Buffer
	if _, err := a.hv.Screenshot(ctx, uuid, &png); err != nil || png.Len() == 0 {
		return &agentapi.StepResult{Step: "screenshot", Outcome: agentapi.StepFailed, Detail: fmt.Sprintf("no screenshot: %v", err)}, nil
	}
	dir, err := inStorage(req.Storage, req.Dir)
	if err != nil {
		return nil, err
	}
	if err := a.writeFileAtomic(filepath.Join(dir, "screenshot.png"), png.Bytes()); err != nil {
		return nil, err
	}
	return &agentapi.StepResult{Step: "screenshot", Outcome: agentapi.StepPassed, Detail: filepath.Join(req.Dir, "screenshot.png")}, nil
}

// Boot polls: the first guest-sync goes out at once, then the interval
// grows from bootPollFirst to bootPollMax. Before the guest's agent runs,
// libvirt answers "not connected" at once, so the poll itself costs
// nothing; a short interval finds the boot's end within bootPollMax.
const (
	bootPollFirst = 50 * time.Millisecond
	bootPollMax   = 200 * time.Millisecond
)

// waitBoot sends guest-sync with a random id until the echo comes back.
func (a *Local) waitBoot(ctx context.Context, uuid string, timeout time.Duration) bool {
	deadline := a.now().Add(timeout)
	pause := bootPollFirst
	for a.now().Before(deadline) && ctx.Err() == nil {
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := a.ga.Sync(sctx, uuid)
		cancel()
		if err == nil {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(pause):
		}
		pause = min(pause*3/2, bootPollMax)
	}
	return false
}

// runCheck runs the validation command; "" means it passed.
func (a *Local) runCheck(ctx context.Context, uuid string, req agentapi.ValidateRequest) string {
	cctx, cancel := context.WithTimeout(ctx, req.CommandTimeout)
	defer cancel()
	out, err := a.ga.Exec(cctx, uuid, guestagent.ExecRequest{Path: req.Command, Args: req.Args})
	if errors.Is(cctx.Err(), context.DeadlineExceeded) {
		return fmt.Sprintf("command %s timed out after %s", req.Command, req.CommandTimeout)
	}
	if err != nil {
		return fmt.Sprintf("command %s: %v", req.Command, err)
	}
	got := base64.StdEncoding.EncodeToString(out.Stdout)
	if req.Expected != "" {
		if got != req.Expected {
			return fmt.Sprintf("expected output %s, got %s (%q)", req.Expected, got, out.Stdout)
		}
		return ""
	}
	if out.ExitCode != 0 {
		return fmt.Sprintf("command %s exited with code %d", req.Command, out.ExitCode)
	}
	return ""
}

func (a *Local) hashFiles(ctx context.Context, req agentapi.HashRequest, progress func(float64, string)) (any, error) {
	res := agentapi.HashResult{Hashes: map[string]string{}}
	for _, f := range req.Files {
		p, err := inStorage(req.Storage, f.Path)
		if err != nil {
			return nil, err
		}
		h, err := HashFile(p)
		if err != nil {
			return nil, err
		}
		res.Hashes[f.Disk] = h
	}
	damaged, err := checkFiles(ctx, req.Storage, req.Expected)
	if err != nil {
		return nil, err
	}
	res.Damaged = damaged
	return res, nil
}

// cleanupValidation destroys left-over validation VMs and their overlays,
// after a crash of the process that ran them. A validation VM is recognised
// by its name and is this agent's when its disks are in this agent's
// validation directory: validation VMs of other knib servers on the same
// host are left alone.
func (a *Local) cleanupValidation(ctx context.Context, req agentapi.CleanupValidationRequest, progress func(float64, string)) (any, error) {
	// The storages named that exist here.
	var roots []string
	for _, r := range req.Storages {
		if CheckStorageRoot(r) == nil && !slices.Contains(roots, r) {
			roots = append(roots, r)
		}
	}
	if len(roots) == 0 {
		return agentapi.CleanupValidationResult{}, nil
	}
	var mine []string
	for _, r := range roots {
		mine = append(mine, filepath.Join(r, "validation")+string(filepath.Separator))
	}
	uuids, err := a.hv.DomainsNamed(ctx, agentapi.ValidationPrefix)
	if err != nil {
		return nil, err
	}
	destroyed := 0
	for _, u := range uuids {
		dom, err := a.hv.Domain(ctx, u)
		if err != nil {
			continue
		}
		ours, kept := false, false
		for _, d := range dom.Disks {
			for _, m := range mine {
				ours = ours || strings.HasPrefix(d.Source, m)
				for _, k := range req.Keep {
					kept = kept || strings.HasPrefix(d.Source, m+k+string(filepath.Separator))
				}
			}
		}
		if !ours || kept {
			continue
		}
		if err := a.hv.DestroyDomain(ctx, u); err != nil {
			return nil, err
		}
		destroyed++
	}
	for _, r := range roots {
		vdir := filepath.Join(r, "validation")
		entries, _ := os.ReadDir(vdir)
		for _, e := range entries {
			if slices.Contains(req.Keep, e.Name()) {
				continue
			}
			p := filepath.Join(vdir, e.Name())
			if why := holdsBackups(p, req.Storages); why != "" {
				a.log.Warn("validation cleanup: left in place", "path", p, "reason", why)
				continue
			}
			os.RemoveAll(p)
		}
	}
	return agentapi.CleanupValidationResult{Destroyed: destroyed}, nil
}

// holdsBackups says why a path in a validation directory must not be
// removed, or "": it is (or holds) a backup storage named in storages, or
// it holds a backups/ tree (a storage knib does not know of here). A
// validation directory holds only overlays; no cleanup removes backups.
func holdsBackups(p string, storages []string) string {
	for _, r := range storages {
		if r == p || strings.HasPrefix(r, p+string(filepath.Separator)) {
			return "it holds backup storage " + r
		}
	}
	found := ""
	filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
		if err != nil || found != "" {
			return filepath.SkipDir
		}
		if d.IsDir() && d.Name() == "backups" {
			found = "it holds a backups directory: " + path
			return filepath.SkipAll
		}
		return nil
	})
	return found
}

// destroyLeftover destroys the domains called name whose disks are in dir.
func (a *Local) destroyLeftover(ctx context.Context, name, dir string) {
	uuids, err := a.hv.DomainsNamed(ctx, name)
	if err != nil {
		return
	}
	for _, u := range uuids {
		dom, err := a.hv.Domain(ctx, u)
		if err != nil || dom.Name != name {
			continue
		}
		for _, d := range dom.Disks {
			if strings.HasPrefix(d.Source, dir+string(filepath.Separator)) {
				a.hv.DestroyDomain(ctx, u)
				break
			}
		}
	}
}
