// Package console is knib's web console: static HTML, CSS and JavaScript
// (ES modules) embedded in the binary with go:embed and served at /ui/.
// Vocabulary:
//   - page: a view of the single-page console, chosen by the URL fragment
//     (#/ dashboard, #/vm/NAME, #/backup/ID, #/jobs, #/login);
//   - session: the console logs in through POST /api/v1/session; the
//     browser keeps the HttpOnly cookie and the page keeps the CSRF token,
//     which it sends as X-CSRF-Token with every write.
//
// The console uses only the public API under /api/v1, so authorization
// lives in one place. Nothing is built: the files here are what is served,
// so `go build` needs no JavaScript tool and no built asset can be stale.
// The handler sets a strict Content-Security-Policy (no inline script or
// style, no framing).
package console
