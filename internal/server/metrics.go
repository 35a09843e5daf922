package server

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/knib/knib/internal/httpapi"
	"github.com/knib/knib/internal/metrics"
	"github.com/knib/knib/internal/service"
)

// setupMetrics makes the process's metrics: the kernel's observer, the
// API's request observer, /metrics on the API listener (admin token) and,
// with MetricsListen, a listener of its own serving /metrics without a
// token (returned, to be closed at the end).
func setupMetrics(cfg Config, cat metrics.Catalogue, svc *service.Service, api *httpapi.Handler, log *slog.Logger) (*http.Server, error) {
	if cfg.NoMetrics {
		if cfg.MetricsListen != "" {
			return nil, fmt.Errorf("--metrics-listen needs the metrics on")
		}
		return nil, nil
	}
	m := metrics.New(cat, log)
	svc.Kernel.SetObserver(m)
	api.ObserveRequests(m.Request)
	api.ServeMetrics(m.Handler())
	if cfg.MetricsListen == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", cfg.MetricsListen)
	if err != nil {
		return nil, fmt.Errorf("metrics listen on %s: %w", cfg.MetricsListen, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET "+httpapi.MetricsPath, m.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	go func() {
		if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
			log.Error("metrics listener", "err", err)
		}
	}()
	log.Info("metrics listening (no token: bind it to localhost or a private network)", "url", "http://"+ln.Addr().String()+httpapi.MetricsPath)
	if cfg.MetricsReady != nil {
		cfg.MetricsReady(ln.Addr().String())
	}
	return srv, nil
}
