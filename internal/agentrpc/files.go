package agentrpc

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"github.com/knib/knib/internal/agentapi"
)

// TrailerError is the trailer that carries an error that happened after a
// streamed answer began (the body is then truncated).
const TrailerError = "Knib-Error"

// ListFiles implements agentapi.Files; retried (it changes nothing).
func (c *Client) ListFiles(ctx context.Context, req agentapi.ListFilesRequest) (agentapi.ListFilesResult, error) {
	var res agentapi.ListFilesResult
	return res, c.call(ctx, "POST", "/files/list", req, &res, true)
}

// CloseFiles implements agentapi.Files.
func (c *Client) CloseFiles(ctx context.Context, backupID string) error {
	return c.call(ctx, "POST", "/files/close", backupID, nil, true)
}

// ExtractFiles implements agentapi.Files: the tar stream is copied to w as
// it arrives; an error after it began comes in the TrailerError trailer.
func (c *Client) ExtractFiles(ctx context.Context, req agentapi.ExtractFilesRequest, w io.Writer) error {
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	hreq, err := http.NewRequestWithContext(ctx, "POST", c.peer.URL+prefix+"/files/extract", bytes.NewReader(body))
	if err != nil {
		return err
	}
	hreq.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(hreq)
	if err != nil {
		return fmt.Errorf("agent %s: %w", c.peer.Host, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		var we wireError
		if json.Unmarshal(raw, &we) != nil || we.Error == "" {
			return fmt.Errorf("agent %s: HTTP %d", c.peer.Host, resp.StatusCode)
		}
		return answerError(we)
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("agent %s: extract: %w", c.peer.Host, err)
	}
	if msg := resp.Trailer.Get(TrailerError); msg != "" {
		return fmt.Errorf("agent %s: extract: %s", c.peer.Host, msg)
	}
	return nil
}

// StreamWriter commits a 200 answer at its first byte; until then an error
// can still be answered as a whole.
type StreamWriter struct {
	W           http.ResponseWriter
	ContentType string
	started     bool
}

func (s *StreamWriter) Write(p []byte) (int, error) {
	if !s.started {
		s.started = true
		s.W.Header().Set("Content-Type", s.ContentType)
		s.W.Header().Set("Trailer", TrailerError)
		s.W.WriteHeader(http.StatusOK)
	}
	return s.W.Write(p)
}

// Started reports whether the answer began.
func (s *StreamWriter) Started() bool { return s.started }

// Fail ends a begun answer with err in the trailer.
func (s *StreamWriter) Fail(err error) {
	s.W.Header().Set(TrailerError, err.Error())
}

func filesRoutes(mux *http.ServeMux, a agentapi.Agent, log *slog.Logger) {
	mux.HandleFunc("POST "+prefix+"/files/list", func(w http.ResponseWriter, r *http.Request) {
		var req agentapi.ListFilesRequest
		if !decode(w, r, &req) {
			return
		}
		res, err := a.ListFiles(r.Context(), req)
		reply(w, log, res, err)
	})
	mux.HandleFunc("POST "+prefix+"/files/close", func(w http.ResponseWriter, r *http.Request) {
		var id string
		if !decode(w, r, &id) {
			return
		}
		reply(w, log, struct{}{}, a.CloseFiles(r.Context(), id))
	})
	mux.HandleFunc("POST "+prefix+"/files/extract", func(w http.ResponseWriter, r *http.Request) {
		var req agentapi.ExtractFilesRequest
		if !decode(w, r, &req) {
			return
		}
		sw := &StreamWriter{W: w, ContentType: "application/x-tar"}
		err := a.ExtractFiles(r.Context(), req, sw)
		switch {
		case err == nil && !sw.Started():
			sw.Write(nil)
		case err != nil && !sw.Started():
			reply(w, log, nil, err)
		case err != nil:
			sw.Fail(err)
		}
	})
}
