package integration

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/knib/knib/internal/offsite"
	"github.com/knib/knib/internal/offsite/s3"
	"github.com/knib/knib/internal/testbed"
)

// offsiteCopy is a copy as `knib backup list -o json` shows it.
type offsiteCopy struct {
	ID, Remote, State, Error string
	Objects                  int
}

// copiesOf returns each backup's copies.
func (s *Server) copiesOf(vm string) map[string][]offsiteCopy {
	s.t.Helper()
	var list []struct {
		ID     string
		Copies []offsiteCopy
	}
	s.MustJSON(&list, "backup", "list", "--vm", vm)
	out := map[string][]offsiteCopy{}
	for _, b := range list {
		out[b.ID] = b.Copies
	}
	return out
}

// offsiteCopyObject is one object of a copy (`knib backup copies`).
type offsiteCopyObject struct {
	Path, Disk, Key string
	VersionID       string `json:"version_id"`
}

// copyObjects lists the objects of a backup's copies.
func (s *Server) copyObjects(backupID string) []offsiteCopyObject {
	s.t.Helper()
	var list []struct{ Files []offsiteCopyObject }
	s.MustJSON(&list, "backup", "copies", backupID)
	var out []offsiteCopyObject
	for _, c := range list {
		out = append(out, c.Files...)
	}
	return out
}

// sameFile reports whether two files hold the same bytes.
func sameFile(t *testing.T, a, b string) bool {
	t.Helper()
	x, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	y, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(x, y)
}

func secretFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(content+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestOffsiteDrill is the disaster-recovery drill of offsite copies: a VM
// with real files is backed up (full and incrementals) and copied, sealed
// and locked, to a real S3 server. Then, as an attacker holding knib's
// credentials would: the local backup storage is wiped, and deleting and
// overwriting the locked objects is refused. The site is lost (VM and
// disks gone); a new server with an empty catalogue imports the bucket,
// restores the VM from it, and the guest's files are exactly those of the
// last copied backup. A flipped byte in a stored object makes the restore
// fail with a clear error and change nothing.
func TestOffsiteDrill(t *testing.T) {
	ctx := ctxT(t)
	gw := testbed.StartS3(t)
	cfg := gw.Bucket(t, "knib-drill", true)
	plain := gw.Bucket(t, "knib-nolock", false)
	dom := testbed.NewDomain(t, testbed.DomainOptions{Name: "knib-t-offsite", DiskSizes: []int64{64 << 20, 32 << 20}, Start: true})
	s := StartServer(t, "")
	s.Stop()
	s.JobsEvery = "1s"
	s.Restart()
	secret := secretFile(t, cfg.SecretKey)
	var off struct{ ID string }
	s.MustJSON(&off, "offering", "create", "--name", "drill")
	s.CLI("host", "refresh")
	s.CLI("vm", "assign", dom.Name, "--offering", off.ID)

	// A bucket without Object Lock can't hold locked copies: refused.
	msg := s.Fail(nil, 1, "remote", "add", "nolock", "--endpoint", plain.Endpoint, "--bucket", plain.Bucket, "--access-key", plain.AccessKey,
		"--secret-key-file", secretFile(t, plain.SecretKey), "--lock-days", "1")
	if !strings.Contains(msg, "object lock is not enabled") {
		t.Fatalf("a bucket without locks: %s", msg)
	}
	s.CLI("remote", "add", "vault", "--endpoint", cfg.Endpoint, "--bucket", cfg.Bucket, "--access-key", cfg.AccessKey, "--secret-key-file", secret, "--lock-days", "1")
	var tested struct {
		LockCheck string `json:"lock_check"`
		Safe      bool
	}
	s.MustJSON(&tested, "remote", "test", "vault")
	if tested.LockCheck != "enforced" || !tested.Safe {
		t.Fatalf("remote test: %+v", tested)
	}
	s.CLI("remote", "policy", off.ID, "--to", "vault") // every backup

	guest(t, dom, "echo one > /data/one && sync")
	b1 := s.backup(dom.Name)
	guest(t, dom, "echo two > /data/two && sync")
	if err := dom.WriteDisk(ctx, 1, 0x5a, 4<<20, 2<<20); err != nil {
		t.Fatal(err)
	}
	b2 := s.backup(dom.Name)
	guest(t, dom, "echo three > /data/three && sync")
	b3 := s.backup(dom.Name)
	if b2.Type != "incremental" || b3.ParentID != b2.ID {
		t.Fatalf("chain: %+v %+v", b2, b3)
	}
	waitFor(t, 3*time.Minute, "the three copies", func() bool {
		copies := s.copiesOf(dom.Name)
		for _, id := range []string{b1.ID, b2.ID, b3.ID} {
			if len(copies[id]) != 1 || copies[id][0].State != "Copied" {
				if len(copies[id]) == 1 && copies[id][0].State == "Failed" {
					t.Fatalf("copy of %s failed: %s", id, copies[id][0].Error)
				}
				return false
			}
		}
		return true
	})
	guest(t, dom, "echo later > /data/later && sync") // in no copy
	key := strings.TrimSpace(s.CLI("remote", "key", "export", "vault"))

	// The attacker: the local backups go, the remote ones resist.
	if err := os.RemoveAll(s.storage("backups")); err != nil {
		t.Fatal(err)
	}
	bucket, err := s3.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	objects, err := bucket.List(ctx, "knib/", false)
	if err != nil {
		t.Fatal(err)
	}
	var victim offsite.ObjectInfo
	locked := 0
	for _, o := range objects {
		if o.Key == "knib/remote.json" || strings.HasPrefix(o.Key, offsite.CanaryPrefix) {
			continue
		}
		if err := bucket.Delete(ctx, o.Key, o.VersionID); !errors.Is(err, offsite.ErrLocked) {
			t.Fatalf("deleting locked %s: %v", o.Key, err)
		}
		locked++
		if strings.HasPrefix(o.Key, "knib/o/") && o.Size > victim.Size {
			victim = o
		}
	}
	if locked < 3*3 { // each copy: a disk file per disk, domain.xml, manifest.json and its manifest
		t.Fatalf("only %d locked objects", locked)
	}
	if _, err := bucket.Put(ctx, victim.Key, bytes.NewReader([]byte("ransom")), 6, offsite.Lock{}, nil); err != nil {
		t.Fatalf("overwrite: %v", err) // a new version: allowed, harmless
	}
	if st, err := bucket.Stat(ctx, victim.Key, victim.VersionID); err != nil || st.Size != victim.Size || st.ETag != victim.ETag {
		t.Fatalf("the locked version changed under an overwrite: %+v %v", st, err)
	}

	// The site is lost: the VM and its disks are gone. A new server with
	// an empty catalogue.
	s.Stop()
	if err := dom.Destroy(ctx); err != nil {
		t.Fatal(err)
	}
	if err := dom.L.DomainUndefine(dom.Dom); err != nil {
		t.Fatal(err)
	}
	for _, d := range dom.Disks {
		if err := os.Remove(d); err != nil {
			t.Fatal(err)
		}
	}
	s2 := StartServer(t, "")
	s2.CLI("remote", "add", "vault", "--endpoint", cfg.Endpoint, "--bucket", cfg.Bucket, "--access-key", cfg.AccessKey, "--secret-key-file", secret,
		"--key-file", secretFile(t, key), "--lock-days", "1")
	var imp struct {
		Manifests, Backups, VMs int
		Unreadable              []string
	}
	s2.MustJSON(&imp, "remote", "import", "vault")
	if imp.Manifests != 3 || imp.Backups != 3 || imp.VMs != 1 || len(imp.Unreadable) != 0 {
		t.Fatalf("import: %+v", imp)
	}
	var restored map[string]any
	s2.MustJSON(&restored, "backup", "restore", b3.ID, "--from", "vault")
	if restored["defined"] != true {
		t.Fatalf("restore from the remote: %v", restored)
	}
	back := attach(t, dom, dom.Name, dom.UUID)
	if err := back.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if got := guest(t, back, "cat /data/one /data/two /data/three; ls /data"); !strings.HasPrefix(got, "one\ntwo\nthree\n") || strings.Contains(got, "later") {
		t.Fatalf("the restored guest's files: %q", got)
	}
	if !pattern(t, flatten(t, dom.Disks[1]), 0x5a, 4<<20, 2<<20) {
		t.Fatal("the restored vdb misses the pattern")
	}

	// A flipped byte in one stored object: the restore fails clearly and
	// the VM keeps its disks.
	if err := back.Destroy(ctx); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(s2.storage("backups")); err != nil {
		t.Fatal(err)
	}
	var b1vda offsiteCopyObject
	for _, o := range s2.copyObjects(b1.ID) {
		if o.Disk == "vda" {
			b1vda = o
		}
	}
	gw.Corrupt(t, cfg.Bucket, b1vda.Key, 1<<20)
	before := flatten(t, dom.Disks[0])
	r := s2.Run(nil, "backup", "restore", b3.ID, "--from", "vault")
	if r.Code != 1 || !strings.Contains(r.Stderr, "tampered") || !strings.Contains(r.Stderr, b1vda.Key) {
		t.Fatalf("restore of a tampered copy: exit %d: %s", r.Code, r.Stderr)
	}
	if after := flatten(t, dom.Disks[0]); !sameFile(t, before, after) {
		t.Fatal("a failed restore from a tampered copy changed the VM's disk")
	}
}
