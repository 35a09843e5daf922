package api

import "time"

// AuditQuery filters GET /audit.
type AuditQuery struct {
	Account string `query:"account" doc:"only this account's lines (id or name; for a refused log-in, the name tried); users may only name their own"`
	Since   string `query:"since" doc:"only lines at or after this time (RFC 3339)"`
	Action  string `query:"action" doc:"only this action, the method and path pattern of the route, e.g. POST /backups/{id}/restore"`
	Paging
}

// AuditLine is one line of the audit log: a state-changing API call,
// refused ones included. It never holds a secret.
type AuditLine struct {
	ID          string    `json:"id"`
	Time        time.Time `json:"time"`
	AccountID   string    `json:"account_id" doc:"empty when the caller was not authenticated"`
	Account     string    `json:"account" doc:"the account's name; for a refused log-in, the name tried"`
	TokenID     string    `json:"token_id" doc:"the API token the call or its console session used; empty for a password session"`
	Source      string    `json:"source" doc:"the caller's IP address"`
	Action      string    `json:"action" doc:"method and path pattern of the route, e.g. POST /backups/{id}/restore"`
	Object      string    `json:"object" doc:"the ids the path named, e.g. id=…"`
	Status      int       `json:"status" doc:"the HTTP status of the answer"`
	Error       string    `json:"error" doc:"the refusal's message (status 400 and above)"`
	OperationID string    `json:"operation_id" doc:"the operation the call started, if any"`
}
