package agent

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/qemuimg"
)

// damagedEnv is a VM with one full backup whose file is then damaged; it
// returns the request files and the verification of the chain.
func damagedEnv(t *testing.T) (*hostEnv, []agentapi.RestoreFile, agentapi.Verify, string) {
	t.Helper()
	e := newHostEnv(t, false)
	out, err := e.a.takeBackup(e.ctx, e.fullRequest("b1"), noProgress)
	if err != nil {
		t.Fatal(err)
	}
	f := out.(agentapi.TakeBackupResult).Files[0]
	rec := agentapi.ReconcileRequest{InStorage: agentapi.InStorage{Storage: e.storage}, DomainUUID: e.uuid}
	if _, err := e.a.reconcile(e.ctx, rec, noProgress); err != nil {
		t.Fatal(err)
	}
	// Data only the VM's disk has now, which a refused restore must keep.
	if err := qemuimg.Default.Create(e.ctx, e.base, "qcow2", 16<<20, nil); err != nil {
		t.Fatal(err)
	}
	files := []agentapi.RestoreFile{{Disk: "vda", Path: f.Path}}
	v := agentapi.Verify{Files: []agentapi.ChainFile{{BackupID: "b1", Disk: "vda", Path: f.Path, Hash: f.Hash}}}
	return e, files, v, filepath.Join(e.storage, f.Path)
}

// flip changes one byte of a file in place.
func flip(t *testing.T, path string, off int64) {
	t.Helper()
	fh, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	b := make([]byte, 1)
	if _, err := fh.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := fh.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// A restore, a volume restore and a create-vm from a damaged file refuse
// before they touch anything: the VM's disk is what it was, no part file
// and no new VM are left, and the error names the file and both hashes.
func TestRestoresRefuseDamagedFiles(t *testing.T) {
	e, files, v, file := damagedEnv(t)
	before, err := HashFile(e.base)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(file)
	flip(t, file, fi.Size()-1) // the last byte: qemu-img still reads the image
	check := func(what string, err error) {
		t.Helper()
		d := damageOf(err)
		var clean cleanError
		if len(d) != 1 || d[0].BackupID != "b1" || d[0].Recorded != v.Files[0].Hash || d[0].Found == v.Files[0].Hash || !errors.As(err, &clean) {
			t.Fatalf("%s of a damaged backup: %v", what, err)
		}
		if after, _ := HashFile(e.base); after != before {
			t.Fatalf("%s of a damaged backup changed the VM's disk", what)
		}
		if left, _ := filepath.Glob(filepath.Join(e.primary, "*.part")); len(left) != 0 {
			t.Fatalf("%s left %v", what, left)
		}
	}
	req := agentapi.RestoreRequest{InStorage: agentapi.InStorage{Storage: e.storage}, DomainUUID: e.uuid, Dir: "backups/" + e.uuid + "/b1",
		Files: files, Verify: v}
	_, err = e.a.restore(e.ctx, req, noProgress)
	check("restore", err)

	_, err = e.a.restoreVolume(e.ctx, agentapi.RestoreVolumeRequest{InStorage: req.InStorage, DomainUUID: e.uuid, File: files[0].Path,
		Name: "vol", Verify: v}, noProgress)
	check("volume restore", err)
	if left, _ := filepath.Glob(filepath.Join(e.primary, "vol*")); len(left) != 0 {
		t.Fatalf("volume restore left %v", left)
	}

	_, err = e.a.createVM(e.ctx, agentapi.CreateVMRequest{InStorage: req.InStorage, Dir: req.Dir, Files: files, Name: "copy", Verify: v}, noProgress)
	check("create-vm", err)
	if ids, _ := e.hv.DomainsNamed(e.ctx, "copy"); len(ids) != 0 {
		t.Fatalf("create-vm of a damaged backup defined %v", ids)
	}
	if left, _ := filepath.Glob(filepath.Join(e.primary, "copy-*")); len(left) != 0 {
		t.Fatalf("create-vm left %v", left)
	}

	// Accepted, the restore writes what is there and says so.
	req.Verify.AcceptDamaged = true
	out, err := e.a.restore(e.ctx, req, noProgress)
	if err != nil {
		t.Fatalf("restore with accept_damaged: %v", err)
	}
	if res := out.(agentapi.RestoreResult); len(res.Damaged) != 1 || res.Damaged[0].Path != files[0].Path {
		t.Fatalf("accepted restore result %+v", res)
	}
	if after, _ := HashFile(e.base); after == before {
		t.Fatal("the accepted restore did not write the disk")
	}
}

// A consolidation after a quick restore checks the files its overlays
// read before it pulls them: a damaged one stops it, no block job runs,
// and the VM keeps its overlays.
func TestConsolidationStopsOnDamage(t *testing.T) {
	e, files, v, file := damagedEnv(t)
	req := agentapi.RestoreRequest{InStorage: agentapi.InStorage{Storage: e.storage}, DomainUUID: e.uuid, Dir: "backups/" + e.uuid + "/b1",
		Files: files, Quick: true, Verify: v}
	if _, err := e.a.restore(e.ctx, req, noProgress); err != nil {
		t.Fatalf("quick restore: %v", err)
	}
	if err := os.Truncate(file, 4096); err != nil {
		t.Fatal(err)
	}
	_, err := e.a.consolidate(e.ctx, agentapi.ConsolidateRequest{InStorage: req.InStorage, DomainUUID: e.uuid, Verify: v}, noProgress)
	if d := damageOf(err); len(d) != 1 || d[0].Path != files[0].Path {
		t.Fatalf("consolidation of a damaged chain: %v", err)
	}
	if n := e.hv.Calls("BlockPull"); n != 0 {
		t.Fatalf("%d block pulls ran on a damaged chain", n)
	}
	if chain := e.chain(t); len(chain) < 2 || chain[1] != file {
		t.Fatalf("the VM lost its overlay on the backup: %v", chain)
	}
}

// A file that cannot be read is damaged too, and the re-hash job reports
// what the restore check reports (one implementation).
func TestCheckFilesFindsEveryKindOfDamage(t *testing.T) {
	e, _, v, file := damagedEnv(t)
	if d, err := checkFiles(e.ctx, e.storage, v.Files); err != nil || len(d) != 0 {
		t.Fatalf("intact file: %v %v", d, err)
	}
	other := filepath.Join(t.TempDir(), "other.qcow2")
	fi, _ := os.Stat(file)
	if err := qemuimg.Default.Create(e.ctx, other, "qcow2", 32<<20, nil); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(other, fi.Size()); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(other)
	if err := os.WriteFile(file, raw, 0o644); err != nil { // another valid qcow2, same size
		t.Fatal(err)
	}
	res, err := e.a.hashFiles(e.ctx, agentapi.HashRequest{InStorage: agentapi.InStorage{Storage: e.storage}, Expected: v.Files}, noProgress)
	if err != nil || len(res.(agentapi.HashResult).Damaged) != 1 {
		t.Fatalf("re-hash of a replaced file: %+v %v", res, err)
	}
	os.Remove(file)
	d, err := checkFiles(e.ctx, e.storage, v.Files)
	if err != nil || len(d) != 1 || d[0].Found == "" {
		t.Fatalf("missing file: %v %v", d, err)
	}
}
