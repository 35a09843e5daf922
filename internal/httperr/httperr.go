package httperr

import (
	"context"
	"errors"
	"net/http"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/domain"
)

// table maps sentinels to statuses, first match wins.
var table = []struct {
	err    error
	status int
}{
	{domain.ErrUnauthorized, http.StatusUnauthorized},
	{domain.ErrForbidden, http.StatusForbidden},
	{domain.ErrNotFound, http.StatusNotFound},
	{agentapi.ErrUnknownDomain, http.StatusNotFound},
	{agentapi.ErrUnknownTask, http.StatusNotFound},
	{agentapi.ErrUnknownKind, http.StatusUnprocessableEntity},
	{domain.ErrConflict, http.StatusConflict},
	{domain.ErrLimitExceeded, http.StatusConflict},
	{domain.ErrUnavailable, http.StatusServiceUnavailable},
	{domain.ErrThrottled, http.StatusTooManyRequests},
	{context.DeadlineExceeded, http.StatusGatewayTimeout},
}

// Status returns the HTTP status of err and, for invalid input, the field
// at fault. An error no rule knows is 500.
func Status(err error) (status int, field string) {
	var inv *domain.InvalidError
	if errors.As(err, &inv) {
		return http.StatusBadRequest, inv.Field
	}
	for _, m := range table {
		if errors.Is(err, m.err) {
			return m.status, ""
		}
	}
	return http.StatusInternalServerError, ""
}

// Sentinel returns the sentinel err wraps that decides its status, or nil.
func Sentinel(err error) error {
	for _, m := range table {
		if errors.Is(err, m.err) {
			return m.err
		}
	}
	return nil
}
