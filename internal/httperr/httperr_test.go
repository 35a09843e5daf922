package httperr

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/domain"
)

func TestStatus(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
		field  string
	}{
		{domain.Invalid("name", "bad"), http.StatusBadRequest, "name"},
		{fmt.Errorf("token: %w", domain.ErrUnauthorized), http.StatusUnauthorized, ""},
		{fmt.Errorf("x: %w", domain.ErrForbidden), http.StatusForbidden, ""},
		{fmt.Errorf("vm a: %w", domain.ErrNotFound), http.StatusNotFound, ""},
		{fmt.Errorf("domain: %w", agentapi.ErrUnknownDomain), http.StatusNotFound, ""},
		{fmt.Errorf("task: %w", agentapi.ErrUnknownTask), http.StatusNotFound, ""},
		{fmt.Errorf("command: %w", agentapi.ErrUnknownKind), http.StatusUnprocessableEntity, ""},
		{fmt.Errorf("busy: %w", domain.ErrConflict), http.StatusConflict, ""},
		{fmt.Errorf("limit: %w", domain.ErrLimitExceeded), http.StatusConflict, ""},
		{fmt.Errorf("host: %w", domain.ErrUnavailable), http.StatusServiceUnavailable, ""},
		{fmt.Errorf("wait: %w", context.DeadlineExceeded), http.StatusGatewayTimeout, ""},
		{errors.New("disk on fire"), http.StatusInternalServerError, ""},
	} {
		st, field := Status(tc.err)
		if st != tc.status || field != tc.field {
			t.Errorf("%v: got %d %q, want %d %q", tc.err, st, field, tc.status, tc.field)
		}
	}
	if Sentinel(fmt.Errorf("a: %w", domain.ErrConflict)) != domain.ErrConflict || Sentinel(errors.New("x")) != nil {
		t.Error("Sentinel")
	}
}
