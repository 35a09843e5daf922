package agent

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/hypervisor/fake"
	"github.com/knib/knib/internal/offsite"
	"github.com/knib/knib/internal/offsite/offsitetest"
	"github.com/knib/knib/internal/offsite/seal"
)

type offsiteEnv struct {
	a       *Local
	mem     *offsitetest.Mem
	root    string
	key     seal.Key
	remote  agentapi.Remote
	salt    string
	content map[string][]byte // path -> bytes
}

func newOffsiteEnv(t *testing.T) *offsiteEnv {
	t.Helper()
	e := &offsiteEnv{mem: &offsitetest.Mem{PartSize: 1 << 20}, root: t.TempDir(), content: map[string][]byte{}}
	e.a = NewLocal(Config{Name: "h", DiskDir: t.TempDir()}, fake.New(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(e.a.Close)
	e.a.SetBucketOpener(func(offsite.Config) (offsite.Bucket, error) { return e.mem, nil })
	var err error
	if e.key, err = seal.NewKey(); err != nil {
		t.Fatal(err)
	}
	e.remote = agentapi.Remote{Endpoint: "http://s3", Bucket: "b", AccessKey: "a", SecretKey: "s", Key: e.key.String()}
	salt, _ := seal.NewSalt()
	e.salt = hex.EncodeToString(salt)
	r := rand.New(rand.NewPCG(1, 2))
	for _, f := range []struct {
		path string
		size int
	}{{"backups/vm/b1/vda.qcow2", 3<<20 + 5}, {"backups/vm/b1/vdb.qcow2", 1 << 20}, {"backups/vm/b1/domain.xml", 300}, {"backups/vm/b1/boot/vmlinuz", 4096}} {
		data := make([]byte, f.size)
		for i := range data {
			data[i] = byte(r.Uint32())
		}
		abs := filepath.Join(e.root, f.path)
		if err := os.MkdirAll(filepath.Dir(abs), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(abs, data, 0o640); err != nil {
			t.Fatal(err)
		}
		e.content[f.path] = data
	}
	if err := os.WriteFile(filepath.Join(e.root, "backups/vm/b1/screenshot.png"), []byte("png"), 0o640); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *offsiteEnv) hash(t *testing.T, path string) string {
	t.Helper()
	h, err := HashFile(filepath.Join(e.root, path))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func (e *offsiteEnv) putRequest(t *testing.T) agentapi.OffsitePutRequest {
	req := agentapi.OffsitePutRequest{InStorage: agentapi.InStorage{Storage: e.root}, Remote: e.remote,
		Extras: agentapi.Extras{Dir: "backups/vm/b1", Copy: "c1", Salt: e.salt, ObjectPrefix: "knib/o/"}}
	for _, p := range []string{"backups/vm/b1/vda.qcow2", "backups/vm/b1/vdb.qcow2"} {
		req.Objects = append(req.Objects, agentapi.PutObject{Path: p, Key: "knib/o/" + e.key.ObjectName("object", "c1", p), Salt: e.salt, Hash: e.hash(t, p)})
	}
	return req
}

func (e *offsiteEnv) put(t *testing.T, req agentapi.OffsitePutRequest) (agentapi.OffsitePutResult, error) {
	res, err := e.a.offsitePut(context.Background(), req, noProgress)
	if err != nil {
		return agentapi.OffsitePutResult{}, err
	}
	return res.(agentapi.OffsitePutResult), nil
}

func (e *offsiteEnv) getRequest(put agentapi.OffsitePutResult, hashes map[string]string) agentapi.OffsiteGetRequest {
	req := agentapi.OffsiteGetRequest{InStorage: agentapi.InStorage{Storage: e.root}, Remote: e.remote}
	for _, o := range put.Objects {
		req.Objects = append(req.Objects, agentapi.GetObject{Key: o.Key, VersionID: o.VersionID, Path: o.Path, Hash: hashes[o.Path]})
	}
	return req
}

// Files go up sealed (the extras of the directory too, not screenshots)
// and come back byte for byte after the storage was wiped.
func TestOffsitePutGetRoundTrip(t *testing.T) {
	e := newOffsiteEnv(t)
	req := e.putRequest(t)
	res, err := e.put(t, req)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Objects) != 4 {
		t.Fatalf("objects: %+v", res.Objects)
	}
	hashes := map[string]string{}
	for _, o := range res.Objects {
		if o.Key != "knib/o/"+e.key.ObjectName("object", "c1", o.Path) || o.Size != seal.SealedSize(o.PlainSize) || o.Sent != o.Size {
			t.Fatalf("object %+v", o)
		}
		hashes[o.Path] = e.hash(t, o.Path)
		rc, _ := e.mem.Get(context.Background(), o.Key, "")
		raw, _ := io.ReadAll(rc)
		if bytes.Contains(raw, e.content[o.Path][:64]) {
			t.Fatalf("%s went up in clear", o.Path)
		}
	}
	// Again: everything is there, nothing is sent.
	again, err := e.put(t, req)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range again.Objects {
		if o.Sent != 0 {
			t.Fatalf("sent again: %+v", o)
		}
	}
	if err := os.RemoveAll(filepath.Join(e.root, "backups")); err != nil {
		t.Fatal(err)
	}
	got, err := e.a.offsiteGet(context.Background(), e.getRequest(res, hashes), noProgress)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range got.(agentapi.OffsiteGetResult).Files {
		data, err := os.ReadFile(filepath.Join(e.root, f.Path))
		if err != nil || !bytes.Equal(data, e.content[f.Path]) || !f.Downloaded {
			t.Fatalf("%s came back wrong: %v %+v", f.Path, err, f)
		}
	}
	// A second fetch keeps the files that are there with their hash.
	got, err = e.a.offsiteGet(context.Background(), e.getRequest(res, hashes), noProgress)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range got.(agentapi.OffsiteGetResult).Files {
		if f.Downloaded && hashes[f.Path] != "" {
			t.Fatalf("%s downloaded again", f.Path)
		}
	}
}

// A file that no longer has its recorded hash is not uploaded at all.
func TestOffsitePutRefusesAChangedFile(t *testing.T) {
	e := newOffsiteEnv(t)
	req := e.putRequest(t)
	req.Objects[1].Hash = "xxh3-128:00000000000000000000000000000000"
	if _, err := e.put(t, req); err == nil || !strings.Contains(err.Error(), "no longer matches its recorded hash") {
		t.Fatalf("err %v", err)
	}
	if list, _ := e.mem.List(context.Background(), "knib/o/"+e.key.ObjectName("object", "c1", req.Objects[1].Path), false); len(list) != 0 {
		t.Fatalf("the changed file was uploaded: %+v", list)
	}
}

// An upload that dies in the middle resumes: the retry sends only the
// parts that were missing, and the object is whole.
func TestOffsitePutResumes(t *testing.T) {
	e := newOffsiteEnv(t)
	req := e.putRequest(t)
	req.Objects, req.Extras = req.Objects[:1], agentapi.Extras{} // vda: 3 MiB + 5 sealed in 4 parts
	e.mem.FailAfterParts = 2
	if _, err := e.put(t, req); err == nil {
		t.Fatal("the interrupted upload succeeded")
	}
	before := e.mem.PartsPut
	res, err := e.put(t, req)
	if err != nil {
		t.Fatal(err)
	}
	if sent := e.mem.PartsPut - before; sent != 2 {
		t.Fatalf("the retry stored %d parts, want the 2 missing", sent)
	}
	if err := os.Remove(filepath.Join(e.root, req.Objects[0].Path)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.a.offsiteGet(context.Background(), e.getRequest(res, map[string]string{req.Objects[0].Path: req.Objects[0].Hash}), noProgress); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(filepath.Join(e.root, req.Objects[0].Path)); !bytes.Equal(data, e.content[req.Objects[0].Path]) {
		t.Fatal("the resumed object came back wrong")
	}
}

// A flipped byte in the bucket fails the fetch with a clear error, and
// nothing is left at the file's path.
func TestOffsiteGetRefusesATamperedObject(t *testing.T) {
	e := newOffsiteEnv(t)
	req := e.putRequest(t)
	res, err := e.put(t, req)
	if err != nil {
		t.Fatal(err)
	}
	target := res.Objects[0]
	e.mem.Corrupt(target.Key, 2<<20)
	if err := os.RemoveAll(filepath.Join(e.root, "backups")); err != nil {
		t.Fatal(err)
	}
	_, err = e.a.offsiteGet(context.Background(), e.getRequest(res, map[string]string{target.Path: req.Objects[0].Hash}), noProgress)
	if !errors.Is(err, seal.ErrTampered) || !strings.Contains(err.Error(), target.Key) || !strings.Contains(err.Error(), "tampered") {
		t.Fatalf("err %v", err)
	}
	for _, p := range []string{target.Path, target.Path + ".part"} {
		if _, err := os.Stat(filepath.Join(e.root, p)); !os.IsNotExist(err) {
			t.Fatalf("%s was left: %v", p, err)
		}
	}
}

// Paths leaving the storage and foreign keys are refused before anything
// is sent.
func TestOffsiteRefusesBadRequests(t *testing.T) {
	e := newOffsiteEnv(t)
	for _, mod := range []func(*agentapi.OffsitePutRequest){
		func(r *agentapi.OffsitePutRequest) { r.Objects[0].Path = "../etc/passwd" },
		func(r *agentapi.OffsitePutRequest) { r.Objects[0].Key = "other/x" },
		func(r *agentapi.OffsitePutRequest) { r.Objects[0].Salt = "00" },
		func(r *agentapi.OffsitePutRequest) { r.Remote.Key = "nope" },
		func(r *agentapi.OffsitePutRequest) { r.Extras.Dir = "/etc" },
	} {
		req := e.putRequest(t)
		mod(&req)
		if _, err := e.put(t, req); err == nil {
			t.Fatalf("accepted %+v", req)
		}
	}
	if e.mem.PartsPut != 0 {
		t.Fatalf("%d parts stored", e.mem.PartsPut)
	}
}
