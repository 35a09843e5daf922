package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/knib/knib/internal/api"
	"github.com/knib/knib/internal/client"
)

// openEvents opens GET /events with the query and returns a reader of its
// events (kind, data), or the status when the server refused.
func openEvents(t *testing.T, e *env, token, query string) (*http.Response, func() (string, string, bool)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/api/v1/events"+query, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	sc := bufio.NewScanner(resp.Body)
	next := func() (string, string, bool) {
		var kind, data string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "" && kind != "":
				return kind, data, true
			case strings.HasPrefix(line, "event: "):
				kind = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				data = strings.TrimPrefix(line, "data: ")
			}
		}
		return "", "", false
	}
	return resp, next
}

// The event stream pushes an operation's states to its end, to the caller
// who may see it only; the client's wait follows it.
func TestOperationEvents(t *testing.T) {
	e := newEnv(t)

	// The stream of everything the admin may see, opened before the
	// operation exists, carries it to its final state.
	resp, next := openEvents(t, e, e.admin, "")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var op api.Operation
	e.do(e.admin, "POST", "/inventory/refresh", "", 202, &op)
	var states []string
	deadline := time.AfterFunc(30*time.Second, func() { resp.Body.Close() })
	defer deadline.Stop()
	for {
		kind, data, ok := next()
		if !ok {
			t.Fatalf("the stream ended before the operation finished; states seen: %v", states)
		}
		var got api.Operation
		if err := json.Unmarshal([]byte(data), &got); err != nil || kind != "operation" {
			t.Fatalf("event %q: %s (%v)", kind, data, err)
		}
		if got.ID != op.ID {
			continue
		}
		states = append(states, got.State)
		if got.State == "Succeeded" {
			break
		}
	}

	// One operation's stream: a user gets 404 for the admin's, the admin
	// its final state, and the stream ends there.
	e.do(e.user, "GET", "/events?operation="+op.ID, "", 404, nil)
	e.do(e.admin, "GET", "/events?operation=nope", "", 404, nil)
	_, one := openEvents(t, e, e.admin, "?operation="+op.ID)
	kind, data, ok := one()
	if !ok || kind != "operation" || !strings.Contains(data, `"state":"Succeeded"`) {
		t.Fatalf("one operation's stream: %q %s %v", kind, data, ok)
	}
	if _, _, more := one(); more {
		t.Fatal("the stream of a finished operation goes on")
	}

	// The CLI's client waits on the stream.
	e.do(e.admin, "POST", "/inventory/refresh", "", 202, &op)
	var seen []string
	final, err := client.New(e.srv.URL, e.admin).WaitOperation(context.Background(), op.ID, func(o api.Operation) { seen = append(seen, o.State) })
	if err != nil || final.State != "Succeeded" || len(seen) == 0 || seen[len(seen)-1] != "Succeeded" {
		t.Fatalf("wait: %v %+v, progress %v", err, final, seen)
	}
}

// CloseStreams (the server's shutdown) ends an open stream, which would
// otherwise keep a graceful shutdown waiting; later streams end at once.
func TestCloseStreamsEndsEventStreams(t *testing.T) {
	e := newEnv(t)
	for _, opened := range []string{"before", "after"} {
		resp, next := openEvents(t, e, e.admin, "")
		if resp.StatusCode != 200 {
			t.Fatalf("events (%s): %d", opened, resp.StatusCode)
		}
		// A bound, so that a stream that does not end fails the test
		// rather than hang it.
		bound := time.AfterFunc(30*time.Second, func() { resp.Body.Close() })
		ended := make(chan bool, 1)
		go func() {
			for {
				if _, _, ok := next(); !ok {
					ended <- true
					return
				}
			}
		}()
		e.handle.CloseStreams()
		<-ended
		if !bound.Stop() {
			t.Fatalf("the stream opened %s the shutdown did not end", opened)
		}
		resp.Body.Close()
	}
}
