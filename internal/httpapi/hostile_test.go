package httpapi_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
)

// Every name and path a caller gives that reaches a file, domain XML or a
// command line is checked: traversal, control characters, very long and
// invalid UTF-8 strings are a 400, and nothing is created.
func TestHostileNamesAreRefused(t *testing.T) {
	e := newEnv(t)
	hostile := map[string][]byte{
		"traversal":     []byte(`"../../etc/passwd"`),
		"separator":     []byte(`"a/b"`),
		"newline":       []byte(`"a\nb"`),
		"nul":           []byte(`"a\u0000b"`),
		"escape":        []byte(`"a\u001b[31mb"`),
		"long":          []byte(`"` + strings.Repeat("a", 5000) + `"`),
		"invalid utf-8": append(append([]byte(`"a`), 0xff, 0xfe), '"'),
		"empty":         []byte(`""`),
	}
	fields := []struct {
		method, path, before, after string
	}{
		{"POST", "/offerings", `{"name":`, `}`},
		{"POST", "/accounts", `{"name":`, `}`},
		{"POST", "/zones", `{"name":`, `}`},
		{"POST", "/tokens", `{"account":"alice","role":"user","name":`, `}`},
		{"POST", "/vms/web/snapshots", `{"name":`, `}`},
		{"POST", "/vms/web/schedules", `{"interval":"daily","at":"02:00","timezone":`, `}`},
		{"POST", "/storages", `{"zone":"default","path":`, `}`},
		{"POST", "/vms/web/disks", `{"size":1048576,"target":`, `}`},
		{"PUT", "/vms/web/details/backupValidationCommand", `{"value":`, `}`},
	}
	for _, f := range fields {
		for kind, v := range hostile {
			if kind == "empty" && (f.path == "/tokens" || f.path == "/vms/web/snapshots" || f.path == "/vms/web/schedules" || f.path == "/vms/web/disks") {
				continue // optional there: empty means the default
			}
			if strings.HasPrefix(f.path, "/vms/web/details/") && (kind == "traversal" || kind == "separator" || kind == "long" || kind == "empty") {
				continue // a command in the guest: paths are what it names; 16 KiB at most
			}
			body := append(append([]byte(f.before), v...), f.after...)
			req, _ := http.NewRequest(f.method, e.srv.URL+"/api/v1"+f.path, bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+e.admin)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 400 {
				t.Errorf("%s %s with a %s value: %d %.200s", f.method, f.path, kind, resp.StatusCode, got)
			}
		}
	}
}
