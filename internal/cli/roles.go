package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/knib/knib/internal/agent"
	libvirtadapter "github.com/knib/knib/internal/hypervisor/libvirt"
	"github.com/knib/knib/internal/server"
)

func serverCmd(a *app) *cobra.Command {
	var cfg server.Config
	var logLevel string
	var extraHosts []string
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the management server (all-in-one by default: SQLite, local storage, in-process agent)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return usageError{fmt.Errorf("--log-level: %v", err)}
			}
			for _, x := range extraHosts {
				eh, err := server.ParseExtraHost(x)
				if err != nil {
					return usageError{fmt.Errorf("--extra-host: %w", err)}
				}
				cfg.ExtraHosts = append(cfg.ExtraHosts, eh)
			}
			cfg.Log = slog.New(slog.NewTextHandler(a.errw, &slog.HandlerOptions{Level: level}))
			slog.SetDefault(cfg.Log)
			return server.Run(ctx, cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DataDir, "data-dir", dataDir(), "data directory (env KNIB_DATA_DIR)")
	f.StringVar(&cfg.Database, "database", os.Getenv("KNIB_DATABASE"), "catalogue: a postgres:// URL, or a SQLite file (default: knib.db in the data directory; env KNIB_DATABASE)")
	f.StringVar(&cfg.Listen, "listen", DefaultListen, "API listen address (HTTPS unless it is a loopback address)")
	f.StringVar(&cfg.TLSCert, "tls-cert", "", "PEM certificate (with its chain) of the API; default on a non-loopback address: one from knib's CA (ca.pem in the data directory)")
	f.StringVar(&cfg.TLSKey, "tls-key", "", "PEM private key of --tls-cert")
	f.StringVar(&cfg.LibvirtURI, "libvirt-uri", DefaultURI, "libvirt of the in-process agent (empty: none)")
	f.DurationVar(&cfg.SyncEvery, "reconcile-interval", 30*time.Second, "how often the inventory is read and interrupted work recovered")
	f.DurationVar(&cfg.JobsEvery, "jobs-interval", 10*time.Second, "how often the background job scheduler runs")
	f.DurationVar(&cfg.JobLease, "job-lease", 60*time.Second, "how long a running job's claim lasts without renewal (a dead runner's jobs are retried after it)")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringArrayVar(&extraHosts, "extra-host", nil, "NAME=URI: one more in-process agent for another libvirt daemon of this machine, in the same zone (tests)")
	f.MarkHidden("extra-host")
	f.StringVar(&cfg.AgentListen, "agent-listen", "", "address of the HTTPS listener remote agents join and say hello on (empty: off)")
	f.DurationVar(&cfg.AgentHeartbeat, "agent-heartbeat", 5*time.Second, "how often remote agents are called")
	f.IntVar(&cfg.AgentFailures, "agent-failures", 3, "failed heartbeats in a row before a remote host is Disconnected")
	f.StringVar(&cfg.MetricsListen, "metrics-listen", "", "address serving Prometheus metrics at /metrics without a token (bind it to localhost or a private network; empty: only the API's /metrics, for admin tokens)")
	f.BoolVar(&cfg.NoMetrics, "no-metrics", false, "record and serve no metrics")
	return cmd
}

func agentCmd(a *app) *cobra.Command {
	var dir, uri, name, serverURL string
	var ro remoteAgentOpts
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the host agent; without --server it checks the host and prints its report and inventory",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if serverURL != "" {
				ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
				defer stop()
				ro.server, ro.dir, ro.uri, ro.name = serverURL, dir, uri, name
				return runRemoteAgent(ctx, a, ro)
			}
			if ro.token != "" {
				return usageError{errors.New("--join-token needs --server")}
			}
			ctx := cmd.Context()
			hv, err := libvirtadapter.Open(ctx, uri)
			if err != nil {
				return fmt.Errorf("libvirt %s: %w", uri, err)
			}
			defer hv.Close()
			storage := ro.storage
			if storage == "" {
				storage = filepath.Join(dir, "storage")
				if _, err := os.Stat(storage); err != nil {
					storage = ""
				}
			}
			ag := agent.NewLocal(agent.Config{Name: name, StoragePath: storage, PropertiesFile: filepath.Join(dir, "agent.properties")},
				hv, slog.New(slog.NewTextHandler(a.errw, nil)))
			defer ag.Close()
			return printAgentReport(ctx, a, ag)
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "data-dir", dataDir(), "agent data directory (agent.properties lives here)")
	f.StringVar(&uri, "libvirt-uri", DefaultURI, "libvirt to manage")
	f.StringVar(&name, "name", "", "host name to register under (default: the machine's)")
	f.StringVar(&serverURL, "server", "", "server's agent listener to join (https://host:port, its --agent-listen); without it the agent checks the host and prints its report")
	f.StringVar(&ro.token, "join-token", "", "one-time join token (`knib host join-token create`); later starts need none")
	f.StringVar(&ro.listen, "listen", "0.0.0.0:8282", "address the agent serves the server on")
	f.StringVar(&ro.advertise, "advertise", "", "URL the server reaches the agent at (default https://<name>:<port>)")
	f.StringVar(&ro.storage, "storage-path", "", "backup storage directory as mounted on this host (without --server: the storage to check, default <data dir>/storage)")
	f.StringVar(&ro.diskDir, "disk-dir", "", "where disks of VMs restored onto this host from another host go, <dir>/<vm uuid>/ (default "+agent.DefaultDiskDir+")")
	return cmd
}

// printAgentReport prints the host check: the host report, the inventory,
// the QEMU group and the problems found (agent.CheckHost). Problems make
// it exit 1, after the report.
func printAgentReport(ctx context.Context, a *app, ag *agent.Local) error {
	rep, err := ag.HostReport(ctx)
	if err != nil {
		return err
	}
	inv, err := ag.Inventory(ctx)
	if err != nil {
		return err
	}
	problems, err := ag.CheckHost()
	if err != nil {
		return err
	}
	enc := json.NewEncoder(a.out)
	enc.SetIndent("", "  ")
	if err := enc.Encode(map[string]any{"host": rep, "domains": inv, "qemu_group": ag.QEMUGroup(), "problems": problems}); err != nil {
		return err
	}
	if len(problems) > 0 {
		return fmt.Errorf("the host check found %d problems, the first: %s", len(problems), problems[0])
	}
	return nil
}
