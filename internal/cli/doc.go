// Package cli is the knib command line: the server and agent roles, and the
// client commands that talk to the server's HTTP API.
//
// Conventions: --server / KNIB_SERVER picks the server (default
// http://127.0.0.1:8181); the token comes from KNIB_TOKEN or, on the server's
// machine, <data dir>/admin.token. --output table|json selects the format;
// JSON uses the API's snake_case objects and arrays. Exit codes: 0 success,
// 1 the request or operation failed, 2 bad usage. Long operations wait and
// show progress unless --async is given.
package cli
