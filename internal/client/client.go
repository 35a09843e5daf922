// Package client is the Go client of knib's HTTP API, used by the CLI and by
// tests. Errors from the server come back as *APIError carrying the problem
// document's message.
package client

import (
	"bufio"
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

	"github.com/knib/knib/internal/api"
)

// Client talks to one server.
type Client struct {
	Base  string // e.g. http://127.0.0.1:8181
	Token string
	HTTP  *http.Client
}

// New returns a client for base with token.
func New(base, token string) *Client {
	return &Client{Base: strings.TrimRight(base, "/"), Token: token, HTTP: &http.Client{Timeout: 5 * time.Minute}}
}

// TrustCA makes the client accept server certificates issued by the CA
// whose PEM certificate(s) caPEM holds, besides the system's roots (knib's
// own CA: ca.pem in the server's data directory).
func (c *Client) TrustCA(caPEM []byte) error {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(caPEM) {
		return errors.New("no PEM certificate in the CA file")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	c.HTTP.Transport = tr
	return nil
}

// APIError is an error answer of the server.
type APIError struct {
	Status int
	Detail string
	Field  string
}

func (e *APIError) Error() string { return e.Detail }

// Do sends a request: body (if not nil) is JSON-encoded, the answer decoded
// into out (if not nil). query may be nil.
func (c *Client) Do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	_, err := c.do(ctx, method, path, query, body, out)
	return err
}

// Page GETs one page of a list into out (a slice) and returns the cursor of
// the next page, "" on the last one.
func (c *Client) Page(ctx context.Context, path string, query url.Values, out any) (string, error) {
	h, err := c.do(ctx, "GET", path, query, nil, out)
	if err != nil {
		return "", err
	}
	return h.Get(api.NextCursorHeader), nil
}

func (c *Client) do(ctx context.Context, method, path string, query url.Values, body, out any) (http.Header, error) {
	u := c.Base + "/api/v1" + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the knib server at %s: %w", c.Base, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 400 {
		var p api.Problem
		if json.Unmarshal(raw, &p) != nil || p.Detail == "" {
			p.Detail = fmt.Sprintf("%s %s: %s", method, path, resp.Status)
		}
		return nil, &APIError{Status: resp.StatusCode, Detail: p.Detail, Field: p.Field}
	}
	if out == nil {
		return resp.Header, nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return nil, fmt.Errorf("decode answer of %s %s: %w", method, path, err)
	}
	return resp.Header, nil
}

// Download GETs a non-JSON answer (a screenshot) and returns its bytes.
func (c *Client) Download(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", c.Base+"/api/v1"+path, nil)
	if err != nil {
		return nil, err
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the knib server at %s: %w", c.Base, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 400 {
		var p api.Problem
		if json.Unmarshal(raw, &p) != nil || p.Detail == "" {
			p.Detail = fmt.Sprintf("GET %s: %s", path, resp.Status)
		}
		return nil, &APIError{Status: resp.StatusCode, Detail: p.Detail, Field: p.Field}
	}
	return raw, nil
}

// PathEscape escapes one path segment (names may contain spaces).
func PathEscape(s string) string { return url.PathEscape(s) }

// WaitOperation follows an operation until it is done, calling progress on
// every change: on the server's event stream (GET /events?operation=ID),
// and by polling where the stream is not available or ends early. It
// returns the final operation; a failed operation is an error.
func (c *Client) WaitOperation(ctx context.Context, id string, progress func(api.Operation)) (api.Operation, error) {
	last, err := c.followOperation(ctx, id, progress)
	var apiErr *APIError
	if errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound && apiErr.Field != "stream" {
		return last, err
	}
	switch last.State {
	case "Succeeded":
		return last, nil
	case "Failed":
		return last, fmt.Errorf("operation %s (%s) failed: %s", last.ID, last.Kind, last.Error)
	}
	if ctx.Err() != nil {
		return last, ctx.Err()
	}
	return c.pollOperation(ctx, id, last, progress)
}

// followOperation reads the operation's event stream until it ends and
// returns the last state it carried (the zero Operation if none).
func (c *Client) followOperation(ctx context.Context, id string, progress func(api.Operation)) (api.Operation, error) {
	var last api.Operation
	req, err := http.NewRequestWithContext(ctx, "GET", c.Base+"/api/v1/events?operation="+url.QueryEscape(id), nil)
	if err != nil {
		return last, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return last, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		var p api.Problem
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if json.Unmarshal(raw, &p) != nil || p.Detail == "" || resp.StatusCode == http.StatusNotFound && strings.HasPrefix(p.Detail, "no route") {
			// An older server without the stream: poll.
			return last, &APIError{Status: resp.StatusCode, Detail: "no event stream", Field: "stream"}
		}
		return last, &APIError{Status: resp.StatusCode, Detail: p.Detail, Field: p.Field}
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var event, data string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if event == "operation" && data != "" {
				var op api.Operation
				if err := json.Unmarshal([]byte(data), &op); err != nil {
					return last, fmt.Errorf("decode an operation event: %w", err)
				}
				if progress != nil && (op.Progress != last.Progress || op.Message != last.Message || op.State != last.State) {
					progress(op)
				}
				last = op
				if op.State == "Succeeded" || op.State == "Failed" {
					return last, nil
				}
			}
			event, data = "", ""
		case strings.HasPrefix(line, "event:"):
			event = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			data += strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " ")
		}
	}
	return last, sc.Err()
}

// pollOperation polls an operation until it is done.
func (c *Client) pollOperation(ctx context.Context, id string, last api.Operation, progress func(api.Operation)) (api.Operation, error) {
	delay := 50 * time.Millisecond
	for {
		var op api.Operation
		if err := c.Do(ctx, "GET", "/operations/"+PathEscape(id), nil, nil, &op); err != nil {
			return op, err
		}
		if progress != nil && (op.Progress != last.Progress || op.Message != last.Message || op.State != last.State) {
			progress(op)
		}
		last = op
		switch op.State {
		case "Succeeded":
			return op, nil
		case "Failed":
			return op, fmt.Errorf("operation %s (%s) failed: %s", op.ID, op.Kind, op.Error)
		}
		select {
		case <-ctx.Done():
			return op, ctx.Err()
		case <-time.After(delay):
		}
		if delay < 200*time.Millisecond {
			delay *= 2
		}
	}
}
