package httpapi_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/knib/knib/internal/metrics"
)

func getMetrics(t *testing.T, e *env, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", e.srv.URL+"/metrics", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

func TestMetricsNeedAnAdminAndLabelRoutesByPattern(t *testing.T) {
	e := newEnv(t)
	m := metrics.New(e.st, nil)
	e.handle.ObserveRequests(m.Request)
	e.handle.ServeMetrics(m.Handler())

	e.do(e.admin, "GET", "/vms/web", "", 200, nil)
	e.do(e.admin, "GET", "/vms/nosuchvm", "", 404, nil)

	if code, body := getMetrics(t, e, ""); code != http.StatusUnauthorized {
		t.Fatalf("no token: %d %s", code, body)
	}
	if code, body := getMetrics(t, e, e.user); code != http.StatusForbidden {
		t.Fatalf("user token: %d %s", code, body)
	}
	code, body := getMetrics(t, e, e.admin)
	if code != http.StatusOK {
		t.Fatalf("admin token: %d %s", code, body)
	}
	for _, want := range []string{
		`knib_http_request_duration_seconds_count{code="200",method="GET",route="/api/v1/vms/{vm}"} 1`,
		`knib_http_request_duration_seconds_count{code="404",method="GET",route="/api/v1/vms/{vm}"} 1`,
		`knib_vm_info{account="admin",offering="",state="Running",vm="web"`,
		`knib_catalogue_up 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("missing %s", want)
		}
	}
	if strings.Contains(body, "nosuchvm") {
		t.Error("a raw path became a label")
	}
}
