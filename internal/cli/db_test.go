package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errw bytes.Buffer
	code := Main(context.Background(), args, &out, &errw)
	return code, out.String(), errw.String()
}

// knib db migrate, export and import on SQLite files: the exit codes, the
// JSON output, and the refusals that change nothing.
func TestDBCommands(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	code, out, errs := run(t, "db", "migrate", "--data-dir", src, "-o", "json")
	if code != 0 {
		t.Fatalf("migrate: %d %s", code, errs)
	}
	var st dbStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.Engine != "sqlite" || st.SchemaVersion < 7 {
		t.Fatalf("migrate output %q: %v", out, err)
	}
	dump := filepath.Join(t.TempDir(), "dump.json")
	if code, _, errs := run(t, "db", "export", "--data-dir", src, "--file", dump); code != 0 {
		t.Fatalf("export: %d %s", code, errs)
	}
	if fi, err := os.Stat(dump); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("dump file: %v %v", fi, err)
	}
	code, out, errs = run(t, "db", "import", "--database", filepath.Join(dst, "knib.db"), "--file", dump, "-o", "json")
	if code != 0 {
		t.Fatalf("import: %d %s", code, errs)
	}
	var tr dbTransfer
	if err := json.Unmarshal([]byte(out), &tr); err != nil || tr.SchemaVersion != st.SchemaVersion || len(tr.Rows) < 15 {
		t.Fatalf("import output %q: %v", out, err)
	}
	// Export to standard output is the same dump.
	code, stdoutDump, _ := run(t, "db", "export", "--database", filepath.Join(dst, "knib.db"))
	if code != 0 || !strings.Contains(stdoutDump, `"knib_dump":1`) {
		t.Fatalf("export to stdout: %d %.200s", code, stdoutDump)
	}

	// Refusals.
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"db", "export", "--data-dir", filepath.Join(src, "nope")}, 1, "no SQLite database"},
		{[]string{"db", "migrate", "--data-dir", src, "--database", "x.db"}, 2, "not both"},
		{[]string{"db", "import", "--data-dir", dst, "--file", filepath.Join(src, "missing.json")}, 1, "dump file"},
		{[]string{"db", "import", "--data-dir", dst, "--file", filepath.Join(src, "knib.db")}, 1, "not a knib dump"},
	} {
		code, _, errs := run(t, c.args...)
		if code != c.code || !strings.Contains(errs, c.msg) {
			t.Errorf("%v: exit %d, %q; want %d and %q", c.args, code, errs, c.code, c.msg)
		}
	}
	// Another schema version.
	raw, _ := os.ReadFile(dump)
	var d map[string]any
	json.Unmarshal(raw, &d)
	d["schema_version"] = 999
	bad, _ := json.Marshal(d)
	badFile := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(badFile, bad, 0o600)
	fresh := t.TempDir()
	if code, _, errs := run(t, "db", "import", "--data-dir", fresh, "--file", badFile); code != 1 || !strings.Contains(errs, "schema version 999") {
		t.Errorf("another version: %d %s", code, errs)
	}
}
