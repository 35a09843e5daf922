package fileperm

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// testPerms is a QEMU group for the tests: a number no file has yet, so
// every change of group is visible. Giving files away takes root.
func testPerms(t *testing.T) Perms {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("changing a file's group to another group needs root")
	}
	return Perms{GID: 4242, Group: "g4242"}
}

func stat(t *testing.T, path string) (perm uint32, gid int) {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Mode & 0o7777, int(st.Gid)
}

// tree is an empty directory without problems (t.TempDir's is 0700).
func tree(t *testing.T) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "tree")
	if err := os.Mkdir(root, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(root, 0o750); err != nil {
		t.Fatal(err)
	}
	return root
}

func mustWrite(t *testing.T, path string, perm os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte("disk"), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil {
		t.Fatal(err)
	}
}

func TestDetect(t *testing.T) {
	dir := t.TempDir()
	conf := func(text string) string {
		p := filepath.Join(dir, fmt.Sprintf("qemu-%d.conf", len(text)))
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	root, err := user.LookupGroupId("0")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, text string
		gid        int
	}{
		{"by name", "user = \"someone\"\ngroup = \"" + root.Name + "\"\n", 0},
		{"by number", "group = \"+4242\"   # a number, as libvirt writes it\n", 4242},
		{"last wins", "group = \"+1\"\ngroup = \"+4243\"\n", 4243},
	} {
		p, err := Detect(conf(c.text))
		if err != nil || p.GID != c.gid || p.Group == "" {
			t.Errorf("%s: %+v %v, want gid %d", c.name, p, err, c.gid)
		}
	}
	// Without a setting (commented out, or no file): the first default
	// group of the host.
	var def Perms = Unknown
	for _, g := range DefaultGroups {
		if gr, err := user.LookupGroup(g); err == nil {
			def = Perms{Group: gr.Name}
			fmt.Sscan(gr.Gid, &def.GID)
			break
		}
	}
	for _, path := range []string{conf("#group = \"+7\"\n  # group = \"+8\"\n"), filepath.Join(dir, "missing.conf")} {
		p, err := Detect(path)
		if p != def || (err == nil) != (def.GID >= 0) {
			t.Errorf("defaults from %s: %+v %v, want %+v", path, p, err, def)
		}
	}
	for _, bad := range []string{"group = \"no-such-group-knib\"\n", "group = kvm\n", "group = \"+x\"\n", "group = \"kvm\n"} {
		if p, err := Detect(conf(bad)); err == nil || p != Unknown {
			t.Errorf("%q: %+v %v, want an error and Unknown", bad, p, err)
		}
	}
}

// What knib creates gets its mode whatever the umask, and the QEMU group.
func TestCreatedModes(t *testing.T) {
	p := testPerms(t)
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	dir := t.TempDir()
	deep := filepath.Join(dir, "backups", "vm", "b1")
	if err := p.MkdirAll(deep); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{filepath.Join(dir, "backups"), filepath.Join(dir, "backups", "vm"), deep} {
		if perm, gid := stat(t, d); perm != 0o750 || gid != 4242 {
			t.Errorf("%s: %04o group %d, want 0750 group 4242", d, perm, gid)
		}
	}
	// An existing directory is not changed: it is not knib's to set.
	if perm, gid := stat(t, dir); perm == 0o750 || gid == 4242 {
		t.Errorf("the existing parent changed: %04o group %d", perm, gid)
	}
	if err := p.MkdirAll(deep); err != nil {
		t.Fatalf("again: %v", err)
	}
	file, disk := filepath.Join(deep, "vda.qcow2"), filepath.Join(deep, "overlay.qcow2")
	mustWrite(t, file, 0o644)
	mustWrite(t, disk, 0o644)
	if err := p.File(file); err != nil {
		t.Fatal(err)
	}
	if err := p.Disk(disk); err != nil {
		t.Fatal(err)
	}
	if perm, gid := stat(t, file); perm != 0o640 || gid != 4242 {
		t.Errorf("file: %04o group %d, want 0640 group 4242", perm, gid)
	}
	if perm, gid := stat(t, disk); perm != 0o660 || gid != 4242 {
		t.Errorf("disk: %04o group %d, want 0660 group 4242", perm, gid)
	}
	if err := p.MkdirAll(filepath.Join(file, "x")); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("a directory under a file: %v", err)
	}
	if probs, err := p.Check(dir + "/backups"); err != nil || len(probs) != 0 {
		t.Errorf("what knib created has problems: %v %v", probs, err)
	}
}

// A tree an older knib wrote (0755 directories, 0644 files, root's group)
// is tightened once; the check lists each problem before and none after.
func TestTightenAndCheck(t *testing.T) {
	p := testPerms(t)
	root := filepath.Join(t.TempDir(), "storage")
	outside := filepath.Join(t.TempDir(), "outside")
	mustWrite(t, outside, 0o644)
	b := filepath.Join(root, "backups", "vm", "b1")
	if err := os.MkdirAll(filepath.Join(b, "boot"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{root, filepath.Join(root, "backups"), filepath.Join(root, "backups", "vm"), b} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(b, "boot"), 0o700); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(b, "vda.qcow2"), 0o644)
	mustWrite(t, filepath.Join(b, "manifest.json"), 0o600)
	mustWrite(t, filepath.Join(b, "boot", "vmlinuz"), 0o666)
	mustWrite(t, filepath.Join(b, "overlay.qcow2"), 0o660)
	if err := os.Symlink(outside, filepath.Join(b, "link")); err != nil {
		t.Fatal(err)
	}
	probs, err := p.Check(root)
	if err != nil {
		t.Fatal(err)
	}
	// Every directory and file has the wrong group; the overlay only that.
	if len(probs) != 9 {
		t.Fatalf("problems: %d, want 9:\n%s", len(probs), strings.Join(probs, "\n"))
	}
	for _, want := range []string{
		b + "/vda.qcow2: mode 0644: other users have access; group ",
		b + "/manifest.json: mode 0600: the group lacks read; group ",
		b + "/boot: mode 0700: the group lacks read and search; group ",
		b + "/overlay.qcow2: mode 0660: group ",
	} {
		if !strings.Contains(strings.Join(probs, "\n"), want) {
			t.Errorf("no problem %q in:\n%s", want, strings.Join(probs, "\n"))
		}
	}
	if !strings.HasSuffix(probs[0], "not the QEMU group g4242") {
		t.Errorf("the group problem: %q", probs[0])
	}
	n, err := p.Tighten(root)
	if err != nil || n != 9 {
		t.Fatalf("tighten: %d %v, want 9 changed", n, err)
	}
	for path, mode := range map[string]uint32{
		root: 0o750, b: 0o750, filepath.Join(b, "boot"): 0o750,
		filepath.Join(b, "vda.qcow2"): 0o640, filepath.Join(b, "manifest.json"): 0o640,
		filepath.Join(b, "boot", "vmlinuz"): 0o660, filepath.Join(b, "overlay.qcow2"): 0o660,
	} {
		if perm, gid := stat(t, path); perm != mode || gid != 4242 {
			t.Errorf("%s: %04o group %d, want %04o group 4242", path, perm, gid, mode)
		}
	}
	if perm, gid := stat(t, outside); perm != 0o644 || gid == 4242 {
		t.Errorf("the link's target outside the tree changed: %04o group %d", perm, gid)
	}
	if probs, err := p.Check(root); err != nil || len(probs) != 0 {
		t.Fatalf("after tightening: %v %v", probs, err)
	}
	if n, err := p.Tighten(root); err != nil || n != 0 {
		t.Fatalf("tightening again changed %d paths: %v", n, err)
	}
	// A storage root given as a symbolic link is followed.
	link := filepath.Join(t.TempDir(), "storage-link")
	if err := os.Symlink(root, link); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(b, 0o755); err != nil {
		t.Fatal(err)
	}
	if probs, err := p.Check(link); err != nil || len(probs) != 1 || !strings.HasPrefix(probs[0], b+": mode 0755: other users have access") {
		t.Fatalf("through a link: %v %v", probs, err)
	}
	if n, err := p.Tighten(link); err != nil || n != 1 {
		t.Fatalf("tighten through a link: %d %v", n, err)
	}
}

// An unknown QEMU group: groups are neither checked nor changed, modes are.
func TestUnknownGroup(t *testing.T) {
	root := tree(t)
	f := filepath.Join(root, "vda.qcow2")
	mustWrite(t, f, 0o644)
	_, gid := stat(t, f)
	probs, err := Unknown.Check(root)
	if err != nil || len(probs) != 1 || !strings.Contains(probs[0], "other users have access") || strings.Contains(probs[0], "group ") {
		t.Fatalf("problems: %v %v", probs, err)
	}
	if n, err := Unknown.Tighten(root); err != nil || n != 1 {
		t.Fatalf("tighten: %d %v", n, err)
	}
	if perm, g := stat(t, f); perm != 0o640 || g != gid {
		t.Fatalf("%04o group %d, want 0640 group %d", perm, g, gid)
	}
	if err := Unknown.Disk(f); err != nil {
		t.Fatal(err)
	}
	if perm, _ := stat(t, f); perm != 0o660 {
		t.Fatalf("disk mode %04o", perm)
	}
}

// The check lists at most MaxProblems paths and counts the rest.
func TestCheckIsBounded(t *testing.T) {
	root := tree(t)
	for i := range MaxProblems + 5 {
		mustWrite(t, filepath.Join(root, fmt.Sprintf("f%02d", i)), 0o644)
	}
	probs, err := Unknown.Check(root)
	if err != nil || len(probs) != MaxProblems+1 || !strings.HasPrefix(probs[MaxProblems], "5 more paths under "+root) {
		t.Fatalf("%d problems, last %q, %v", len(probs), probs[len(probs)-1], err)
	}
	if _, err := Unknown.Check(filepath.Join(root, "missing")); err == nil {
		t.Fatal("a missing root checked fine")
	}
}
