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

// Peer is who the client expects at the other end.
type Peer struct {
	URL    string // https://host:port of the agent
	Host   string // the certificate's common name must be this host name
	Serial string // and its serial this one ("" accepts any serial)
}

// Client is an agentapi.Agent on a remote host.
type Client struct {
	peer Peer
	http *http.Client
	// retries of idempotent calls on transport errors.
	retries int
	backoff time.Duration
}

// NewClient returns a client presenting cert (the server identity) and
// trusting only agent certificates caCert issued for peer.
func NewClient(peer Peer, cert tls.Certificate, caCert *x509.Certificate) (*Client, error) {
	u, err := url.Parse(peer.URL)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.User != nil {
		return nil, fmt.Errorf("agent URL %q: want https://host:port", peer.URL)
	}
	peer.URL = strings.TrimSuffix(peer.URL, "/")
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		// Verification is done below, against the CA, by role and host
		// name: agent certificates do not name addresses.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			leaf, err := pki.VerifyWith(caCert, cs.PeerCertificates, pki.RoleAgent, clock.Real{}.Now())
			if err != nil {
				return fmt.Errorf("agent at %s refused: %w", peer.URL, err)
			}
			if leaf.Subject.CommonName != peer.Host {
				return fmt.Errorf("agent at %s refused: certificate is for host %q, want %q", peer.URL, leaf.Subject.CommonName, peer.Host)
			}
			if peer.Serial != "" && pki.SerialOf(leaf) != peer.Serial {
				return fmt.Errorf("agent at %s refused: certificate serial %s is not host %s's current identity", peer.URL, pki.SerialOf(leaf), peer.Host)
			}
			return nil
		},
	}
	tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true, MaxIdleConnsPerHost: 4,
		TLSHandshakeTimeout: 10 * time.Second, IdleConnTimeout: time.Minute} // calls are bounded by their contexts (GuestExec may be long)
	return &Client{peer: peer, http: &http.Client{Transport: tr}, retries: 3, backoff: 300 * time.Millisecond}, nil
}

// Close drops idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// SetTimeout bounds every call (heartbeats use a short one).
func (c *Client) SetTimeout(d time.Duration) { c.http.Timeout = d }

// HostReport implements agentapi.Agent.
func (c *Client) HostReport(ctx context.Context) (agentapi.HostReport, error) {
	var rep agentapi.HostReport
	return rep, c.call(ctx, "POST", "/host-report", nil, &rep, true)
}

// Inventory implements agentapi.Agent.
func (c *Client) Inventory(ctx context.Context) ([]agentapi.Domain, error) {
	var doms []agentapi.Domain
	return doms, c.call(ctx, "POST", "/inventory", nil, &doms, true)
}

// Domain implements agentapi.Agent.
func (c *Client) Domain(ctx context.Context, uuid string) (agentapi.Domain, error) {
	var d agentapi.Domain
	return d, c.call(ctx, "GET", "/domains/"+url.PathEscape(uuid), nil, &d, true)
}

// GuestExec implements agentapi.Agent. It is not retried: the program may
// have run.
func (c *Client) GuestExec(ctx context.Context, req agentapi.GuestExecRequest) (agentapi.GuestExecResult, error) {
	var res agentapi.GuestExecResult
	return res, c.call(ctx, "POST", "/guest-exec", req, &res, false)
}

// StartTask implements agentapi.Agent; retried, since a known task id starts
// nothing.
func (c *Client) StartTask(ctx context.Context, t agentapi.Task) error {
	wt, err := toWireTask(t)
	if err != nil {
		return err
	}
	return c.call(ctx, "POST", "/tasks", wt, nil, true)
}

// TaskStatus implements agentapi.Agent: the result is decoded into the
// command's result type.
func (c *Client) TaskStatus(ctx context.Context, id string) (agentapi.TaskStatus, error) {
	var ws wireStatus
	if err := c.call(ctx, "GET", "/tasks/"+url.PathEscape(id), nil, &ws, true); err != nil {
		return agentapi.TaskStatus{}, err
	}
	return ws.status()
}

// CancelTask implements agentapi.Agent.
func (c *Client) CancelTask(ctx context.Context, id string) error {
	return c.call(ctx, "POST", "/tasks/"+url.PathEscape(id)+"/cancel", nil, nil, true)
}

// WaitInventoryChange implements agentapi.Agent: a long poll the agent
// answers within agentapi.MaxChangeWait; retried, since it changes
// nothing. A connection that dies silently is given up after a margin.
func (c *Client) WaitInventoryChange(ctx context.Context, since agentapi.ChangeMark) (agentapi.ChangeMark, error) {
	ctx, cancel := context.WithTimeout(ctx, agentapi.MaxChangeWait+30*time.Second)
	defer cancel()
	var mark agentapi.ChangeMark
	if err := c.call(ctx, "POST", "/inventory/wait", since, &mark, true); err != nil {
		return since, err
	}
	return mark, nil
}

// call sends one request; idempotent calls are retried on transport errors
// (a connection reset, an agent restarting), never on an agent's answer.
func (c *Client) call(ctx context.Context, method, path string, in, out any, idempotent bool) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	attempts := 1
	if idempotent {
		attempts += c.retries
	}
	var err error
	for i := 0; i < attempts; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				return err
			case <-time.After(c.backoff * time.Duration(i)):
			}
		}
		var retry bool
		retry, err = c.once(ctx, method, path, body, out)
		if err == nil || !retry {
			return err
		}
	}
	return err
}

func (c *Client) once(ctx context.Context, method, path string, body []byte, out any) (retry bool, err error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.peer.URL+prefix+path, rd)
	if err != nil {
		return false, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// A refused certificate is final; anything else may be transient.
		var cv *tls.CertificateVerificationError
		final := errors.As(err, &cv) || strings.Contains(err.Error(), "refused: ") || ctx.Err() != nil
		return !final, fmt.Errorf("agent %s: %w", c.peer.Host, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return true, fmt.Errorf("agent %s: read answer: %w", c.peer.Host, err)
	}
	if resp.StatusCode != http.StatusOK {
		var we wireError
		if json.Unmarshal(raw, &we) != nil || we.Error == "" {
			return false, fmt.Errorf("agent %s: HTTP %d", c.peer.Host, resp.StatusCode)
		}
		return false, answerError(we)
	}
	if out == nil {
		return false, nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return false, fmt.Errorf("agent %s: decode answer: %w", c.peer.Host, err)
	}
	return false, nil
}

var _ agentapi.Agent = (*Client)(nil)

// SetRetries sets how often idempotent calls are retried on transport
// errors (heartbeats use none).
func (c *Client) SetRetries(n int) { c.retries = n }
