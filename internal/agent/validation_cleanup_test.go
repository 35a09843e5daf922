package agent

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/hypervisor"
)

// cleanupHV is just enough hypervisor for the validation cleanup: a set of
// domains by uuid, destroyed on request (other methods are not called).
type cleanupHV struct {
	Hypervisor
	doms      map[string]hypervisor.Domain
	destroyed []string
}

func (h *cleanupHV) DomainsNamed(_ context.Context, prefix string) ([]string, error) {
	var out []string
	for u, d := range h.doms {
		if strings.HasPrefix(d.Name, prefix) {
			out = append(out, u)
		}
	}
	slices.Sort(out)
	return out, nil
}

func (h *cleanupHV) Domain(_ context.Context, uuid string) (hypervisor.Domain, error) {
	return h.doms[uuid], nil
}

func (h *cleanupHV) DestroyDomain(_ context.Context, uuid string) error {
	h.destroyed = append(h.destroyed, uuid)
	delete(h.doms, uuid)
	return nil
}

// Several servers: the cleanup keeps the validation VMs and overlays of
// backups whose validation jobs still run, and removes the others.
func TestValidationCleanupKeepsLiveValidations(t *testing.T) {
	root := t.TempDir()
	vdir := filepath.Join(root, "validation")
	dom := func(name, backup string) hypervisor.Domain {
		dir := filepath.Join(vdir, backup)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return hypervisor.Domain{Name: name, Disks: []hypervisor.Disk{{Target: "vda", Source: filepath.Join(dir, "vda.qcow2")}}}
	}
	live, dead := "aaaaaaaa-live", "bbbbbbbb-dead"
	hv := &cleanupHV{doms: map[string]hypervisor.Domain{
		"u-live":  dom(agentapi.ValidationPrefix+live[:8], live),
		"u-dead":  dom(agentapi.ValidationPrefix+dead[:8], dead),
		"u-other": {Name: agentapi.ValidationPrefix + "elsewhere", Disks: []hypervisor.Disk{{Source: "/other/validation/x/vda.qcow2"}}},
	}}
	a := &Local{cfg: Config{StoragePath: root}, hv: hv, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	req := agentapi.CleanupValidationRequest{Storages: []string{root}, Keep: []string{live}}
	if _, err := a.cleanupValidation(context.Background(), req, func(float64, string) {}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(hv.destroyed, []string{"u-dead"}) {
		t.Fatalf("destroyed %v, want only the dead validation's VM", hv.destroyed)
	}
	if _, err := os.Stat(filepath.Join(vdir, live)); err != nil {
		t.Fatalf("the live validation's overlays are gone: %v", err)
	}
	if _, err := os.Stat(filepath.Join(vdir, dead)); !os.IsNotExist(err) {
		t.Fatalf("the dead validation's overlays are left: %v", err)
	}
	// Without a keep list (one server, at start) everything goes.
	if _, err := a.cleanupValidation(context.Background(), agentapi.CleanupValidationRequest{Storages: []string{root}}, func(float64, string) {}); err != nil {
		t.Fatal(err)
	}
	if _, ok := hv.doms["u-live"]; ok {
		t.Fatal("without a keep list the validation VM stays")
	}
	if entries, err := os.ReadDir(vdir); err != nil || len(entries) != 0 {
		t.Fatalf("validation directory not emptied: %v %v", entries, err)
	}
	if _, ok := hv.doms["u-other"]; !ok {
		t.Fatal("a validation VM of another storage was destroyed")
	}
}

// No cleanup removes backups: a storage placed inside another storage's
// validation directory (by name, or found by its backups/ tree) stays,
// while the overlays beside it go.
func TestValidationCleanupNeverRemovesBackups(t *testing.T) {
	root := t.TempDir()
	vdir := filepath.Join(root, "validation")
	nested := filepath.Join(vdir, "nested-storage")
	unknown := filepath.Join(vdir, "old-storage")
	overlay := filepath.Join(vdir, "cccccccc-dead", "vda.qcow2")
	for _, f := range []string{filepath.Join(nested, "backups", "vm", "b1", "vda.qcow2"), filepath.Join(unknown, "x", "backups", "vm", "b1", "vda.qcow2"), overlay} {
		if err := os.MkdirAll(filepath.Dir(f), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte("data"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	a := &Local{cfg: Config{StoragePath: root}, hv: &cleanupHV{doms: map[string]hypervisor.Domain{}}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, req := range []agentapi.CleanupValidationRequest{{Storages: []string{root, nested}}, {Storages: []string{root}, Keep: []string{"other"}}} {
		if _, err := a.cleanupValidation(context.Background(), req, func(float64, string) {}); err != nil {
			t.Fatal(err)
		}
		for _, kept := range []string{filepath.Join(nested, "backups", "vm", "b1", "vda.qcow2"), filepath.Join(unknown, "x", "backups", "vm", "b1", "vda.qcow2")} {
			if _, err := os.Stat(kept); err != nil {
				t.Fatalf("the cleanup removed a backup file: %v", err)
			}
		}
		if _, err := os.Stat(overlay); !os.IsNotExist(err) {
			t.Fatalf("the dead validation's overlay is left: %v", err)
		}
	}
}
