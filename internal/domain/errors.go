package domain

import (
	"errors"
	"fmt"
)

// Sentinel errors. Wrap them with fmt.Errorf("...: %w", ErrX) to add context.
var (
	// ErrNotFound means the named object does not exist (or is not visible to
	// the caller, which must not learn that it exists).
	ErrNotFound = errors.New("not found")
	// ErrConflict means the request is valid but the current state forbids it
	// (name taken, offering still in use, VM busy with another operation).
	ErrConflict = errors.New("conflict")
	// ErrForbidden means the caller is known but lacks the role for the action.
	ErrForbidden = errors.New("forbidden")
	// ErrUnauthorized means the caller presented no valid token.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrUnavailable means a dependency (agent, hypervisor, storage) cannot be
	// reached right now; retrying later may succeed.
	ErrUnavailable = errors.New("unavailable")
	// ErrThrottled means the caller failed too often (log-ins) and must
	// wait before trying again.
	ErrThrottled = errors.New("too many attempts")
	// ErrLimitExceeded means an account's resource limit forbids the action.
	ErrLimitExceeded = errors.New("account resource limit exceeded")
)

// InvalidError reports bad input: Field names the offending field as the
// caller spelled it (JSON or flag name), Reason says what is wrong.
type InvalidError struct {
	Field  string
	Reason string
}

func (e *InvalidError) Error() string {
	if e.Field == "" {
		return e.Reason
	}
	return fmt.Sprintf("%s: %s", e.Field, e.Reason)
}

// Invalid builds an *InvalidError with a formatted reason.
func Invalid(field, format string, args ...any) error {
	return &InvalidError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// IsInvalid reports whether err is or wraps an *InvalidError.
func IsInvalid(err error) bool {
	var ie *InvalidError
	return errors.As(err, &ie)
}
