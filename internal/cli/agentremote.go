package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/knib/knib/internal/agent"
	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/agentrpc"
	"github.com/knib/knib/internal/fsatomic"
	libvirtadapter "github.com/knib/knib/internal/hypervisor/libvirt"
	"github.com/knib/knib/internal/pki"
)

// remoteAgentOpts are the flags of `knib agent --server URL`.
type remoteAgentOpts struct {
	server, token, dir, listen, advertise, uri, name, storage string
	// diskDir is agent.Config.DiskDir ("" = agent.DefaultDiskDir).
	diskDir string
}

// Identity files in the agent's data directory (mode 0600).
const (
	agentKeyFile  = "agent.key"
	agentCertFile = "agent.crt"
	agentCAFile   = "ca.crt"
)

// runRemoteAgent joins the server (with a token) or says hello with the
// stored identity, then serves agent commands over mutual TLS until ctx
// ends. A refused join or hello is returned as an error: the process exits
// non-zero with the server's reason.
func runRemoteAgent(ctx context.Context, a *app, o remoteAgentOpts) error {
	log := slog.New(slog.NewTextHandler(a.errw, nil))
	if o.name == "" {
		h, err := os.Hostname()
		if err != nil {
			return err
		}
		o.name = h
	}
	if err := os.MkdirAll(o.dir, 0o700); err != nil {
		return fmt.Errorf("agent data directory: %w", err)
	}
	if o.storage != "" {
		if st, err := os.Stat(o.storage); err != nil || !st.IsDir() {
			return usageError{fmt.Errorf("--storage-path %s: not a directory", o.storage)}
		}
	}
	if o.diskDir != "" {
		if err := agent.CheckDiskDir(o.diskDir); err != nil {
			return usageError{fmt.Errorf("--disk-dir: %w", err)}
		}
	}
	hv, err := libvirtadapter.Open(ctx, o.uri)
	if err != nil {
		return fmt.Errorf("libvirt %s: %w", o.uri, err)
	}
	defer hv.Close()
	local := agent.NewLocal(agent.Config{Name: o.name, StoragePath: o.storage, DiskDir: o.diskDir, PropertiesFile: filepath.Join(o.dir, "agent.properties")}, hv, log)
	defer local.Close()
	local.EndOrphanedHelpers()
	// A storage an older knib wrote (0755/0644) is tightened.
	if err := local.TightenStorage(); err != nil {
		log.Warn("backup storage not tightened", "err", err)
	}
	rep, err := local.HostReport(ctx)
	if err != nil {
		return fmt.Errorf("host report: %w", err)
	}

	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.listen, err)
	}
	defer ln.Close()
	if o.advertise == "" {
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		host, _, _ := net.SplitHostPort(o.listen)
		if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
			host = o.name
		}
		o.advertise = "https://" + net.JoinHostPort(host, port)
	}

	cert, caCert, err := agentIdentity(ctx, o, rep, log)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: agentrpc.NewHandler(local, log), ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: agentrpc.ServerTLS(cert, caCert), ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		// Requests end with the agent: a long poll of inventory changes
		// does not hold the shutdown up.
		BaseContext: func(net.Listener) context.Context { return ctx }}
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	log.Info("knib agent serving", "host", o.name, "addr", ln.Addr().String(), "url", o.advertise, "server", o.server)
	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(shut)
	log.Info("knib agent stopped")
	return nil
}

// agentIdentity joins with the token (a fresh key, generated here, never
// sent) or loads the stored identity and says hello.
func agentIdentity(ctx context.Context, o remoteAgentOpts, rep agentapi.HostReport, log *slog.Logger) (tls.Certificate, *x509.Certificate, error) {
	keyFile, certFile, caFile := filepath.Join(o.dir, agentKeyFile), filepath.Join(o.dir, agentCertFile), filepath.Join(o.dir, agentCAFile)
	if o.token != "" {
		key, keyPEM, err := pki.NewKey()
		if err != nil {
			return tls.Certificate{}, nil, err
		}
		csr, err := pki.NewCSR(key, o.name)
		if err != nil {
			return tls.Certificate{}, nil, err
		}
		res, err := agentrpc.Join(ctx, o.server, agentrpc.JoinRequest{Token: o.token, CSR: string(csr), Name: o.name, URL: o.advertise, Report: rep})
		if err != nil {
			return tls.Certificate{}, nil, fmt.Errorf("join refused: %w", err)
		}
		caCert, err := pki.ParseCert([]byte(res.CA))
		if err != nil {
			return tls.Certificate{}, nil, fmt.Errorf("join: CA certificate: %w", err)
		}
		cert, err := pki.TLSCert([]byte(res.Cert), keyPEM, caCert)
		if err != nil {
			return tls.Certificate{}, nil, fmt.Errorf("join: certificate: %w", err)
		}
		for _, f := range []struct {
			path string
			data []byte
		}{{keyFile, keyPEM}, {certFile, []byte(res.Cert)}, {caFile, []byte(res.CA)}} {
			if err := writeFileAtomic(f.path, f.data); err != nil {
				return tls.Certificate{}, nil, fmt.Errorf("store identity: %w", err)
			}
		}
		log.Info("joined", "host", o.name, "host_id", res.HostID, "server", o.server)
		return cert, caCert, nil
	}
	keyPEM, err1 := os.ReadFile(keyFile)
	certPEM, err2 := os.ReadFile(certFile)
	caPEM, err3 := os.ReadFile(caFile)
	if err := errors.Join(err1, err2, err3); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return tls.Certificate{}, nil, fmt.Errorf("no agent identity in %s: join first with --join-token (from `knib host join-token create`)", o.dir)
		}
		return tls.Certificate{}, nil, fmt.Errorf("agent identity: %w", err)
	}
	caCert, err := pki.ParseCert(caPEM)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("agent identity %s: %w", caFile, err)
	}
	cert, err := pki.TLSCert(certPEM, keyPEM, caCert)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("agent identity: %w", err)
	}
	res, err := agentrpc.Hello(ctx, o.server, cert, caCert, agentrpc.HelloRequest{URL: o.advertise, Report: rep})
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("hello refused: %w", err)
	}
	log.Info("hello accepted", "host", res.Host, "host_id", res.HostID, "server", o.server)
	return cert, caCert, nil
}

func writeFileAtomic(path string, data []byte) error {
	return fsatomic.WriteFile(path, data, 0o600)
}

// printJSON writes v as indented JSON.
func printJSON(a *app, v any) error {
	enc := json.NewEncoder(a.out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
