package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"github.com/knib/knib/internal/offsite/s3"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/knib/knib/internal/agent"
	"github.com/knib/knib/internal/auth"
	"github.com/knib/knib/internal/clock"
	"github.com/knib/knib/internal/console"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/fsatomic"
	"github.com/knib/knib/internal/httpapi"
	libvirtadapter "github.com/knib/knib/internal/hypervisor/libvirt"
	"github.com/knib/knib/internal/service"
	"github.com/knib/knib/internal/service/kernel"
	"github.com/knib/knib/internal/store/sqlstore"
)

// Config is the server's configuration; zero values take the defaults.
type Config struct {
	DataDir string
	// Database is the catalogue: a postgres:// (or postgresql://) URL, or a
	// SQLite file; default the SQLite file knib.db in DataDir.
	Database string
	Listen   string
	// TLSCert and TLSKey are PEM files of the API's certificate (with its
	// chain) and key. Without them the API serves plain HTTP on a loopback
	// address and HTTPS with a certificate from knib's own CA on any other
	// (its certificate is written to ca.pem in DataDir for clients).
	TLSCert, TLSKey string
	LibvirtURI      string // "" disables the in-process agent
	LocalHost       string // host name of the in-process agent, default "localhost"
	Zone            string // zone of the in-process agent, default "default"
	SyncEvery       time.Duration
	JobsEvery       time.Duration // job scheduler round; default 10 s
	JobLease        time.Duration // lease of a running job; default 60 s
	// ReadTimeout bounds reading one request, body included (a client
	// sending a byte now and then holds no connection for long); default
	// 30 s. Idle keep-alive connections close after 2 minutes.
	ReadTimeout time.Duration
	Log         *slog.Logger
	// Ready, if set, receives the bound address once the API listens.
	Ready func(addr string)
	// ExtraHosts are more in-process agents (hidden option, for tests).
	ExtraHosts []ExtraHost

	// Remote agents (agents.go).
	AgentListen    string        // address of the agent-facing HTTPS listener; "" = off
	AgentHeartbeat time.Duration // heartbeat interval; default 5 s
	AgentFailures  int           // failed heartbeats in a row before a host is Disconnected; default 3
	AgentReady     func(addr string)

	// Metrics (metrics.go): NoMetrics switches them off; MetricsListen is
	// an address serving /metrics without a token ("" = only the API
	// listener's /metrics, for admin tokens).
	NoMetrics     bool
	MetricsListen string
	MetricsReady  func(addr string)
}

// Run serves until ctx is cancelled.
func Run(ctx context.Context, cfg Config) error {
	if cfg.LocalHost == "" {
		cfg.LocalHost = "localhost"
	}
	if cfg.Zone == "" {
		cfg.Zone = "default"
	}
	if cfg.SyncEvery == 0 {
		cfg.SyncEvery = 30 * time.Second
	}
	if cfg.JobsEvery == 0 {
		cfg.JobsEvery = 10 * time.Second
	}
	log := cfg.Log
	// QEMU (user libvirt-qemu) must reach the backup storage for quick
	// restores and validation, other users must not read backups: the data
	// directory is traversable, the storage 0750 (the local agent gives it
	// the QEMU group, agent.TightenStorage); secrets (admin.token, the
	// database) are 0600.
	if err := os.MkdirAll(cfg.DataDir, 0o711); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	storage := filepath.Join(cfg.DataDir, "storage")
	if err := os.MkdirAll(storage, 0o750); err != nil {
		return fmt.Errorf("backup storage: %w", err)
	}
	for _, d := range []string{cfg.DataDir, storage} {
		if err := os.Chmod(d, map[bool]os.FileMode{true: 0o711, false: 0o750}[d == cfg.DataDir]); err != nil {
			return err
		}
	}
	lock, err := lockDataDir(cfg.DataDir) // one server per data directory (leases.go)
	if err != nil {
		return err
	}
	defer lock.Close()
	if cfg.Database == "" {
		cfg.Database = filepath.Join(cfg.DataDir, "knib.db")
	}
	st, err := sqlstore.Open(ctx, cfg.Database)
	if err != nil {
		return err
	}
	defer st.Close()
	log.Info("catalogue open", "engine", st.Engine(), "database", sqlstore.Redact(cfg.Database))
	svc := service.New(st, clock.Real{}, log)
	svc.Remotes.SetOpener(s3.Open)
	svc.Kernel.SetJobLease(cfg.JobLease)
	if err := ensureAdminToken(ctx, svc, cfg.DataDir); err != nil {
		return err
	}
	// Several servers may share the database: this process owns the work
	// it starts; at start only the work of dead owners (a previous life of
	// this node, or a lease that ran out) is recovered (leases.go).
	node := nodeIdentity(cfg)
	svc.Kernel.SetIdentity(node, kernel.OwnerName(node))
	if _, err := svc.Recovery.RecoverOrphans(ctx); err != nil {
		return fmt.Errorf("recover interrupted operations: %w", err)
	}
	// Backup storages: the data directory's own is storage "default" of the
	// local zone; backups recorded before storages existed belong to it.
	absStorage, err := filepath.Abs(storage)
	if err != nil {
		return err
	}
	if _, err := svc.Storages.EnsureDefaultStorage(ctx, cfg.Zone, absStorage); err != nil {
		return err
	}

	rem, err := newRemote(ctx, svc, cfg, log)
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = 30 * time.Second
	}
	apiHandler := httpapi.New(svc, log)
	metricsSrv, err := setupMetrics(cfg, st, svc, apiHandler, log)
	if err != nil {
		ln.Close()
		return err
	}
	if metricsSrv != nil {
		defer metricsSrv.Close()
	}
	srv := &http.Server{Handler: console.Mount(apiHandler), ReadHeaderTimeout: min(10*time.Second, cfg.ReadTimeout), ReadTimeout: cfg.ReadTimeout,
		IdleTimeout: 2 * time.Minute, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	// Event streams never go idle: they end when shutdown begins, so that
	// Shutdown only waits for real requests.
	srv.RegisterOnShutdown(apiHandler.CloseStreams)
	tlsCfg, err := apiTLS(cfg, rem)
	if err != nil {
		ln.Close()
		return err
	}
	scheme := "http"
	if tlsCfg != nil {
		scheme = "https"
		ln = tls.NewListener(ln, tlsCfg)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("knib server listening", "addr", ln.Addr().String(), "data_dir", cfg.DataDir, "console", scheme+"://"+ln.Addr().String()+console.Prefix)
	if cfg.Ready != nil {
		cfg.Ready(ln.Addr().String())
	}

	loopCtx, stopLoops := context.WithCancel(ctx)
	defer stopLoops()
	// The in-process agents end with the loops; their Close (which stops
	// their file-restore helpers and tasks) must be over before Run returns.
	var agentLoops sync.WaitGroup
	if cfg.LibvirtURI != "" {
		agentLoops.Go(func() { localAgentLoop(loopCtx, svc, cfg, storage, log) })
	}
	go jobLoop(loopCtx, svc, cfg.JobsEvery, log)
	go leaseLoop(loopCtx, svc, cfg.JobLease, log)
	go auditLoop(loopCtx, svc, log)  // audit log retention (audit.go)
	go notifyLoop(loopCtx, svc, log) // notify.go
	// Every agent's domain events re-read its host at once; the sync loops
	// below (every SyncEvery) remain the safety net.
	go svc.Hosts.FollowInventory(loopCtx)
	for _, eh := range cfg.ExtraHosts {
		agentLoops.Go(func() { extraAgentLoop(loopCtx, svc, cfg, eh, storage, log) })
	}
	go rem.manage(loopCtx)
	if cfg.AgentListen != "" {
		go func() {
			if err := rem.listen(loopCtx, cfg.AgentListen, cfg.AgentReady); err != nil {
				errc <- err
			}
		}()
	}

	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	stopLoops()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv.Shutdown(shutdownCtx)
	svc.Kernel.Wait()
	svc.Jobs.WaitJobs()
	agentLoops.Wait()
	log.Info("knib server stopped")
	return nil
}

// localAgentLoop connects the in-process agent (retrying until libvirt
// answers), registers the local host and keeps the inventory in sync.
func localAgentLoop(ctx context.Context, svc *service.Service, cfg Config, storage string, log *slog.Logger) {
	var local *agent.Local
	for local == nil {
		hv, err := libvirtadapter.Open(ctx, cfg.LibvirtURI)
		if err == nil {
			a := agent.NewLocal(agent.Config{Name: cfg.LocalHost, StoragePath: storage,
				PropertiesFile: filepath.Join(cfg.DataDir, "agent.properties")}, hv, log)
			// A storage an older knib wrote (0755/0644) is tightened.
			if err := a.TightenStorage(); err != nil {
				log.Warn("backup storage not tightened", "err", err)
			}
			// Validation VMs a dead process left behind go first, before
			// the host takes new jobs.
			svc.Jobs.CleanupValidations(ctx, a)
			a.EndOrphanedHelpers()
			if _, err = svc.Hosts.RegisterHost(ctx, cfg.Zone, a, true); err == nil {
				local = a
				defer func() { a.Close(); hv.Close() }()
				break
			}
			a.Close()
			hv.Close()
		}
		log.Warn("local agent not ready; retrying", "uri", cfg.LibvirtURI, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Second):
		}
	}
	for {
		if err := svc.Hosts.SyncInventory(ctx); err != nil && ctx.Err() == nil {
			log.Warn("inventory sync", "err", err)
		}
		// Recovery runs by itself: at start and then periodically.
		svc.Recovery.Reconcile(ctx)
		select {
		case <-ctx.Done():
			return
		case <-time.After(cfg.SyncEvery):
		}
	}
}

// jobLoop runs the service-job scheduler. The owner name in the job leases
// is unique to this process, so a restarted server never mistakes an old
// lease for its own.
func jobLoop(ctx context.Context, svc *service.Service, every time.Duration, log *slog.Logger) {
	owner := svc.Kernel.Owner()
	var policies time.Time
	for {
		if err := svc.Jobs.RunJobs(ctx, owner); err != nil && ctx.Err() == nil {
			log.Warn("job scheduler", "err", err)
		}
		// Offsite copy policies and expiry: at most once a minute.
		if clock.Since(clock.Real{}, policies) >= time.Minute {
			policies = clock.Real{}.Now()
			if err := svc.Remotes.RunPolicies(ctx); err != nil && ctx.Err() == nil {
				log.Warn("offsite copy policies", "err", err)
			}
		}
		if _, err := svc.Schedules.RunSchedules(ctx); err != nil && ctx.Err() == nil {
			log.Warn("backup schedules", "err", err)
		}
		// Until the next tick, a job of this process that ends (and may
		// have queued its successor) starts a scheduler pass at once.
		tick := time.After(every)
	wait:
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick:
				break wait
			case <-svc.Jobs.Wake():
				if err := svc.Jobs.RunJobs(ctx, owner); err != nil && ctx.Err() == nil {
					log.Warn("job scheduler", "err", err)
				}
			}
		}
	}
}

// ensureAdminToken makes sure <data dir>/admin.token holds a valid admin
// token: created on first start, re-issued when the file is missing or its
// token unknown (for example after the database was replaced).
func ensureAdminToken(ctx context.Context, svc *service.Service, dataDir string) error {
	admin, err := svc.Kernel.EnsureAdmin(ctx)
	if err != nil {
		return fmt.Errorf("admin account: %w", err)
	}
	file := filepath.Join(dataDir, "admin.token")
	if raw, err := os.ReadFile(file); err == nil {
		tok := strings.TrimSpace(string(raw))
		if auth.CheckForm(tok) == nil {
			if p, err := svc.Accounts.Authenticate(ctx, tok); err == nil && p.IsAdmin() {
				return nil
			}
		}
	}
	secret, _, err := svc.Accounts.IssueToken(ctx, admin.ID, domain.RoleAdmin, "admin.token")
	if err != nil {
		return fmt.Errorf("issue admin token: %w", err)
	}
	return fsatomic.WriteFile(file, []byte(secret+"\n"), 0o600)
}
