package server

import (
	"strings"
	"testing"
)

func TestOneServerPerDataDirectory(t *testing.T) {
	dir := t.TempDir()
	first, err := lockDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lockDataDir(dir); err == nil || !strings.Contains(err.Error(), "another knib server runs on data directory") {
		t.Fatalf("second server on the same data directory: %v", err)
	}
	first.Close() // the process ends
	again, err := lockDataDir(dir)
	if err != nil {
		t.Fatalf("after the first server ended: %v", err)
	}
	again.Close()
}
