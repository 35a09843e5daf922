// Package server wires the management server: the store in the data
// directory, the use cases, the HTTP API, the in-process agent of the local
// host and the background loops (following every agent's inventory
// changes, the periodic inventory sync, reconciliation).
//
// Vocabulary:
//   - data directory: where the server keeps its state: knib.db (SQLite),
//     admin.token (mode 0600), storage/ (the local backup storage) and
//     agent.properties (the local agent's configuration file).
//   - catalogue database (Config.Database, --database): where the store
//     lives; a postgres:// URL selects PostgreSQL, anything else is a SQLite
//     file; default knib.db in the data directory. Logged at start with the
//     password redacted.
//   - all-in-one: the embedded default, a server with an in-process agent for
//     the local libvirt, registered as host "localhost" in zone "default".
package server
