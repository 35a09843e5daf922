package agentrpc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/agentapi/agenttest"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/pki"
)

// streamAgent answers ExtractFiles with what, then err.
type streamAgent struct {
	agenttest.Fake
	what string
	err  error
}

func (s *streamAgent) ExtractFiles(ctx context.Context, req agentapi.ExtractFilesRequest, w io.Writer) error {
	if s.what != "" {
		io.WriteString(w, s.what+":"+strings.Join(req.Paths, ","))
	}
	return s.err
}

// File requests cross the wire: a listing as JSON, the tar stream as the
// answer's body, an error before the stream as the agent's error (with its
// sentinel), an error after it began in the trailer (never a silent
// truncation).
func TestFilesCrossTheWire(t *testing.T) {
	ca, err := pki.NewCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	a := &streamAgent{}
	a.ListFilesFunc = func(req agentapi.ListFilesRequest) (agentapi.ListFilesResult, error) {
		return agentapi.ListFilesResult{Volume: req.Volume, Path: req.Path, Entries: []agentapi.FileEntry{{Name: "odd\nname", Type: "file", Size: 3}}}, nil
	}
	ag := issue(t, ca, pki.RoleAgent, "host-a")
	url := serve(t, a, ag.cert, ca)
	srv := issue(t, ca, pki.RoleServer, "server")
	c, err := NewClient(Peer{URL: url, Host: "host-a", Serial: ag.serial}, srv.cert, ca.Cert)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	l, err := c.ListFiles(ctx, agentapi.ListFilesRequest{Volume: "vda1", Path: "/etc"})
	if err != nil || l.Path != "/etc" || len(l.Entries) != 1 || l.Entries[0].Name != "odd\nname" {
		t.Fatalf("list %+v %v", l, err)
	}
	req := agentapi.ExtractFilesRequest{Paths: []string{"/a", "/b"}}
	var buf bytes.Buffer
	a.what = "tar"
	if err := c.ExtractFiles(ctx, req, &buf); err != nil || buf.String() != "tar:/a,/b" {
		t.Fatalf("stream %q %v", buf.String(), err)
	}
	buf.Reset()
	a.what, a.err = "", &domain.InvalidError{Field: "paths", Reason: "bad"}
	var inv *domain.InvalidError
	if err := c.ExtractFiles(ctx, req, &buf); !errors.As(err, &inv) || buf.Len() != 0 {
		t.Fatalf("error before the stream: %q %v", buf.String(), err)
	}
	a.err = fmt.Errorf("/x: %w", domain.ErrNotFound)
	if err := c.ExtractFiles(ctx, req, &buf); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("sentinel before the stream: %v", err)
	}
	a.what, a.err = "part", errors.New("the helper died")
	buf.Reset()
	if err := c.ExtractFiles(ctx, req, &buf); err == nil || !strings.Contains(err.Error(), "the helper died") || buf.String() != "part:/a,/b" {
		t.Fatalf("error after the stream began: %q %v", buf.String(), err)
	}
}
