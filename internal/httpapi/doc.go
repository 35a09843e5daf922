// Package httpapi serves knib's JSON REST API under /api/v1 on the standard
// library's ServeMux.
//
// Vocabulary:
//   - route: one method and path with its typed query, body and answer; the
//     route table is the single source of both the handlers and the OpenAPI
//     3.1 document served at /api/v1/openapi.json (checked in as
//     docs/openapi.json).
//   - problem: every error answer is application/problem+json (RFC 9457)
//     with a human message and, for bad input, the name of the bad field.
//   - principal: the caller, from the "Authorization: Bearer <token>" header.
//
// Request bodies with unknown fields, unknown query parameters and malformed
// path ids are refused with 400 before any use case runs.
package httpapi
