package qemuimg

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// requireTools skips the test when qemu-img or qemu-io is missing, unless
// KNIB_TEST_REQUIRE_INFRA=1 demands them.
func requireTools(t *testing.T) {
	t.Helper()
	for _, name := range []string{"qemu-img", "qemu-io"} {
		if _, err := exec.LookPath(name); err != nil {
			if os.Getenv("KNIB_TEST_REQUIRE_INFRA") == "1" {
				t.Fatalf("%s not found and KNIB_TEST_REQUIRE_INFRA=1: %v", name, err)
			}
			t.Skipf("%s not found: %v", name, err)
		}
	}
}

// qemuIO writes pattern bytes into a qcow2 image the way a guest would.
func qemuIO(t *testing.T, path, command string) {
	t.Helper()
	out, err := exec.Command("qemu-io", "-f", "qcow2", "-c", command, path).CombinedOutput()
	if err != nil {
		t.Fatalf("qemu-io %q %s: %v\n%s", command, path, err, out)
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

func mustCreate(t *testing.T, path string, size int64, backing *Backing) {
	t.Helper()
	if err := Default.Create(ctx(t), path, "qcow2", size, backing); err != nil {
		t.Fatalf("create %s: %v", path, err)
	}
}

func mustSame(t *testing.T, a, b string, want bool) {
	t.Helper()
	same, err := Default.Compare(ctx(t), a, b, false)
	if err != nil {
		t.Fatalf("compare %s %s: %v", a, b, err)
	}
	if same != want {
		t.Fatalf("compare %s %s: same=%v, want %v", filepath.Base(a), filepath.Base(b), same, want)
	}
}

func TestCreateAndInfo(t *testing.T) {
	requireTools(t)
	dir := t.TempDir()
	img := filepath.Join(dir, "disk.qcow2")
	mustCreate(t, img, 4<<20, nil)

	infos, err := Default.Info(ctx(t), img, InfoOptions{Format: "qcow2"})
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 1 {
		t.Fatalf("got %d infos, want 1", len(infos))
	}
	i := infos[0]
	if i.Filename != img || i.Format != "qcow2" || i.VirtualSize != 4<<20 || i.ClusterSize != 65536 {
		t.Errorf("unexpected info %+v", i)
	}
	if i.Compat() != "1.1" || i.CompressionType() != "zlib" || i.DirtyFlag {
		t.Errorf("compat=%q compression=%q dirty=%v", i.Compat(), i.CompressionType(), i.DirtyFlag)
	}
	if i.BackingFilename != "" || i.ActualSize <= 0 {
		t.Errorf("backing=%q actual=%d", i.BackingFilename, i.ActualSize)
	}
}

func TestCreateValidation(t *testing.T) {
	dir := t.TempDir()
	c := context.Background()
	if err := Default.Create(c, filepath.Join(dir, "x"), "qcow2", 1<<20, &Backing{Path: "b"}); err == nil {
		t.Error("create with backing but no backing format: want error")
	}
	if err := Default.Create(c, filepath.Join(dir, "x"), "qcow2", 0, nil); err == nil {
		t.Error("create without size and backing: want error")
	}
	if err := Default.Convert(c, ConvertOptions{Src: "a", Dst: "b", DstFormat: "qcow2", BackingFile: "c"}); err == nil {
		t.Error("convert with backing file but no backing format: want error")
	}
}

// TestChain builds base <- top, checks the chain as Info reports it, then
// makes a full and an incremental copy, commits and rebases.
func TestChain(t *testing.T) {
	requireTools(t)
	dir := t.TempDir()
	base := filepath.Join(dir, "base.qcow2")
	top := filepath.Join(dir, "top.qcow2")
	mustCreate(t, base, 4<<20, nil)
	qemuIO(t, base, "write -P 0xab 0 1M")
	mustCreate(t, top, 0, &Backing{Path: base, Format: "qcow2"})
	qemuIO(t, top, "write -P 0xcd 1M 1M")

	chain, err := Default.Info(ctx(t), top, InfoOptions{BackingChain: true, ForceShare: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(chain) != 2 {
		t.Fatalf("chain has %d layers, want 2: %+v", len(chain), chain)
	}
	if chain[0].Filename != top || chain[0].BackingFilename != base || chain[0].FullBackingFilename != base ||
		chain[0].BackingFilenameFormat != "qcow2" || chain[0].VirtualSize != 4<<20 {
		t.Errorf("top layer: %+v", chain[0])
	}
	if chain[1].Filename != base || chain[1].BackingFilename != "" {
		t.Errorf("base layer: %+v", chain[1])
	}

	// Full copy: self-contained, same content.
	full := filepath.Join(dir, "full.qcow2")
	if err := Default.Convert(ctx(t), ConvertOptions{Src: top, SrcFormat: "qcow2", Dst: full, DstFormat: "qcow2", ForceShare: true}); err != nil {
		t.Fatal(err)
	}
	fi, err := Default.Info(ctx(t), full, InfoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if fi[0].BackingFilename != "" {
		t.Errorf("full copy has backing file %q", fi[0].BackingFilename)
	}
	mustSame(t, full, top, true)

	// Incremental copy of the top layer onto a full copy of the base.
	baseCopy := filepath.Join(dir, "base-copy.qcow2")
	if err := Default.Convert(ctx(t), ConvertOptions{Src: base, SrcFormat: "qcow2", Dst: baseCopy, DstFormat: "qcow2"}); err != nil {
		t.Fatal(err)
	}
	inc := filepath.Join(dir, "inc.qcow2")
	if err := Default.Convert(ctx(t), ConvertOptions{
		Src: top, SrcFormat: "qcow2", Dst: inc, DstFormat: "qcow2", ForceShare: true,
		BackingFile: baseCopy, BackingFormat: "qcow2",
	}); err != nil {
		t.Fatal(err)
	}
	ii, err := Default.Info(ctx(t), inc, InfoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ii[0].BackingFilename != baseCopy || ii[0].BackingFilenameFormat != "qcow2" {
		t.Errorf("incremental copy backing %q (%q), want %q", ii[0].BackingFilename, ii[0].BackingFilenameFormat, baseCopy)
	}
	mustSame(t, inc, top, true)

	// The incremental copy holds only the top layer's clusters: detached from
	// its backing file (unsafe rebase), the base's 0xab megabyte is gone.
	detached := filepath.Join(dir, "detached.qcow2")
	if err := Default.Convert(ctx(t), ConvertOptions{Src: inc, Dst: detached, DstFormat: "qcow2", BackingFile: baseCopy, BackingFormat: "qcow2"}); err != nil {
		t.Fatal(err)
	}
	if err := Default.Rebase(ctx(t), detached, "", "", true); err != nil {
		t.Fatal(err)
	}
	onlyTop := filepath.Join(dir, "only-top.qcow2")
	mustCreate(t, onlyTop, 4<<20, nil)
	qemuIO(t, onlyTop, "write -P 0xcd 1M 1M")
	mustSame(t, detached, onlyTop, true)
	mustSame(t, detached, top, false)

	// Unsafe rebase onto an identical copy keeps the content.
	if err := Default.Rebase(ctx(t), inc, base, "qcow2", true); err != nil {
		t.Fatal(err)
	}
	ii, err = Default.Info(ctx(t), inc, InfoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ii[0].BackingFilename != base {
		t.Errorf("after rebase backing %q, want %q", ii[0].BackingFilename, base)
	}
	mustSame(t, inc, top, true)

	// Safe rebase to no backing file flattens.
	if err := Default.Rebase(ctx(t), inc, "", "", false); err != nil {
		t.Fatal(err)
	}
	mustSame(t, inc, top, true)

	// Commit top into base: base now has top's content.
	mustSame(t, base, top, false)
	if err := Default.Commit(ctx(t), top, "", true); err != nil {
		t.Fatal(err)
	}
	mustSame(t, base, full, true)
}

func TestCommitWithBase(t *testing.T) {
	requireTools(t)
	dir := t.TempDir()
	base := filepath.Join(dir, "base.qcow2")
	mid := filepath.Join(dir, "mid.qcow2")
	top := filepath.Join(dir, "top.qcow2")
	mustCreate(t, base, 4<<20, nil)
	mustCreate(t, mid, 0, &Backing{Path: "base.qcow2", Format: "qcow2"}) // relative
	mustCreate(t, top, 0, &Backing{Path: mid, Format: "qcow2"})
	qemuIO(t, mid, "write -P 0x11 0 64k")
	qemuIO(t, top, "write -P 0x22 64k 64k")

	want := filepath.Join(dir, "want.qcow2")
	if err := Default.Convert(ctx(t), ConvertOptions{Src: top, Dst: want, DstFormat: "qcow2"}); err != nil {
		t.Fatal(err)
	}
	if err := Default.Commit(ctx(t), top, base, false); err != nil {
		t.Fatal(err)
	}
	mustSame(t, base, want, true)

	chain, err := Default.Info(ctx(t), mid, InfoOptions{BackingChain: true})
	if err != nil {
		t.Fatal(err)
	}
	if chain[0].BackingFilename != "base.qcow2" || chain[0].FullBackingFilename != base {
		t.Errorf("relative backing: %q resolved %q", chain[0].BackingFilename, chain[0].FullBackingFilename)
	}
}

func TestCheck(t *testing.T) {
	requireTools(t)
	dir := t.TempDir()
	img := filepath.Join(dir, "disk.qcow2")
	mustCreate(t, img, 4<<20, nil)
	qemuIO(t, img, "write -P 0xab 0 1M")
	res, err := Default.Check(ctx(t), img)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Clean() || res.Corrupt() || res.Format != "qcow2" || res.ImageEndOffset <= 0 || res.TotalClusters != 64 {
		t.Errorf("unexpected check result %+v", res)
	}

	raw := filepath.Join(dir, "disk.raw")
	if err := Default.Create(ctx(t), raw, "raw", 1<<20, nil); err != nil {
		t.Fatal(err)
	}
	_, err = Default.Check(ctx(t), raw)
	var re *RunError
	if !errors.Is(err, ErrCheckUnsupported) || !errors.As(err, &re) || re.ExitCode != 63 {
		t.Errorf("check raw: %v, want ErrCheckUnsupported with exit code 63", err)
	}
}

func TestCheckCorrupt(t *testing.T) {
	requireTools(t)
	dir := t.TempDir()
	img := filepath.Join(dir, "disk.qcow2")
	mustCreate(t, img, 4<<20, nil)
	qemuIO(t, img, "write -P 0xab 0 64k")
	// Zero the refcount block (cluster 2 in a fresh 64k-cluster image: header,
	// refcount table, refcount block): every allocated cluster now has
	// refcount 0, a corruption.
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(make([]byte, 65536), 2*65536); err != nil {
		t.Fatal(err)
	}
	f.Close()
	res, err := Default.Check(ctx(t), img)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Corrupt() || res.ExitCode != 2 || res.Corruptions == 0 || res.Clean() {
		t.Errorf("unexpected check result %+v", res)
	}
}

func TestCompareDiffer(t *testing.T) {
	requireTools(t)
	dir := t.TempDir()
	a := filepath.Join(dir, "a.qcow2")
	b := filepath.Join(dir, "b.qcow2")
	mustCreate(t, a, 4<<20, nil)
	mustCreate(t, b, 4<<20, nil)
	mustSame(t, a, b, true)
	qemuIO(t, b, "write -P 0x01 3M 512")
	same, err := Default.Compare(ctx(t), a, b, true)
	if err != nil || same {
		t.Fatalf("compare: same=%v err=%v, want false, nil", same, err)
	}
	// No verdict for a missing file.
	if _, err := Default.Compare(ctx(t), a, filepath.Join(dir, "missing"), false); err == nil {
		t.Fatal("compare with missing file: want error")
	}
}

func TestRunError(t *testing.T) {
	requireTools(t)
	missing := filepath.Join(t.TempDir(), "missing.qcow2")
	_, err := Default.Info(ctx(t), missing, InfoOptions{})
	var re *RunError
	if !errors.As(err, &re) {
		t.Fatalf("got %T %v, want *RunError", err, err)
	}
	if re.ExitCode != 1 || !strings.Contains(re.Stderr, "No such file or directory") ||
		re.Stderr != strings.TrimSpace(re.Stderr) || len(re.Args) < 2 || re.Args[1] != "info" || re.Args[len(re.Args)-1] != missing {
		t.Errorf("unexpected RunError %+v", re)
	}
	if !strings.Contains(err.Error(), "No such file or directory") || !strings.HasPrefix(err.Error(), "qemu-img info: exit status 1") {
		t.Errorf("Error() = %q", err.Error())
	}
}

func TestMissingBinary(t *testing.T) {
	tool := &Tool{Binary: filepath.Join(t.TempDir(), "no-qemu-img")}
	_, err := tool.Info(context.Background(), "x", InfoOptions{})
	var re *RunError
	if err == nil || errors.As(err, &re) {
		t.Fatalf("got %v, want a start error that is not a *RunError", err)
	}
}

func TestConvertCompressProgress(t *testing.T) {
	requireTools(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "src.qcow2")
	mustCreate(t, src, 8<<20, nil)
	qemuIO(t, src, "write -P 0xab 0 4M")
	dst := filepath.Join(dir, "dst.qcow2")
	var pcts []float64
	err := Default.Convert(ctx(t), ConvertOptions{
		Src: src, SrcFormat: "qcow2", Dst: dst, DstFormat: "qcow2",
		Compress: true, CompressionType: "zstd", Coroutines: 4, RateLimit: 1 << 30, OutOfOrder: true,
		Progress: func(p float64) { pcts = append(pcts, p) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(pcts) == 0 || pcts[len(pcts)-1] != 100 {
		t.Errorf("progress reports %v, want ending in 100", pcts)
	}
	infos, err := Default.Info(ctx(t), dst, InfoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if infos[0].CompressionType() != "zstd" {
		t.Errorf("compression type %q, want zstd", infos[0].CompressionType())
	}
	if infos[0].ActualSize >= 4<<20 {
		t.Errorf("compressed copy occupies %d bytes", infos[0].ActualSize)
	}
	mustSame(t, src, dst, true)
}

func TestContextCancel(t *testing.T) {
	requireTools(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "src.qcow2")
	mustCreate(t, src, 8<<20, nil)
	qemuIO(t, src, "write -P 0xab 0 8M")
	c, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := Default.Convert(c, ConvertOptions{Src: src, Dst: filepath.Join(dir, "dst.qcow2"), DstFormat: "qcow2", RateLimit: 1024})
	var re *RunError
	if !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &re) {
		t.Fatalf("got %v, want deadline exceeded and *RunError", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("cancel took %v", d)
	}
}

func TestColonFileName(t *testing.T) {
	requireTools(t)
	dir := t.TempDir()
	t.Chdir(dir)
	if err := Default.Create(ctx(t), "nbd:x", "qcow2", 1<<20, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "nbd:x")); err != nil {
		t.Fatal(err)
	}
	if _, err := Default.Info(ctx(t), "nbd:x", InfoOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestImagePath(t *testing.T) {
	for in, want := range map[string]string{
		"":            "",
		"/a:b":        "/a:b",
		"a.qcow2":     "a.qcow2",
		"a:b":         "./a:b",
		"dir/a:b":     "dir/a:b",
		"./x:y":       "./x:y",
		"json:{}":     "./json:{}",
		"d:/x/y.qcow": "./d:/x/y.qcow",
	} {
		if got := imagePath(in); got != want {
			t.Errorf("imagePath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestProgressWriter(t *testing.T) {
	var got []float64
	w := &progressWriter{fn: func(p float64) { got = append(got, p) }}
	for _, chunk := range []string{"    (0.00/1", "00%)\r    (50.5/100%)\r", "    (100.00/100%)\r\n"} {
		if _, err := w.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	want := []float64{0, 50.5, 100}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}

// The rate limit is detected from the help text: Debian's qemu-img has it;
// a qemu-img 5.1 (help text without -r) does not.
func TestConvertRateLimitIsDetected(t *testing.T) {
	requireTools(t)
	if ok, err := Default.ConvertRateLimit(ctx(t)); err != nil || !ok {
		t.Fatalf("qemu-img on this machine: %v %v, want the rate limit", ok, err)
	}
	old := filepath.Join(t.TempDir(), "qemu-img-5.1")
	script := "#!/bin/sh\necho 'qemu-img version 5.1.0'\necho '  convert [--object objectdef] [-c] [-p] [-m num_coroutines] [-W] filename [filename2 [...]] output_filename'\n"
	if err := os.WriteFile(old, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	if ok, err := (&Tool{Binary: old}).ConvertRateLimit(ctx(t)); err != nil || ok {
		t.Fatalf("qemu-img 5.1: %v %v, want no rate limit", ok, err)
	}
}

// TestMap: each range says which layer holds it and where; the bytes at
// that offset of that layer's file are the guest's.
func TestMap(t *testing.T) {
	requireTools(t)
	dir := t.TempDir()
	base, top := filepath.Join(dir, "base.qcow2"), filepath.Join(dir, "top.qcow2")
	mustCreate(t, base, 8<<20, nil)
	qemuIO(t, base, "write -P 0xab 0 1M")
	mustCreate(t, top, 0, &Backing{Path: base, Format: "qcow2"})
	qemuIO(t, top, "write -P 0xcd 512k 64k")
	m, err := Default.Map(ctx(t), top, "qcow2")
	if err != nil {
		t.Fatal(err)
	}
	files := []string{top, base}
	want := map[int64]byte{0: 0xab, 512 << 10: 0xcd, 600 << 10: 0xab}
	found := 0
	var end int64
	for _, e := range m {
		end = e.Start + e.Length
		for at, b := range want {
			if at < e.Start || at >= e.Start+e.Length {
				continue
			}
			if !e.Data || e.Offset == nil || e.Depth >= len(files) {
				t.Fatalf("%d lies in %+v", at, e)
			}
			f, err := os.Open(files[e.Depth])
			if err != nil {
				t.Fatal(err)
			}
			got := make([]byte, 1)
			_, err = f.ReadAt(got, *e.Offset+at-e.Start)
			f.Close()
			if err != nil || got[0] != b {
				t.Fatalf("byte %d read at %d of %s: %x (%v), want %x", at, *e.Offset+at-e.Start, files[e.Depth], got, err, b)
			}
			found++
		}
	}
	if found != len(want) || end != 8<<20 {
		t.Fatalf("map %+v: found %d of %d, ends at %d", m, found, len(want), end)
	}
	if _, err := Default.Map(ctx(t), filepath.Join(dir, "missing.qcow2"), "qcow2"); err == nil {
		t.Fatal("map of a missing image worked")
	}
}
