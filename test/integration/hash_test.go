package integration

import (
	"testing"

	"github.com/knib/knib/internal/agent"
)

func hashFile(t *testing.T, path string) string {
	t.Helper()
	h, err := agent.HashFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return h
}
