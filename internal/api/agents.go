package api

import "time"

// JoinTokenCreate is the body of POST /join-tokens.
type JoinTokenCreate struct {
	Zone string `json:"zone" doc:"zone the joining host goes to (created when absent)"`
	TTL  string `json:"ttl,omitempty" doc:"how long the token is valid, a Go duration such as 1h (default 1h, at most 168h)"`
}

// JoinTokenCreated is the answer of POST /join-tokens: the token text is
// shown this once; the server keeps only its hash.
type JoinTokenCreated struct {
	ID        string    `json:"id"`
	Token     string    `json:"token" doc:"knibjoin.<id>.<secret>.<sha256 of the CA certificate>"`
	Zone      string    `json:"zone"`
	ExpiresAt time.Time `json:"expires_at"`
}

// JoinToken is a stored join token (never its secret).
type JoinToken struct {
	ID        string    `json:"id"`
	Zone      string    `json:"zone"`
	Created   time.Time `json:"created"`
	ExpiresAt time.Time `json:"expires_at"`
	State     string    `json:"state" doc:"Valid, Used, Expired or Revoked"`
	UsedAt    time.Time `json:"used_at,omitzero"`
	UsedBy    string    `json:"used_by,omitempty" doc:"host that joined with it"`
}
