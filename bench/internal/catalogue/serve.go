package catalogue

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/knib/knib/bench/internal/knibproc"
	"github.com/knib/knib/internal/clock"
	"github.com/knib/knib/internal/store/sqlstore"
	"github.com/knib/knib/internal/testbed"
)

// Database creates an empty database for one run and returns its string
// for --database and a function that removes it.
func Database(ctx context.Context, engine, dir, name string) (string, func(), error) {
	if engine == sqlstore.EngineSQLite {
		return filepath.Join(dir, "knib.db"), func() {}, nil
	}
	base := os.Getenv(testbed.EnvPostgresURL)
	if base == "" {
		raw, err := os.ReadFile(testbed.PostgresURLFile)
		if err != nil {
			return "", nil, fmt.Errorf("no PostgreSQL (run scripts/setup-postgres.sh): %w", err)
		}
		base = strings.TrimSpace(string(raw))
	}
	db, err := sql.Open("pgx", base)
	if err != nil {
		return "", nil, err
	}
	var b [4]byte
	rand.Read(b[:])
	dbName := "knib_scale_" + name + "_" + hex.EncodeToString(b[:]) // letters, digits and _: a safe identifier
	if _, err := db.ExecContext(ctx, `CREATE DATABASE `+dbName+` TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'`); err != nil {
		db.Close()
		return "", nil, fmt.Errorf("create database: %w", err)
	}
	u, err := url.Parse(base)
	if err != nil {
		db.Close()
		return "", nil, err
	}
	u.Path = "/" + dbName
	return u.String(), func() {
		db.ExecContext(context.Background(), `DROP DATABASE IF EXISTS `+dbName+` WITH (FORCE)`)
		db.Close()
	}, nil
}

// Server is a knib server serving a catalogue (no libvirt).
type Server struct {
	cmd   *exec.Cmd
	URL   string // e.g. http://127.0.0.1:1234
	Token string // the admin token
	done  chan struct{}
	log   string
}

// Stop ends the server.
func (s *Server) Stop() { knibproc.StopProcess(s.cmd, s.done) }

// StartServer runs `knib server` on the catalogue (no local libvirt: the
// catalogue's hosts are not connected) and returns when its API answers,
// with the seconds that took.
func StartServer(ctx context.Context, bin, dir, dbs string) (*Server, float64, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, 0, err
	}
	addr := ln.Addr().String()
	ln.Close()
	data := filepath.Join(dir, "data")
	s := &Server{URL: "http://" + addr, done: make(chan struct{}), log: filepath.Join(dir, "server.log")}
	logf, err := os.Create(s.log)
	if err != nil {
		return nil, 0, err
	}
	args := []string{"server", "--data-dir", data, "--listen", addr, "--libvirt-uri", "", "--log-level", "warn"}
	if !strings.HasSuffix(dbs, ".db") {
		args = append(args, "--database", dbs)
	} else {
		// The SQLite catalogue is the data directory's knib.db.
		if err := os.MkdirAll(data, 0o711); err != nil {
			return nil, 0, err
		}
		if err := os.Rename(dbs, filepath.Join(data, "knib.db")); err != nil {
			return nil, 0, err
		}
	}
	s.cmd = exec.Command(bin, args...)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	t0 := clock.Real{}.Now()
	if err := s.cmd.Start(); err != nil {
		return nil, 0, err
	}
	go func() { s.cmd.Wait(); logf.Close(); close(s.done) }()
	for {
		if resp, err := http.Get(s.URL + "/api/v1/health"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-s.done:
			raw, _ := os.ReadFile(s.log)
			return nil, 0, fmt.Errorf("knib server exited: %s", raw)
		case <-ctx.Done():
			s.Stop()
			return nil, 0, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	took := clock.Since(clock.Real{}, t0).Seconds()
	raw, err := os.ReadFile(filepath.Join(data, "admin.token"))
	if err != nil {
		s.Stop()
		return nil, 0, err
	}
	s.Token = strings.TrimSpace(string(raw))
	return s, took, nil
}

// Call makes one request and returns the answer's size and next cursor.
func (s *Server) Call(ctx context.Context, hc *http.Client, method, path string, body any) (int, string, error) {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return 0, "", err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.URL+"/api/v1"+path, rd)
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Authorization", "Bearer "+s.Token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return 0, "", err
	}
	if resp.StatusCode >= 300 {
		return 0, "", fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	return int(n), resp.Header.Get("Knib-Next-Cursor"), nil
}
