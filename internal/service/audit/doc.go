// Package audit keeps the audit log: who changed what through the API, and
// who was refused.
//
// Vocabulary:
//   - line: one state-changing API call (store.AuditEntry): when, account,
//     token id, source address, action, object, result (HTTP status, the
//     refusal's message, the operation it started). A line never holds a
//     secret: no body, password, token or cookie.
//   - action: the route that answered, its method and path pattern
//     ("POST /backups/{id}/restore"), stable across calls.
//   - object: the ids the path named ("id=…"), several joined by a space.
//   - retention: the setting audit.retention.days; Prune removes older
//     lines (the server calls it every hour).
//
// Admins read every line; a user reads only the lines of their account.
package audit
