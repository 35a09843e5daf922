package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/knib/knib/internal/api"
	"github.com/knib/knib/internal/auth"
	"github.com/knib/knib/internal/clock"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/httperr"
	"github.com/knib/knib/internal/service"
)

// Prefix is the path prefix of every API route.
const Prefix = "/api/v1"

// maxBody bounds request bodies.
const maxBody = 1 << 20

// Handler serves the API.
type Handler struct {
	svc    *service.Service
	log    *slog.Logger
	mux    *http.ServeMux
	routes []route
	// closing is closed by CloseStreams: event streams end, so that a
	// server shutting down does not wait on them.
	closing   chan struct{}
	closeOnce sync.Once
	observe   RequestObserver // metrics.go; nil = none
}

// CloseStreams ends every open event stream (GET /events) and refuses new
// ones; for http.Server.RegisterOnShutdown, since a stream never goes idle
// by itself. Other requests are left to finish.
func (h *Handler) CloseStreams() { h.closeOnce.Do(func() { close(h.closing) }) }

type route struct {
	method, path, summary, tag string
	status                     int
	public                     bool
	produces                   string // media type of a non-JSON answer
	paged                      bool   // a list page: the next cursor travels in a header
	query, body, resp          reflect.Type
	serve                      func(w http.ResponseWriter, r *http.Request, p domain.Principal) error
}

// New builds the handler with every route.
func New(svc *service.Service, log *slog.Logger) *Handler {
	h := &Handler{svc: svc, log: log, mux: http.NewServeMux(), closing: make(chan struct{})}
	h.register()
	// A known path asked with another method is a 405 naming the methods
	// it takes, not a 404.
	paths := http.NewServeMux()
	allowed := map[string][]string{}
	for _, rt := range h.routes {
		rt := rt
		h.mux.HandleFunc(rt.method+" "+Prefix+rt.path, func(w http.ResponseWriter, r *http.Request) { h.serve(rt, w, r) })
		p := Prefix + rt.path
		if _, seen := allowed[p]; !seen {
			paths.HandleFunc(p, func(http.ResponseWriter, *http.Request) {})
		}
		allowed[p] = append(allowed[p], rt.method)
	}
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := paths.Handler(r); pattern != "" {
			w.Header().Set("Allow", strings.Join(allowed[pattern], ", "))
			writeProblem(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s %s: the method is not allowed here; allowed: %s", r.Method, r.URL.Path,
				strings.Join(allowed[pattern], ", ")), "")
			return
		}
		writeProblem(w, http.StatusNotFound, fmt.Sprintf("no route for %s %s", r.Method, r.URL.Path), "")
	})
	return h
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

func (h *Handler) serve(rt route, w http.ResponseWriter, r *http.Request) {
	if h.observe != nil && rt.produces != "text/event-stream" {
		sw := &statusWriter{ResponseWriter: w}
		start := clock.Real{}.Now()
		defer func() { h.observe(rt.method, Prefix+rt.path, sw.status(), clock.Since(clock.Real{}, start)) }()
		w = sw
	}
	if audited(r.Method) { // the audit log (audit.go); innermost, for auditOf
		aw := h.newAuditWriter(rt, w, r)
		defer aw.finish()
		w = aw
	}
	var p domain.Principal
	if !rt.public {
		var err error
		if p, err = h.authenticate(r); err != nil {
			h.writeError(w, r, err)
			return
		}
		auditOf(w).principal(p)
	}
	if err := rt.serve(w, r, p); err != nil {
		h.writeError(w, r, err)
	}
}

// authenticate finds the caller: the bearer token, else the console's
// session cookie.
func (h *Handler) authenticate(r *http.Request) (domain.Principal, error) {
	if hdr := r.Header.Get("Authorization"); hdr != "" || r.Header.Get("Cookie") == "" {
		tok, perr := auth.ParseBearer(hdr)
		if perr != nil {
			return domain.Principal{}, errMissingToken
		}
		return h.svc.Accounts.Authenticate(r.Context(), tok)
	}
	return h.sessionPrincipal(r) // the console's cookie (session.go)
}

// badRequest marks decoding errors of the request itself.
type badRequest struct {
	field string
	msg   string
}

func (e *badRequest) Error() string { return e.msg }

func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var br *badRequest
	if errors.As(err, &br) {
		writeProblem(w, http.StatusBadRequest, br.msg, br.field)
		return
	}
	if errors.Is(err, errMissingToken) {
		writeProblem(w, http.StatusUnauthorized, err.Error(), "")
		return
	}
	status, field := httperr.Status(err) // one mapping for API, agent RPC and server
	if status == http.StatusInternalServerError {
		h.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeProblem(w, status, err.Error(), field)
}

func writeProblem(w http.ResponseWriter, status int, detail, field string) {
	auditOf(w).problem(detail)
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(api.Problem{
		Type:   "about:blank",
		Title:  http.StatusText(status),
		Status: status,
		Detail: detail,
		Field:  field,
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	if p, ok := v.(pager); ok {
		if next := p.nextCursor(); next != "" {
			w.Header().Set(api.NextCursorHeader, next)
		}
		v = p.pageItems()
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	// Compact: indenting a page of backups costs as much as reading it
	// from the catalogue; the CLI prints its own indented JSON.
	return json.NewEncoder(w).Encode(v)
}

// add registers a typed route. Q is the query struct (fields tagged query),
// B the JSON body (api.Empty for none), R the answer.
func add[Q, B, R any](h *Handler, method, path, tag, summary string, status int, fn func(ctx context.Context, p domain.Principal, r *http.Request, q Q, b B) (R, error)) {
	rt := route{method: method, path: path, tag: tag, summary: summary, status: status,
		query: reflect.TypeFor[Q](), body: reflect.TypeFor[B](), resp: reflect.TypeFor[R]()}
	var zero R
	if p, ok := any(zero).(pager); ok {
		// The document shows a paged answer as what travels: an array.
		rt.resp, rt.paged = reflect.TypeOf(p.pageItems()), true
	}
	rt.serve = func(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
		var q Q
		if err := decodeQuery(r, &q); err != nil {
			return err
		}
		var b B
		if err := decodeBody(r, &b); err != nil {
			return err
		}
		res, err := fn(r.Context(), p, r, q, b)
		if err != nil {
			return err
		}
		if op, ok := any(res).(api.Operation); ok {
			auditOf(w).operation(op.ID)
		}
		return writeJSON(w, status, res)
	}
	h.routes = append(h.routes, rt)
}

// exactKeys checks the top-level keys of a JSON object body against the
// struct's JSON names, byte for byte and each once: encoding/json matches
// keys case-insensitively and lets the last of two win, so {"name":"a",
// "Name":"b"} would create "b".
func exactKeys(raw []byte, t reflect.Type) error {
	if t.Kind() != reflect.Struct {
		return nil
	}
	names := map[string]bool{}
	for _, f := range reflect.VisibleFields(t) {
		if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name != "" && name != "-" {
			names[name] = true
		}
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil // not an object: the decoder says what is wrong
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil
		}
		key, _ := tok.(string)
		switch {
		case !names[key]:
			return &badRequest{field: key, msg: fmt.Sprintf("%s: unknown field (names are case-sensitive)", key)}
		case seen[key]:
			return &badRequest{field: key, msg: fmt.Sprintf("%s: given twice", key)}
		}
		seen[key] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil
		}
	}
	return nil
}

func decodeBody(r *http.Request, dst any) error {
	raw, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return &badRequest{msg: "read body: " + err.Error()}
	}
	if len(raw) > maxBody {
		return &badRequest{msg: "body is larger than 1 MiB"}
	}
	if _, empty := dst.(*api.Empty); empty {
		s := strings.TrimSpace(string(raw))
		if s != "" && s != "{}" {
			return &badRequest{msg: "this request takes no body"}
		}
		return nil
	}
	if len(strings.TrimSpace(string(raw))) == 0 {
		return &badRequest{msg: "request body is empty, want a JSON object"}
	}
	// encoding/json would turn invalid UTF-8 into U+FFFD silently: a name
	// would not be what the caller sent.
	if !utf8.Valid(raw) {
		return &badRequest{msg: "body is not valid UTF-8"}
	}
	if err := exactKeys(raw, reflect.TypeOf(dst).Elem()); err != nil {
		return err
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonError(err)
	}
	if dec.More() {
		return &badRequest{msg: "body holds more than one JSON value"}
	}
	return nil
}

func jsonError(err error) error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		return &badRequest{field: te.Field, msg: fmt.Sprintf("%s: must be %s, got %s", te.Field, jsonKind(te.Type), te.Value)}
	case errors.As(err, &se):
		return &badRequest{msg: fmt.Sprintf("malformed JSON at byte %d: %v", se.Offset, err)}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return &badRequest{field: f, msg: fmt.Sprintf("%s: unknown field", f)}
	}
	return &badRequest{msg: "malformed JSON: " + err.Error()}
}

func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "an integer"
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	case reflect.Slice:
		return "an array"
	}
	return t.String()
}

func decodeQuery(r *http.Request, dst any) error {
	v := reflect.ValueOf(dst).Elem()
	t := v.Type()
	known := map[string][]int{}
	if t.Kind() == reflect.Struct {
		for _, f := range reflect.VisibleFields(t) {
			if name := f.Tag.Get("query"); name != "" {
				known[name] = f.Index
			}
		}
	}
	for name, vals := range r.URL.Query() {
		i, ok := known[name]
		if !ok {
			return &badRequest{field: name, msg: fmt.Sprintf("%s: unknown query parameter", name)}
		}
		raw := vals[len(vals)-1]
		f := v.FieldByIndex(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString(raw)
		case reflect.Bool:
			b, err := strconv.ParseBool(raw)
			if err != nil {
				return &badRequest{field: name, msg: fmt.Sprintf("%s: must be true or false, got %q", name, raw)}
			}
			f.SetBool(b)
		case reflect.Int, reflect.Int64:
			n, err := strconv.ParseInt(raw, 10, 64)
			if err != nil {
				return &badRequest{field: name, msg: fmt.Sprintf("%s: must be an integer, got %q", name, raw)}
			}
			f.SetInt(n)
		}
	}
	return nil
}
