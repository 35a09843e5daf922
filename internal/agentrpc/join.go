package agentrpc

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/clock"
	"github.com/knib/knib/internal/pki"
)

// Paths of the server's agent-facing listener.
const (
	JoinPath  = "/agent/v1/join"
	HelloPath = "/agent/v1/hello"
)

// JoinRequest is POST /agent/v1/join: the one-time token, the agent's
// certificate request (its key stays on the host), its host name, the URL
// it serves on and its host report.
type JoinRequest struct {
	Token  string              `json:"token"`
	CSR    string              `json:"csr"`
	Name   string              `json:"name"`
	URL    string              `json:"url"`
	Report agentapi.HostReport `json:"report"`
}

// JoinResponse is the agent's identity: its certificate and the CA's.
type JoinResponse struct {
	HostID string `json:"host_id"`
	Cert   string `json:"cert"`
	CA     string `json:"ca"`
}

// HelloRequest is POST /agent/v1/hello, sent over mutual TLS with the
// agent's certificate.
type HelloRequest struct {
	URL    string              `json:"url"`
	Report agentapi.HostReport `json:"report"`
}

// HelloResponse confirms the identity.
type HelloResponse struct {
	HostID string `json:"host_id"`
	Host   string `json:"host"`
}

// Refusal is the body of a refused join or hello, and the error the agent
// gets for it.
type Refusal struct {
	Status int    `json:"-"`
	Reason string `json:"error"`
}

func (r *Refusal) Error() string { return r.Reason }

// ErrPin is a server whose CA does not have the token's hash.
var ErrPin = errors.New("the server's CA does not match the join token's CA hash (wrong server, or someone in between)")

// Join joins the server at serverURL. The TLS connection is accepted only
// if the server presents a certificate with the server role from a CA whose
// SHA-256 is the token's pin; only then does the token travel.
func Join(ctx context.Context, serverURL string, req JoinRequest) (JoinResponse, error) {
	tok, err := pki.ParseJoinToken(req.Token)
	if err != nil {
		return JoinResponse{}, err
	}
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS13,
		InsecureSkipVerify: true, // verified below against the pinned CA
		VerifyConnection: func(cs tls.ConnectionState) error {
			for _, c := range cs.PeerCertificates {
				if c.IsCA && pki.PinOf(c) == tok.Pin {
					_, err := pki.VerifyWith(c, cs.PeerCertificates, pki.RoleServer, clock.Real{}.Now())
					return err
				}
			}
			return ErrPin
		},
	}
	var out JoinResponse
	return out, post(ctx, cfg, serverURL, JoinPath, req, &out)
}

// Hello presents the agent's identity to the server, which must present a
// server certificate from caCert.
func Hello(ctx context.Context, serverURL string, cert tls.Certificate, caCert *x509.Certificate, req HelloRequest) (HelloResponse, error) {
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS13,
		Certificates:       []tls.Certificate{cert},
		InsecureSkipVerify: true, // verified below against the CA
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, err := pki.VerifyWith(caCert, cs.PeerCertificates, pki.RoleServer, clock.Real{}.Now())
			return err
		},
	}
	var out HelloResponse
	return out, post(ctx, cfg, serverURL, HelloPath, req, &out)
}

func post(ctx context.Context, cfg *tls.Config, serverURL, path string, in, out any) error {
	u, err := url.Parse(serverURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("server URL %q: want https://host:port (the server's --agent-listen address)", serverURL)
	}
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, "POST", strings.TrimSuffix(serverURL, "/")+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 2 * time.Minute}
	defer c.CloseIdleConnections()
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("server %s: %w", serverURL, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		r := &Refusal{Status: resp.StatusCode}
		if json.Unmarshal(raw, r) != nil || r.Reason == "" {
			r.Reason = fmt.Sprintf("HTTP %d", resp.StatusCode)
		}
		return r
	}
	return json.Unmarshal(raw, out)
}
