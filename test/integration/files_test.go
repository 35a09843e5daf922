package integration

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/knib/knib/internal/testbed"
)

// fileVolume is a volume a test disk holds: its name in knib and its spec.
type fileVolume struct {
	name string
	spec testbed.VolumeSpec
	// owners: the file system keeps modes and owners (not vfat, ntfs).
	owners bool
	// links: symlinks and hard links (not vfat).
	links bool
}

// fileListing is the answer of `knib backup files -o json`.
type fileListing struct {
	Volumes []struct {
		Name, Disk, Table string
		FSType            string `json:"fs_type"`
		Label             string
		Partition         int
		Size, Total, Used int64
		Browsable         bool
	}
	Volume, Path string
	Entries      []struct {
		Name, Type, Target string
		Size, UID, GID     int64
		Mode               uint32
		MTime              time.Time
		Links              int64
	}
}

// fileDisks builds the test disks: a GPT disk with ext4 (and a 1 GiB file)
// and vfat, a whole-disk btrfs, an MBR disk with xfs and ntfs (when mkntfs
// exists), and an LVM disk with an ext4 logical volume; all built without
// the host's kernel mounting anything. It returns the volumes by disk.
func fileDisks(t *testing.T, dir string) ([]string, [][]fileVolume) {
	t0 := time.Date(2025, 3, 4, 5, 6, 0, 0, time.UTC)
	unix := testbed.UnixFiles(t0)
	huge := []testbed.FileSpec{
		{Path: "/hugedir", Type: testbed.TypeDir, Mode: 0o755, MTime: t0.Add(time.Hour)},
		{Path: "/hugedir/huge", Type: testbed.TypeFile, Mode: 0o600, UID: 33, GID: 33, MTime: t0.Add(time.Hour), Size: 1 << 30},
	}
	ntfs := []testbed.FileSpec{}
	for _, f := range unix {
		if f.Path != "/exec.sh" { // ntfs-3g keeps no modes
			ntfs = append(ntfs, f)
		}
	}
	disks := [][]fileVolume{
		{{name: "vdb1", spec: testbed.VolumeSpec{FSType: "ext4", Label: "data", SizeMiB: 64, Files: unix}, owners: true, links: true},
			{name: "vdb2", spec: testbed.VolumeSpec{FSType: "vfat", Label: "EFI", SizeMiB: 64, Files: testbed.VFATFiles(t0)}},
			{name: "vdb3", spec: testbed.VolumeSpec{FSType: "ext4", Label: "huge", SizeMiB: 1100, Files: huge}, owners: true, links: true}},
		{{name: "vdc", spec: testbed.VolumeSpec{FSType: "btrfs", Label: "bt", SizeMiB: 256, Files: unix}, owners: true, links: true}},
		{{name: "vdd1", spec: testbed.VolumeSpec{FSType: "xfs", Label: "xf", SizeMiB: 300, Files: unix}, owners: true, links: true}},
		{{name: "knibvg/data", spec: testbed.VolumeSpec{FSType: "ext4", Label: "lv", SizeMiB: 64, Files: unix, LV: "data"}, owners: true, links: true}},
	}
	if _, err := exec.LookPath("mkntfs"); err == nil {
		disks[2] = append(disks[2], fileVolume{name: "vdd2", spec: testbed.VolumeSpec{FSType: "ntfs", Label: "nt", SizeMiB: 64, Files: ntfs}, links: true})
	} else {
		t.Log("no mkntfs: ntfs is not covered")
	}
	tables := []string{"gpt", "", "mbr", "lvm"}
	images := make([]string, len(disks))
	errs := make([]error, len(disks))
	var wg sync.WaitGroup
	for i, vols := range disks {
		spec := testbed.DiskSpec{Table: tables[i], VG: "knibvg"}
		for _, v := range vols {
			spec.Volumes = append(spec.Volumes, v.spec)
		}
		images[i] = filepath.Join(dir, "disk"+strconv.Itoa(i)+".qcow2")
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = testbed.BuildDisk(context.Background(), images[i], spec)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("build the test disks: %v", err)
	}
	return images, disks
}

// TestFileLevelRestore builds disks with ext4, vfat, btrfs, xfs, ntfs and
// LVM in GPT, MBR and whole-disk layouts, backs the running VM up (full,
// then incremental after the guest changed files), and checks for each
// backup that every listed and extracted file's bytes and metadata are
// what was written; then restores a directory into the running VM through
// its guest agent (refused over existing files without --overwrite), and
// reads the backup again after its VM is gone.
func TestFileLevelRestore(t *testing.T) {
	if _, err := testbed.GuestfsEnv(); err != nil {
		unavailableT(t, err)
	}
	work := t.TempDir()
	images, disks := fileDisks(t, work)
	sizes := []int64{64 << 20}
	for range images {
		sizes = append(sizes, 64<<20)
	}
	dom := testbed.NewDomain(t, testbed.DomainOptions{Name: "knib-t-files", DiskSizes: sizes})
	for i, img := range images {
		if err := os.Rename(img, dom.Disks[i+1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := dom.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	guest(t, dom, "echo before > /data/changed.txt && echo stays > /data/stays.txt && sync")

	s := StartServer(t, "")
	var off struct{ ID string }
	s.MustJSON(&off, "offering", "create", "--name", "files", "--allow-extract-file")
	s.CLI("host", "refresh")
	s.CLI("vm", "assign", dom.Name, "--offering", off.ID)
	full := s.backup(dom.Name)
	guest(t, dom, "echo after > /data/changed.txt && echo new > /data/new.txt && sync")
	incr := s.backup(dom.Name)
	if incr.Type != "incremental" {
		t.Fatalf("second backup: %+v", incr)
	}

	for _, b := range []Backup{full, incr} {
		var vols fileListing
		s.MustJSON(&vols, "backup", "files", b.ID)
		got := map[string]string{}
		for _, v := range vols.Volumes {
			got[v.Name] = v.FSType
			if v.Browsable && v.Total > 0 && (v.Used <= 0 || v.Used > v.Total) {
				t.Errorf("backup %s volume %s: used %d of %d", b.ID, v.Name, v.Used, v.Total)
			}
		}
		want := map[string]string{"vda": "ext4"}
		for _, d := range disks {
			for _, v := range d {
				want[v.name] = v.spec.FSType
			}
		}
		for n, fs := range want {
			if got[n] != fs {
				t.Fatalf("backup %s volumes %v, want %v", b.ID, got, want)
			}
		}
		for _, d := range disks {
			for _, v := range d {
				checkListing(t, s, b.ID, v)
				if v.name == "vdb3" {
					continue // the 1 GiB file: once, below
				}
				checkExtract(t, s, b.ID, v, filepath.Join(work, b.ID+"-"+strings.ReplaceAll(v.name, "/", "_")+".tar"))
			}
		}
		// The guest's own disk: what it held at each backup.
		out := filepath.Join(work, b.ID+"-vda")
		s.CLI("backup", "extract", b.ID, "/changed.txt", "/stays.txt", "--disk", "vda", "-o", out)
		want1 := map[string]string{"changed.txt": "before\n", "stays.txt": "stays\n"}
		if b.ID == incr.ID {
			want1["changed.txt"] = "after\n"
		}
		for n, c := range want1 {
			if raw, err := os.ReadFile(filepath.Join(out, n)); err != nil || string(raw) != c {
				t.Fatalf("backup %s: /data/%s extracted %q %v, want %q", b.ID, n, raw, err, c)
			}
		}
	}

	// The 1 GiB file, once: its bytes stream through.
	hugeTar := filepath.Join(work, "huge.tar.zst")
	s.CLI("backup", "extract", incr.ID, "/hugedir/huge", "--disk", "vdb3", "-o", hugeTar)
	zr := exec.Command("zstd", "-dc", hugeTar)
	zout, err := zr.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := zr.Start(); err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zout)
	hd, err := tr.Next()
	if err != nil || hd.Name != "hugedir/huge" || hd.Size != 1<<30 || hd.Uid != 33 || hd.Mode&0o7777 != 0o600 {
		t.Fatalf("huge member %+v %v", hd, err)
	}
	if !sameContent(tr, testbed.PatternReader("/hugedir/huge", 1<<30)) {
		t.Fatal("the 1 GiB file's bytes differ from what was written")
	}
	zr.Wait()

	// Paths stay inside the guest's file system.
	s.Fail(nil, 1, "backup", "files", full.ID, "/../../../etc", "--disk", "vdb1")
	s.Fail(nil, 1, "backup", "files", full.ID, "/dir/link-abs/", "--disk", "vdb1")
	if msg := s.Fail(nil, 1, "backup", "files", full.ID, "/"); !strings.Contains(msg, "several file systems") {
		t.Fatalf("no --disk on a backup with several file systems: %s", msg)
	}

	// Restore a directory into the running VM, through its guest agent.
	s.CLI("backup", "restore-files", full.ID, "/dir", "/odd name with spaces.txt", "--disk", "vdb1", "--vm", dom.Name, "--to", "/data/restored")
	check := guest(t, dom, "cd /data/restored && cat dir/sub/deep/file.txt && stat -c '%a %u %g %Y' dir/sub 'odd name with spaces.txt' && readlink dir/link-abs && cat 'odd name with spaces.txt'")
	sub := unixSpec(disks[0][0].spec.Files, "/dir/sub")
	spaces := unixSpec(disks[0][0].spec.Files, "/odd name with spaces.txt")
	wantCheck := "deep file\n" +
		strconv.FormatUint(uint64(sub.Mode), 8) + " " + strconv.Itoa(sub.UID) + " " + strconv.Itoa(sub.GID) + " " + strconv.FormatInt(sub.MTime.Unix(), 10) + "\n" +
		strconv.FormatUint(uint64(spaces.Mode), 8) + " " + strconv.Itoa(spaces.UID) + " " + strconv.Itoa(spaces.GID) + " " + strconv.FormatInt(spaces.MTime.Unix(), 10) + "\n" +
		"/odd name with spaces.txt\nspaces"
	if check != wantCheck {
		t.Fatalf("restored into the guest:\n%q\nwant\n%q", check, wantCheck)
	}
	guest(t, dom, "echo local > /data/restored/dir/sub/deep/file.txt")
	// (an operation: it fails after it started, and says why)
	if r := s.Run(nil, "backup", "restore-files", full.ID, "/dir", "--disk", "vdb1", "--vm", dom.Name, "--to", "/data/restored"); r.Code != 1 || !strings.Contains(r.Stderr, "/data/restored/dir already exist") {
		t.Fatalf("restore over existing files: exit %d: %s", r.Code, r.Stderr)
	}
	if got := guest(t, dom, "cat /data/restored/dir/sub/deep/file.txt"); got != "local\n" {
		t.Fatalf("a refused restore changed the guest: %q", got)
	}
	s.CLI("backup", "restore-files", full.ID, "/dir", "--disk", "vdb1", "--vm", dom.Name, "--to", "/data/restored", "--overwrite")
	if got := guest(t, dom, "cat /data/restored/dir/sub/deep/file.txt"); got != "deep file\n" {
		t.Fatalf("restore with --overwrite: %q", got)
	}

	// The VM is gone: its backups are still read.
	if err := testbed.RemoveDomain(testbed.Connect(t), dom.Name); err != nil {
		t.Fatal(err)
	}
	s.CLI("host", "refresh")
	var l fileListing
	s.MustJSON(&l, "backup", "files", incr.ID, "/", "--disk", "vda")
	names := map[string]bool{}
	for _, e := range l.Entries {
		names[e.Name] = true
	}
	if !names["new.txt"] || !names["changed.txt"] {
		t.Fatalf("listing of a deleted VM's backup: %+v", l.Entries)
	}

	// Helpers: one per backup, reused; at most max.per.host (one more ends
	// the longest idle one); stopped when idle; none outlives its server.
	if n := helpers(s, ""); n != 2 {
		t.Fatalf("%d helpers for two backups", n)
	}
	s.CLI("settings", "set", "backup.file.helper.idle.timeout", "2")
	s.CLI("backup", "files", full.ID)
	s.CLI("backup", "files", incr.ID)
	waitFor(t, 30*time.Second, "the idle helpers to stop", func() bool { return helpers(s, "") == 0 })
	s.CLI("settings", "set", "backup.file.helper.idle.timeout", "300")
	s.CLI("settings", "set", "backup.file.helper.max.per.host", "1")
	s.CLI("backup", "files", full.ID)
	s.CLI("backup", "files", incr.ID)
	if n, nIncr := helpers(s, ""), helpers(s, incr.ID); n != 1 || nIncr != 1 {
		t.Fatalf("max.per.host 1: %d helpers, %d of the last backup", n, nIncr)
	}
	s.CLI("backup", "files", incr.ID)
	s.Kill()
	if n := helpers(s, ""); n != 1 {
		t.Fatalf("%d helpers after the server was killed", n)
	}
	s.start()
	s.waitHost()
	waitFor(t, 30*time.Second, "the dead server's helper to be ended", func() bool { return helpers(s, "") == 0 })
	s.CLI("backup", "files", incr.ID)
	s.Stop()
	if n := helpers(s, ""); n != 0 {
		t.Fatalf("%d helpers outlived a stopped server", n)
	}
}

// helpers counts the file-restore helpers (guestfish listeners) that read
// backups of s's storage (whose files' paths hold backupID, if not empty).
func helpers(s *Server, backupID string) int {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	n := 0
	for _, p := range procs {
		raw, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		args := strings.Split(string(raw), "\x00")
		stat, _ := os.ReadFile(filepath.Join(filepath.Dir(p), "stat"))
		if zombie := strings.Contains(string(stat), ") Z "); zombie || len(args) < 2 || filepath.Base(args[0]) != "guestfish" || args[1] != "--listen" {
			continue
		}
		// libguestfs' recovery process is a fork of the listener.
		fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(fields) < 2 {
			continue
		}
		parent, _ := os.ReadFile("/proc/" + fields[1] + "/comm")
		if strings.Contains(string(raw), s.DataDir) && strings.Contains(string(raw), backupID) && strings.TrimSpace(string(parent)) != "guestfish" {
			n++
		}
	}
	return n
}

func waitFor(t *testing.T, limit time.Duration, what string, ok func() bool) {
	t.Helper()
	for end := time.Now().Add(limit); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		if ok() {
			return
		}
	}
	t.Fatalf("waited %s for %s", limit, what)
}

// unavailableT skips (or fails, under KNIB_TEST_REQUIRE_INFRA=1) a test
// whose infrastructure is missing.
func unavailableT(t *testing.T, err error) {
	t.Helper()
	if os.Getenv("KNIB_TEST_REQUIRE_INFRA") == "1" {
		t.Fatalf("libguestfs unavailable and KNIB_TEST_REQUIRE_INFRA=1: %v", err)
	}
	t.Skipf("libguestfs unavailable: %v", err)
}

func unixSpec(files []testbed.FileSpec, p string) testbed.FileSpec {
	for _, f := range files {
		if f.Path == p {
			return f
		}
	}
	return testbed.FileSpec{}
}

func sameContent(a, b io.Reader) bool {
	ha, hb := sha256.New(), sha256.New()
	if _, err := io.Copy(ha, a); err != nil {
		return false
	}
	if _, err := io.Copy(hb, b); err != nil {
		return false
	}
	return bytes.Equal(ha.Sum(nil), hb.Sum(nil))
}

// specChecks compares what knib reports of one object with its spec.
func specMismatch(v fileVolume, f testbed.FileSpec, typ string, mode uint32, uid, gid int64, mtime time.Time, size int64, target string) string {
	want := f.Type
	if want == testbed.TypeHardlink {
		return ""
	}
	if typ != want {
		return "type " + typ + ", want " + want
	}
	if f.Type == testbed.TypeSymlink && target != f.Target {
		return "target " + target + ", want " + f.Target
	}
	if f.Type == testbed.TypeFile && size != f.ContentSize() {
		return "size " + strconv.FormatInt(size, 10) + ", want " + strconv.FormatInt(f.ContentSize(), 10)
	}
	if v.owners && f.Type != testbed.TypeSymlink && (mode != f.Mode || uid != int64(f.UID) || gid != int64(f.GID)) {
		return "mode/uid/gid " + strconv.FormatUint(uint64(mode), 8) + " " + strconv.FormatInt(uid, 10) + " " + strconv.FormatInt(gid, 10)
	}
	if !f.MTime.IsZero() {
		wantT := f.MTime.Unix()
		if v.spec.FSType == "vfat" {
			wantT -= wantT % 2
		}
		if mtime.Unix() != wantT {
			return "mtime " + mtime.UTC().String() + ", want " + f.MTime.UTC().String()
		}
	}
	return ""
}

// checkListing lists each spec object's directory and compares.
func checkListing(t *testing.T, s *Server, backup string, v fileVolume) {
	t.Helper()
	dirs := map[string]fileListing{}
	for _, f := range v.spec.Files {
		dir, name := path.Dir(f.Path), path.Base(f.Path)
		l, ok := dirs[dir]
		if !ok {
			s.MustJSON(&l, "backup", "files", backup, dir, "--disk", v.name)
			dirs[dir] = l
		}
		found := false
		for _, e := range l.Entries {
			if e.Name != name {
				continue
			}
			found = true
			if f.Type == testbed.TypeHardlink && v.links && e.Links < 2 {
				t.Errorf("%s %s:%s: hard link with %d links", backup, v.name, f.Path, e.Links)
			}
			if m := specMismatch(v, f, e.Type, e.Mode, e.UID, e.GID, e.MTime, e.Size, e.Target); m != "" {
				t.Errorf("%s %s:%q listed: %s", backup, v.name, f.Path, m)
			}
		}
		if !found {
			t.Errorf("%s %s:%q not listed in %+v", backup, v.name, f.Path, l.Entries)
		}
	}
}

// checkExtract extracts the volume's whole tree as a tar and compares
// every member with its spec.
func checkExtract(t *testing.T, s *Server, backup string, v fileVolume, out string) {
	t.Helper()
	s.CLI("backup", "extract", backup, "/", "--disk", v.name, "-o", out)
	fh, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	tr := tar.NewReader(fh)
	members := map[string]*tar.Header{}
	sums := map[string][]byte{}
	for {
		hd, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s %s: tar: %v", backup, v.name, err)
		}
		name := strings.TrimSuffix(hd.Name, "/")
		members[name] = hd
		if hd.Typeflag == tar.TypeReg {
			h := sha256.New()
			io.Copy(h, tr)
			sums[name] = h.Sum(nil)
		}
	}
	for _, f := range v.spec.Files {
		name := strings.TrimPrefix(f.Path, "/")
		hd := members[name]
		if hd == nil {
			t.Errorf("%s %s: %q not extracted", backup, v.name, f.Path)
			continue
		}
		if f.Type == testbed.TypeHardlink {
			// One of the two names carries the content, the other links to it.
			other := strings.TrimPrefix(f.Target, "/")
			if !(hd.Typeflag == tar.TypeLink && hd.Linkname == other) && !(members[other] != nil && members[other].Typeflag == tar.TypeLink && members[other].Linkname == name) {
				t.Errorf("%s %s: hard link %q -> %q extracted as %+v", backup, v.name, f.Path, f.Target, hd)
			}
			continue
		}
		typ := map[byte]string{tar.TypeReg: "file", tar.TypeDir: "dir", tar.TypeSymlink: "symlink", tar.TypeLink: "file"}[hd.Typeflag]
		size := hd.Size
		if hd.Typeflag == tar.TypeLink {
			size = members[hd.Linkname].Size
		}
		if m := specMismatch(v, f, typ, uint32(hd.Mode)&0o7777, int64(hd.Uid), int64(hd.Gid), hd.ModTime, size, hd.Linkname); m != "" {
			t.Errorf("%s %s:%q extracted: %s", backup, v.name, f.Path, m)
		}
		if f.Type == testbed.TypeFile {
			sum := sums[name]
			if hd.Typeflag == tar.TypeLink {
				sum = sums[hd.Linkname]
			}
			h := sha256.New()
			io.Copy(h, f.Content())
			if !bytes.Equal(sum, h.Sum(nil)) {
				t.Errorf("%s %s:%q extracted with other bytes", backup, v.name, f.Path)
			}
		}
	}
}

// TestFileLevelRestoreCompressed reads a file back from a compressed
// backup (the compression job rewrote the backup file).
func TestFileLevelRestoreCompressed(t *testing.T) {
	if _, err := testbed.GuestfsEnv(); err != nil {
		unavailableT(t, err)
	}
	dom := testbed.NewDomain(t, testbed.DomainOptions{Name: "knib-t-fzip", Start: true})
	guest(t, dom, "mkdir -p /data/etc && echo 'compressed but whole' > /data/etc/motd && chmod 0604 /data/etc/motd && sync")
	s := StartServer(t, "")
	var off struct{ ID string }
	s.MustJSON(&off, "offering", "create", "--name", "fzip", "--compress", "--allow-extract-file")
	s.CLI("host", "refresh")
	s.CLI("vm", "assign", dom.Name, "--offering", off.ID)
	b := s.backup(dom.Name)
	waitCompression(t, s, dom.Name, b.ID, "Compressed")
	out := filepath.Join(t.TempDir(), "x")
	s.CLI("backup", "extract", b.ID, "/etc", "-o", out)
	raw, err := os.ReadFile(filepath.Join(out, "etc", "motd"))
	st, serr := os.Stat(filepath.Join(out, "etc", "motd"))
	if err != nil || serr != nil || string(raw) != "compressed but whole\n" || st.Mode().Perm() != 0o604 {
		t.Fatalf("from the compressed backup: %q %v %v %v", raw, st.Mode(), err, serr)
	}
}
