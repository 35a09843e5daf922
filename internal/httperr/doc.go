// Package httperr is the one mapping from knib's errors to HTTP status
// codes, used by the API (httpapi), the agent RPC (agentrpc) and the
// server's agent endpoints, so that one error means one status everywhere.
//
// Vocabulary:
//   - sentinel: a package-level error (domain.ErrNotFound, agentapi.ErrUnknownTask, ...)
//     that errors wrap with %w; the status follows the sentinel.
//   - field: for invalid input, the name of the request field at fault.
package httperr
