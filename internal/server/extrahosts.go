package server

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/knib/knib/internal/agent"
	"github.com/knib/knib/internal/domain"
	libvirtadapter "github.com/knib/knib/internal/hypervisor/libvirt"
	"github.com/knib/knib/internal/service"
)

// ExtraHost is one more in-process agent, for another libvirt daemon of this
// machine (tests: two hosts without the remote transport). It joins the
// local agent's zone and sees the server's backup storage at the same path.
type ExtraHost struct {
	Name string
	URI  string
}

// ParseExtraHost parses NAME=URI.
func ParseExtraHost(s string) (ExtraHost, error) {
	name, uri, ok := strings.Cut(s, "=")
	if !ok || uri == "" {
		return ExtraHost{}, fmt.Errorf("extra host %q: want NAME=URI", s)
	}
	if err := domain.ValidateName("extra host name", name); err != nil {
		return ExtraHost{}, err
	}
	return ExtraHost{Name: name, URI: uri}, nil
}

// extraAgentLoop connects an extra in-process agent (retrying until its
// libvirt answers) and registers its host. Inventory and recovery run in
// the server's sync loop, for every registered host.
func extraAgentLoop(ctx context.Context, svc *service.Service, cfg Config, eh ExtraHost, storage string, log *slog.Logger) {
	dir := filepath.Join(cfg.DataDir, "hosts", eh.Name)
	disks := filepath.Join(dir, "disks")
	if err := os.MkdirAll(disks, 0o755); err != nil {
		log.Error("extra host directory", "host", eh.Name, "err", err)
		return
	}
	// QEMU (libvirt-qemu) reaches the disks through these directories.
	for _, d := range []string{filepath.Join(cfg.DataDir, "hosts"), dir, disks} {
		os.Chmod(d, 0o755)
	}
	for {
		hv, err := libvirtadapter.Open(ctx, eh.URI)
		if err == nil {
			a := agent.NewLocal(agent.Config{Name: eh.Name, StoragePath: storage, DiskDir: disks,
				PropertiesFile: filepath.Join(dir, "agent.properties")}, hv, log.With("host", eh.Name))
			svc.Jobs.CleanupValidations(ctx, a)
			a.EndOrphanedHelpers()
			if _, err = svc.Hosts.RegisterHost(ctx, cfg.Zone, a, true); err == nil {
				<-ctx.Done()
				a.Close()
				hv.Close()
				return
			}
			a.Close()
			hv.Close()
		}
		log.Warn("extra host agent not ready; retrying", "host", eh.Name, "uri", eh.URI, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Second):
		}
	}
}
