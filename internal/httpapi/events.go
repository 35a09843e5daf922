package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/knib/knib/internal/api"
	"github.com/knib/knib/internal/clock"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/store"
)

// Event stream timing: how often the stream reads the catalogue for changes
// (one operation, or the caller's unfinished ones) and how often it sends a
// comment so that proxies keep the connection.
const (
	eventPollOne = 100 * time.Millisecond
	eventPollAll = 250 * time.Millisecond
	eventPing    = 15 * time.Second
)

// registerEvents adds GET /events: server-sent events of the operations the
// caller may see. The stream reads the catalogue, not an in-process
// notifier, so that it shows operations that another server of the same
// catalogue runs.
func (h *Handler) registerEvents() {
	h.routes = append(h.routes, route{method: "GET", path: "/events", tag: "operations", status: http.StatusOK, produces: "text/event-stream",
		summary: "Server-sent events: `event: operation` with the operation's JSON whenever an operation the caller may see changes (with operation=ID: that one, ending after its final state); a `: ping` comment every 15 s",
		query:   typeOf[api.EventQuery](), body: typeOf[api.Empty](), resp: typeOf[[]byte](),
		serve: func(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
			var q api.EventQuery
			if err := decodeQuery(r, &q); err != nil {
				return err
			}
			ctx := r.Context()
			var first domain.Operation
			if q.Operation != "" {
				op, err := h.svc.Kernel.Operation(ctx, p, q.Operation)
				if err != nil {
					return err // 404 before the stream starts
				}
				first = op
			}
			flusher, ok := w.(http.Flusher)
			if !ok {
				return fmt.Errorf("the connection cannot stream")
			}
			w.Header().Set("Content-Type", "text/event-stream")
			w.Header().Set("Cache-Control", "no-store")
			w.Header().Set("X-Accel-Buffering", "no")
			w.WriteHeader(http.StatusOK)
			s := &eventStream{w: bufio.NewWriter(w), flush: flusher, sent: map[string]api.Operation{}, clk: h.svc.Kernel.Clock()}
			if err := s.commit(); err != nil { // the headers go now
				return nil
			}
			if q.Operation != "" {
				return s.one(ctx, h, p, first)
			}
			return s.all(ctx, h, p)
		}})
}

// eventStream writes server-sent events and remembers what it sent.
type eventStream struct {
	w     *bufio.Writer
	flush http.Flusher
	sent  map[string]api.Operation // by id: the last state sent
	last  time.Time                // when something was last written
	clk   clock.Clock
}

// send writes op when it differs from what was sent for it; it reports
// whether it wrote.
func (s *eventStream) send(op domain.Operation) (bool, error) {
	a := operationToAPI(op)
	if prev, ok := s.sent[a.ID]; ok && prev.State == a.State && prev.Progress == a.Progress && prev.Message == a.Message {
		return false, nil
	}
	data, err := json.Marshal(a)
	if err != nil {
		return false, err
	}
	s.sent[a.ID] = a
	if _, err := fmt.Fprintf(s.w, "event: operation\nid: %s\ndata: %s\n\n", a.ID, data); err != nil {
		return false, err
	}
	return true, s.commit()
}

func (s *eventStream) commit() error {
	if err := s.w.Flush(); err != nil {
		return err
	}
	s.flush.Flush()
	s.last = s.clk.Now()
	return nil
}

// ping keeps an idle stream open.
func (s *eventStream) ping() error {
	if s.clk.Now().Sub(s.last) < eventPing {
		return nil
	}
	if _, err := s.w.WriteString(": ping\n\n"); err != nil {
		return err
	}
	return s.commit()
}

func finished(op domain.Operation) bool {
	st := operationToAPI(op).State
	return st == "Succeeded" || st == "Failed"
}

// one follows a single operation until its final state.
func (s *eventStream) one(ctx context.Context, h *Handler, p domain.Principal, op domain.Operation) error {
	s.last = s.clk.Now()
	changed := h.svc.Kernel.OperationsChanged()
	for {
		if _, err := s.send(op); err != nil {
			return nil // the client went away
		}
		if finished(op) {
			return nil
		}
		// A change this process writes wakes the stream at once; the poll
		// finds those of other servers.
		select {
		case <-ctx.Done():
			return nil
		case <-h.closing:
			return nil
		case <-changed:
		case <-time.After(eventPollOne):
		}
		if err := s.ping(); err != nil {
			return nil
		}
		changed = h.svc.Kernel.OperationsChanged()
		next, err := h.svc.Kernel.Operation(ctx, p, op.ID)
		if err != nil {
			return nil // gone (or the client left): end the stream
		}
		op = next
	}
}

// all follows the operations the caller may see: every unfinished one, and
// every one that changed since the stream opened (so that an operation that
// starts and ends between two reads still shows its final state).
func (s *eventStream) all(ctx context.Context, h *Handler, p domain.Principal) error {
	s.last = s.clk.Now()
	since := s.last.Add(-time.Second)
	const recent = 50
	for {
		unfinished, err := storePage(api.Paging{Limit: api.MaxPage})
		if err != nil {
			return nil
		}
		list, _, err := h.svc.Kernel.ListOperations(ctx, p, false, unfinished)
		if err != nil {
			return nil
		}
		latest, _, err := h.svc.Kernel.ListOperations(ctx, p, true, store.Page{Limit: recent})
		if err != nil {
			return nil
		}
		keep := map[string]bool{}
		for _, op := range append(list, latest...) {
			keep[op.ID] = true
			if finished(op) && operationToAPI(op).Updated.Before(since) {
				continue // history from before the stream
			}
			if _, err := s.send(op); err != nil {
				return nil
			}
		}
		for id := range s.sent {
			if !keep[id] {
				delete(s.sent, id)
			}
		}
		if err := s.ping(); err != nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-h.closing:
			return nil
		case <-time.After(eventPollAll):
		}
	}
}
