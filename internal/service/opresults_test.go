package service_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/knib/knib/internal/domain"
)

// startCall finds the kind literal of every operation the service starts.
var startCall = regexp.MustCompile(`k\.(?:Start|StartID|VMOperation|VMOperationThen)\([^\n]*?"([a-z-]+\.[a-z-]+)", `)

// Every operation kind the service can start has a registered result type,
// and the registry has no kind the service never starts.
func TestEveryOperationKindHasAResultType(t *testing.T) {
	files, err := filepath.Glob("*/*.go")
	if err != nil {
		t.Fatal(err)
	}
	started := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range startCall.FindAllStringSubmatch(string(src), -1) {
			started[m[1]] = true
		}
	}
	if len(started) == 0 {
		t.Fatal("found no operation start in the service sources")
	}
	registered := map[string]bool{}
	for _, r := range domain.OpResults() {
		if registered[r.OpKind()] {
			t.Errorf("kind %s registered twice", r.OpKind())
		}
		registered[r.OpKind()] = true
	}
	for k := range started {
		if !registered[k] {
			t.Errorf("operation kind %s has no result type in domain.OpResults", k)
		}
	}
	for k := range registered {
		if !started[k] {
			t.Errorf("result type registered for kind %s, which the service never starts", k)
		}
	}
}
