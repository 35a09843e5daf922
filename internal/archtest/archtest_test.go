package archtest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/knib/knib"

// pkg is one package of the tree: its import path, the imports of its
// non-test files, and its parsed non-test files.
type pkg struct {
	path    string
	imports map[string][]string // import path -> files importing it
	files   map[string]*ast.File
	fset    *token.FileSet
}

func loadTree(t *testing.T) map[string]*pkg {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*pkg{}
	fset := token.NewFileSet()
	for _, top := range []string{"internal", "cmd", "bench"} {
		err := filepath.WalkDir(filepath.Join(root, top), func(p string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
				return nil
			}
			f, err := parser.ParseFile(fset, p, nil, parser.ImportsOnly|parser.ParseComments)
			if err != nil {
				return err
			}
			full, err := parser.ParseFile(fset, p, nil, 0)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, filepath.Dir(p))
			ip := module + "/" + filepath.ToSlash(rel)
			pk := out[ip]
			if pk == nil {
				pk = &pkg{path: ip, imports: map[string][]string{}, files: map[string]*ast.File{}, fset: fset}
				out[ip] = pk
			}
			relFile, _ := filepath.Rel(root, p)
			for _, im := range f.Imports {
				v, _ := strconv.Unquote(im.Path.Value)
				pk.imports[v] = append(pk.imports[v], relFile)
			}
			pk.files[relFile] = full
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(out) < 20 {
		t.Fatalf("found only %d packages: the tree was not read", len(out))
	}
	return out
}

var pureCore = []string{"internal/domain", "internal/settings", "internal/chain", "internal/jobs", "internal/schedule", "internal/auth", "internal/clock"}

func under(path string, prefixes ...string) bool {
	for _, p := range prefixes {
		full := module + "/" + p
		if path == full || strings.HasPrefix(path, full+"/") {
			return true
		}
	}
	return false
}

func isStd(path string) bool { return !strings.Contains(strings.SplitN(path, "/", 2)[0], ".") }

// The layering rules, checked on the imports of every non-test file.
func TestLayering(t *testing.T) {
	tree := loadTree(t)
	type rule struct {
		name   string
		from   func(p string) bool
		banned func(imp string) bool
	}
	adapters := []string{"internal/store/sqlstore", "internal/hypervisor/libvirt", "internal/agentrpc", "internal/offsite/s3"}
	rules := []rule{
		{"the pure core imports only the standard library and the core",
			func(p string) bool { return under(p, pureCore...) },
			func(imp string) bool { return !isStd(imp) && !under(imp, pureCore...) }},
		{"the offsite port and its sealed format import only the standard library",
			func(p string) bool { return p == module+"/internal/offsite" || under(p, "internal/offsite/seal") },
			func(imp string) bool { return !isStd(imp) }},
		{"use cases never import an adapter, libvirt or a database driver",
			func(p string) bool { return under(p, "internal/service") },
			func(imp string) bool {
				return under(imp, adapters...) || strings.HasPrefix(imp, "github.com/digitalocean/go-libvirt") ||
					strings.HasPrefix(imp, "libvirt.org/") || strings.HasPrefix(imp, "github.com/jackc/") || strings.HasPrefix(imp, "modernc.org/") ||
					strings.HasPrefix(imp, "github.com/minio/")
			}},
		{"adapters never import the use cases or the layers above them",
			func(p string) bool {
				return under(p, "internal/store", "internal/hypervisor", "internal/agentrpc", "internal/qemuimg", "internal/guestagent", "internal/agentapi", "internal/offsite")
			},
			func(imp string) bool {
				return under(imp, "internal/service", "internal/httpapi", "internal/server", "internal/cli", "internal/agent")
			}},
		{"the agent side never imports the server side",
			func(p string) bool { return under(p, "internal/agent") },
			func(imp string) bool {
				return under(imp, "internal/service", "internal/httpapi", "internal/server", "internal/store")
			}},
		{"the HTTP layer reaches the catalogue only through the use cases",
			func(p string) bool { return under(p, "internal/httpapi") },
			func(imp string) bool {
				return under(imp, "internal/store/sqlstore", "internal/hypervisor", "internal/agent")
			}},
	}
	checked := 0
	for _, r := range rules {
		for _, p := range sortedKeys(tree) {
			if !r.from(p) {
				continue
			}
			checked++
			for imp, files := range tree[p].imports {
				if r.banned(imp) {
					t.Errorf("%s: %s imports %s (%s)", r.name, p, imp, strings.Join(files, ", "))
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no package matched any rule")
	}
}

// Time is read through internal/clock only: a direct time.Now, time.Since
// or time.Until outside internal/clock fails (tests and the test bed may;
// bench/ measures wall time through clock.Real too).
func TestTimeIsReadThroughTheClock(t *testing.T) {
	tree := loadTree(t)
	found := 0
	for _, p := range sortedKeys(tree) {
		if under(p, "internal/clock", "internal/testbed") {
			continue
		}
		pk := tree[p]
		for name, f := range pk.files {
			timeName := ""
			for _, im := range f.Imports {
				if v, _ := strconv.Unquote(im.Path.Value); v == "time" {
					timeName = "time"
					if im.Name != nil {
						timeName = im.Name.Name
					}
				}
			}
			if timeName == "" {
				continue
			}
			ast.Inspect(f, func(n ast.Node) bool {
				sel, ok := n.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				id, ok := sel.X.(*ast.Ident)
				if ok && id.Name == timeName && (sel.Sel.Name == "Now" || sel.Sel.Name == "Since" || sel.Sel.Name == "Until") {
					found++
					t.Errorf("%s:%d: time.%s outside internal/clock: take a clock.Clock", name, pk.fset.Position(sel.Pos()).Line, sel.Sel.Name)
				}
				return true
			})
		}
	}
	_ = found
}

func sortedKeys(m map[string]*pkg) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestEverySettingIsRead fails on a setting that the registry accepts but
// no code reads: each Key constant of internal/settings must be used by
// non-test code other than its own registry entry (a VM detail that
// overrides it, or a reader of its value).
func TestEverySettingIsRead(t *testing.T) {
	tree := loadTree(t)
	settingsPkg := tree[module+"/internal/settings"]
	if settingsPkg == nil {
		t.Fatal("internal/settings not found")
	}
	keys := map[string]bool{}
	for name, f := range settingsPkg.files {
		if filepath.Base(name) != "registry.go" {
			continue
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				for _, id := range spec.(*ast.ValueSpec).Names {
					if strings.HasPrefix(id.Name, "Key") {
						keys[id.Name] = false
					}
				}
			}
		}
	}
	if len(keys) < 20 {
		t.Fatalf("found only %d setting keys in registry.go", len(keys))
	}
	for _, p := range tree {
		for name, f := range p.files {
			inRegistry := p == settingsPkg && filepath.Base(name) == "registry.go"
			ast.Inspect(f, func(n ast.Node) bool {
				switch x := n.(type) {
				case *ast.SelectorExpr: // settings.KeyX elsewhere
					if id, ok := x.X.(*ast.Ident); ok && id.Name == "settings" {
						if _, known := keys[x.Sel.Name]; known {
							keys[x.Sel.Name] = true
						}
					}
				case *ast.Ident: // KeyX inside package settings, outside the registry
					if _, known := keys[x.Name]; known && p == settingsPkg && !inRegistry {
						keys[x.Name] = true
					}
				}
				return true
			})
		}
	}
	var unread []string
	for k, read := range keys {
		if !read {
			unread = append(unread, k)
		}
	}
	sort.Strings(unread)
	if len(unread) > 0 {
		t.Fatalf("settings that no code reads (accepted and then ignored): %v", unread)
	}
}
