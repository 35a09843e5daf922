package agentrpc

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/clock"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/httperr"
	"github.com/knib/knib/internal/pki"
)

// maxBody bounds request bodies (task payloads are small JSON documents).
const maxBody = 16 << 20

// NewHandler serves a over HTTP. Callers must be authenticated by the TLS
// configuration (see ServerTLS).
func NewHandler(a agentapi.Agent, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+prefix+"/host-report", func(w http.ResponseWriter, r *http.Request) {
		rep, err := a.HostReport(r.Context())
		reply(w, log, rep, err)
	})
	mux.HandleFunc("POST "+prefix+"/inventory", func(w http.ResponseWriter, r *http.Request) {
		doms, err := a.Inventory(r.Context())
		if doms == nil {
			doms = []agentapi.Domain{}
		}
		reply(w, log, doms, err)
	})
	mux.HandleFunc("GET "+prefix+"/domains/{uuid}", func(w http.ResponseWriter, r *http.Request) {
		uuid := r.PathValue("uuid")
		if !domain.IsUUID(uuid) {
			writeJSON(w, http.StatusBadRequest, wireError{Error: fmt.Sprintf("not a domain uuid: %q", uuid)})
			return
		}
		d, err := a.Domain(r.Context(), uuid)
		reply(w, log, d, err)
	})
	mux.HandleFunc("POST "+prefix+"/inventory/wait", func(w http.ResponseWriter, r *http.Request) {
		var since agentapi.ChangeMark
		if !decode(w, r, &since) {
			return
		}
		mark, err := a.WaitInventoryChange(r.Context(), since)
		reply(w, log, mark, err)
	})
	mux.HandleFunc("POST "+prefix+"/guest-exec", func(w http.ResponseWriter, r *http.Request) {
		var req agentapi.GuestExecRequest
		if !decode(w, r, &req) {
			return
		}
		res, err := a.GuestExec(r.Context(), req)
		reply(w, log, res, err)
	})
	mux.HandleFunc("POST "+prefix+"/tasks", func(w http.ResponseWriter, r *http.Request) {
		var wt wireTask
		if !decode(w, r, &wt) {
			return
		}
		t, err := wt.task()
		if err != nil {
			reply(w, log, nil, err)
			return
		}
		reply(w, log, struct{}{}, a.StartTask(r.Context(), t))
	})
	mux.HandleFunc("GET "+prefix+"/tasks/{id}", func(w http.ResponseWriter, r *http.Request) {
		st, err := a.TaskStatus(r.Context(), r.PathValue("id"))
		if err != nil {
			reply(w, log, nil, err)
			return
		}
		ws, err := toWireStatus(st)
		reply(w, log, ws, err)
	})
	mux.HandleFunc("POST "+prefix+"/tasks/{id}/cancel", func(w http.ResponseWriter, r *http.Request) {
		reply(w, log, struct{}{}, a.CancelTask(r.Context(), r.PathValue("id")))
	})
	filesRoutes(mux, a, log)
	return mux
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeJSON(w, http.StatusBadRequest, wireError{Error: "bad request body: " + err.Error()})
		return false
	}
	return true
}

func reply(w http.ResponseWriter, log *slog.Logger, v any, err error) {
	if err != nil {
		code := codeOf(err)
		status, _ := httperr.Status(err)
		if status == http.StatusInternalServerError && log != nil {
			log.Warn("agent call failed", "err", err)
		}
		writeJSON(w, status, wireError{Error: err.Error(), Code: code})
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// ServerTLS is the agent's TLS configuration: it presents cert and accepts
// only clients whose certificate caCert issued with the server role.
func ServerTLS(cert tls.Certificate, caCert *x509.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAnyClientCert,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if _, err := pki.VerifyWith(caCert, cs.PeerCertificates, pki.RoleServer, clock.Real{}.Now()); err != nil {
				return fmt.Errorf("client refused: %w", err)
			}
			return nil
		},
	}
}

// ErrRefused is returned when the peer's certificate is not acceptable.
var ErrRefused = errors.New("peer certificate refused")
