package server

import (
	"context"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"
)

// A client that sends its request a byte now and then is cut off after the
// read timeout; it holds no connection for long.
func TestSlowClientsAreCutOff(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan string, 1)
	done := make(chan error, 1)
	dir := t.TempDir()
	go func() {
		done <- Run(ctx, Config{DataDir: dir, Database: filepath.Join(dir, "knib.db"), Listen: "127.0.0.1:0", ReadTimeout: time.Second,
			Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Ready: func(addr string) { ready <- addr }})
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("server: %v", err)
	}
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := "POST /api/v1/offerings HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	closed := false
	for i := 0; i < 40 && !closed; i++ { // a byte every 250 ms: 10 s at most
		time.Sleep(250 * time.Millisecond)
		_, err := conn.Write([]byte("x"))
		closed = err != nil
		if !closed {
			conn.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
			var b [512]byte
			if n, err := conn.Read(b[:]); n > 0 || (err != nil && !isTimeout(err)) {
				closed = true // the server answered (an error) or closed
			}
		}
	}
	if !closed {
		t.Fatalf("a trickling client still held its connection after %s", time.Since(start).Round(time.Second))
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
