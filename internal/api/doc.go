// Package api holds the JSON wire types of knib's HTTP API (/api/v1), shared
// by the server (httpapi), the Go client and the CLI. Field names are
// snake_case; identifiers are called id; lists are JSON arrays (never null).
// The OpenAPI document is generated from these types, so a field added here
// appears in docs/openapi.json.
package api
