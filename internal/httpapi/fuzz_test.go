package httpapi_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// FuzzRequests: no request body or query string makes the API answer 5xx
// or panic; bad input is a 4xx with a problem body.
func FuzzRequests(f *testing.F) {
	e := newEnv(f)
	routes := []struct{ method, path string }{
		{"POST", "/offerings"}, {"POST", "/vms/web/assign"}, {"POST", "/vms/web/schedules"}, {"PUT", "/settings"},
		{"POST", "/backups/delete"}, {"GET", "/vms"}, {"GET", "/backups"}, {"GET", "/jobs"}, {"POST", "/vms/web/disks"},
		{"POST", "/storages"}, {"POST", "/accounts"}, {"PUT", "/vms/web/details"},
	}
	f.Add(0, `{"name":"gold","backup_chain_size":3,"validation_steps":["wait_for_boot"]}`, "")
	f.Add(1, `{"offering_id":"x"}`, "")
	f.Add(2, `{"interval":"daily","at":"02:00","timezone":"Europe/Berlin"}`, "")
	f.Add(5, ``, "limit=5&cursor=eyJpIjoieCJ9")
	f.Add(7, ``, "type=BackupValidation&all=true&limit=0")
	f.Add(8, `{"size":-1,"target":"../x"}`, "")
	f.Add(3, `{"key":"backup.chain.size","value":"\u0000"}`, "scope=host&id=%00")
	f.Fuzz(func(t *testing.T, which int, body, query string) {
		if which < 0 {
			which = -which
		}
		rt := routes[which%len(routes)]
		target := "/api/v1" + rt.path
		if _, err := url.ParseQuery(query); err == nil && !strings.ContainsAny(query, " #\r\n") {
			target += "?" + query
		}
		req, err := http.NewRequest(rt.method, target, strings.NewReader(body))
		if err != nil {
			return
		}
		req.Header.Set("Authorization", "Bearer "+e.admin)
		w := httptest.NewRecorder()
		e.handle.ServeHTTP(w, req)
		if w.Code >= 500 {
			raw, _ := io.ReadAll(w.Body)
			t.Fatalf("%s %s %q: %d %s", rt.method, target, body, w.Code, raw)
		}
		if w.Code >= 400 && w.Header().Get("Content-Type") != "application/problem+json" {
			t.Fatalf("%s %s: %d without a problem body", rt.method, target, w.Code)
		}
	})
}
