package httpapi

import (
	"errors"
	"net/http"
	"time"

	"github.com/knib/knib/internal/domain"
)

// MetricsPath is where the API listener serves the metrics (admins only).
const MetricsPath = "/metrics"

var errMissingToken = errors.New("missing or malformed API token: send \"Authorization: Bearer <token>\" or log in (POST " + Prefix + "/session)")

// RequestObserver is told of every API request but event streams: its
// method, its route's pattern (never the raw path), the status sent and
// how long it took.
type RequestObserver func(method, route string, code int, d time.Duration)

// ObserveRequests sets the request observer; call it before serving.
func (h *Handler) ObserveRequests(o RequestObserver) { h.observe = o }

// ServeMetrics serves metrics at MetricsPath to admins (a bearer API token
// of an admin, or an admin's console session); call it before serving.
func (h *Handler) ServeMetrics(metrics http.Handler) {
	h.mux.HandleFunc("GET "+MetricsPath, func(w http.ResponseWriter, r *http.Request) {
		p, err := h.authenticate(r)
		if err == nil && !p.IsAdmin() {
			err = domain.ErrForbidden
		}
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		metrics.ServeHTTP(w, r)
	})
}

// statusWriter remembers the status a handler sent.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush keeps streamed answers (a tar, a screenshot) streaming.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}
