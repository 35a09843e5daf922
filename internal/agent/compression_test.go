package agent

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/qemuimg"
)

// A compression that failed for good leaves no copies: the cleanup mode of
// finalize removes the compressed copy and a partial one, keeps the backup
// file as it was, and is idempotent.
func TestFinalizeCleanupRemovesTheCompressedCopies(t *testing.T) {
	e := newHostEnv(t, false)
	rel := filepath.Join("backups", e.uuid, "b1", "vda.qcow2")
	file := filepath.Join(e.storage, rel)
	if err := os.MkdirAll(filepath.Dir(file), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := qemuimg.Default.Create(e.ctx, file, "qcow2", 8<<20, nil); err != nil {
		t.Fatal(err)
	}
	before, err := HashFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, leftover := range []string{file + compressedSuffix, file + compressedSuffix + ".part"} {
		if err := os.WriteFile(leftover, []byte("partial"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	req := agentapi.FinalizeCompressionRequest{InStorage: agentapi.InStorage{Storage: e.storage}, Files: []agentapi.RestoreFile{{Disk: "vda", Path: rel}}, Cleanup: true}
	for range 2 {
		if _, err := e.a.finalizeCompression(e.ctx, req, noProgress); err != nil {
			t.Fatal(err)
		}
	}
	for _, leftover := range []string{file + compressedSuffix, file + compressedSuffix + ".part"} {
		if _, err := os.Stat(leftover); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s is still there: %v", leftover, err)
		}
	}
	if after, err := HashFile(file); err != nil || after != before {
		t.Fatalf("the backup file changed: %v", err)
	}
}

// A rate limit is applied only when qemu-img has convert -r: with an old
// qemu-img (one that refuses -r, as QEMU 5.1 did) the compression runs
// without it and the result says why.
func TestCompressWithoutRateLimitSupport(t *testing.T) {
	e := newHostEnv(t, false)
	rel := filepath.Join("backups", e.uuid, "b1", "vda.qcow2")
	file := filepath.Join(e.storage, rel)
	if err := os.MkdirAll(filepath.Dir(file), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := qemuimg.Default.Create(e.ctx, file, "qcow2", 8<<20, nil); err != nil {
		t.Fatal(err)
	}
	old := filepath.Join(t.TempDir(), "qemu-img")
	script := `#!/bin/sh
if [ "$1" = "--help" ]; then
  echo "  convert [--object objectdef] [-c] [-p] [-m num_coroutines] [-W] filename [filename2 [...]] output_filename"
  exit 0
fi
for a in "$@"; do
  if [ "$a" = "-r" ]; then echo "qemu-img: invalid option -- 'r'" >&2; exit 1; fi
done
exec qemu-img "$@"
`
	if err := os.WriteFile(old, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	e.a.img = &qemuimg.Tool{Binary: old}
	req := agentapi.CompressRequest{InStorage: agentapi.InStorage{Storage: e.storage}, Files: []agentapi.RestoreFile{{Disk: "vda", Path: rel}},
		Library: "zstd", Coroutines: 1, RateLimitMBps: 50, MinFreeFactor: 0}
	out, err := e.a.compress(e.ctx, req, noProgress)
	if err != nil {
		t.Fatal(err)
	}
	res := out.(agentapi.CompressResult)
	if !strings.Contains(res.RateLimitSkipped, "not applied") || len(res.Files) != 1 {
		t.Fatalf("result: %+v", res)
	}
	if _, err := os.Stat(file + compressedSuffix); err != nil {
		t.Fatalf("no compressed copy: %v", err)
	}
	// With a qemu-img that has -r, the limit is applied and nothing is said.
	e.a.img = qemuimg.Default
	if err := os.Remove(file + compressedSuffix); err != nil {
		t.Fatal(err)
	}
	out, err = e.a.compress(e.ctx, req, noProgress)
	if err != nil || out.(agentapi.CompressResult).RateLimitSkipped != "" {
		t.Fatalf("with -r: %+v %v", out, err)
	}
}

// A backup's files are compressed at the same time and finalized: each
// backup file becomes its compressed copy (same content as read by
// qemu-img compare, smaller here), with no copy or partial file left, and
// the recorded hash and size are those of the final file.
func TestCompressAndFinalizeSeveralFiles(t *testing.T) {
	e := newHostEnv(t, false)
	var files []agentapi.RestoreFile
	var originals []string
	for _, disk := range []string{"vda", "vdb"} {
		rel := filepath.Join("backups", e.uuid, "b1", disk+".qcow2")
		file := filepath.Join(e.storage, rel)
		if err := os.MkdirAll(filepath.Dir(file), 0o750); err != nil {
			t.Fatal(err)
		}
		raw := filepath.Join(t.TempDir(), disk+".raw")
		if err := os.WriteFile(raw, []byte(strings.Repeat("knib compresses "+disk+"\n", 200000)), 0o640); err != nil {
			t.Fatal(err)
		}
		if err := qemuimg.Default.Convert(e.ctx, qemuimg.ConvertOptions{Src: raw, SrcFormat: "raw", Dst: file, DstFormat: "qcow2"}); err != nil {
			t.Fatal(err)
		}
		keep := filepath.Join(t.TempDir(), disk+".orig.qcow2")
		if err := qemuimg.Default.Convert(e.ctx, qemuimg.ConvertOptions{Src: file, SrcFormat: "qcow2", Dst: keep, DstFormat: "qcow2"}); err != nil {
			t.Fatal(err)
		}
		files = append(files, agentapi.RestoreFile{Disk: disk, Path: rel})
		originals = append(originals, keep)
	}
	req := agentapi.CompressRequest{InStorage: agentapi.InStorage{Storage: e.storage}, Files: files, Library: "zstd", Coroutines: 2, MinFreeFactor: 0}
	out, err := e.a.compress(e.ctx, req, noProgress)
	if err != nil {
		t.Fatal(err)
	}
	if res := out.(agentapi.CompressResult); len(res.Files) != 2 || res.Files[0].Disk != "vda" || res.Files[1].Disk != "vdb" || res.Files[1].Size >= res.Files[1].UncompressedSize {
		t.Fatalf("compress result: %+v", res)
	}
	fin := agentapi.FinalizeCompressionRequest{InStorage: agentapi.InStorage{Storage: e.storage}, Files: files}
	out, err = e.a.finalizeCompression(e.ctx, fin, noProgress)
	if err != nil {
		t.Fatal(err)
	}
	res := out.(agentapi.CompressResult)
	if len(res.Files) != 2 {
		t.Fatalf("finalize result: %+v", res)
	}
	for i, f := range res.Files {
		file := filepath.Join(e.storage, files[i].Path)
		for _, leftover := range []string{file + compressedSuffix, file + compressedSuffix + ".part"} {
			if _, err := os.Stat(leftover); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("%s is still there: %v", leftover, err)
			}
		}
		st, err := os.Stat(file)
		if err != nil {
			t.Fatal(err)
		}
		hash, err := HashFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if f.Disk != files[i].Disk || f.Hash != hash || f.Size != st.Size() || f.UncompressedSize <= f.Size {
			t.Fatalf("finalized %s: %+v (file: %d bytes, %s)", files[i].Disk, f, st.Size(), hash)
		}
		if same, err := qemuimg.Default.Compare(e.ctx, originals[i], file, false); err != nil || !same {
			t.Fatalf("%s changed its content: same %v, %v", files[i].Disk, same, err)
		}
	}
}
