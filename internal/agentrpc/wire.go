package agentrpc

import (
	"errors"

	"github.com/knib/knib/internal/agentapi"
)

const prefix = "/agent-api/v1"

// wireError is the body of an error answer.
type wireError struct {
	Error string `json:"error"`
	Code  string `json:"code,omitempty"`
}

var codes = []struct {
	code string
	err  error
}{
	{"unknown_domain", agentapi.ErrUnknownDomain},
	{"unknown_task", agentapi.ErrUnknownTask},
	{"unknown_kind", agentapi.ErrUnknownKind},
}

func codeOf(err error) string {
	for _, c := range codes {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return ""
}

func sentinelOf(code string) error {
	for _, c := range codes {
		if c.code == code {
			return c.err
		}
	}
	return nil
}

// remoteError is an error the agent returned; it unwraps to the agentapi
// sentinel its code names.
type remoteError struct {
	msg      string
	sentinel error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.sentinel }
