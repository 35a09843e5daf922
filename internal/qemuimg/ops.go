package qemuimg

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// ImageInfo is one image as "qemu-img info --output=json" describes it.
type ImageInfo struct {
	Filename    string `json:"filename"`
	Format      string `json:"format"`
	VirtualSize int64  `json:"virtual-size"`
	// ActualSize is the space the file occupies on the host, in bytes.
	ActualSize  int64 `json:"actual-size"`
	ClusterSize int64 `json:"cluster-size"`
	// BackingFilename is the backing file name exactly as the image header
	// records it (possibly relative to the image's directory).
	BackingFilename string `json:"backing-filename"`
	// FullBackingFilename is BackingFilename resolved the way qemu opens it.
	FullBackingFilename   string          `json:"full-backing-filename"`
	BackingFilenameFormat string          `json:"backing-filename-format"`
	DirtyFlag             bool            `json:"dirty-flag"`
	FormatSpecific        *FormatSpecific `json:"format-specific"`
}

// FormatSpecific holds the format-specific part of ImageInfo; Data is only
// filled for qcow2.
type FormatSpecific struct {
	Type string             `json:"type"`
	Data FormatSpecificData `json:"data"`
}

// FormatSpecificData is the qcow2 format-specific information.
type FormatSpecificData struct {
	// Compat is the qcow2 version: "0.10" (v2) or "1.1" (v3).
	Compat          string `json:"compat"`
	CompressionType string `json:"compression-type"`
	LazyRefcounts   bool   `json:"lazy-refcounts"`
	RefcountBits    int    `json:"refcount-bits"`
	Corrupt         bool   `json:"corrupt"`
	ExtendedL2      bool   `json:"extended-l2"`
}

// Compat returns the qcow2 compat level, or "" for other formats.
func (i ImageInfo) Compat() string {
	if i.FormatSpecific == nil {
		return ""
	}
	return i.FormatSpecific.Data.Compat
}

// CompressionType returns the qcow2 compression type, or "".
func (i ImageInfo) CompressionType() string {
	if i.FormatSpecific == nil {
		return ""
	}
	return i.FormatSpecific.Data.CompressionType
}

// InfoOptions selects how Info opens the image.
type InfoOptions struct {
	// BackingChain asks for the whole chain (--backing-chain).
	BackingChain bool
	// ForceShare opens without locks (-U), for images a VM holds open.
	ForceShare bool
	// Format, when set, is the format of the named (top) image (-f);
	// otherwise qemu-img probes it.
	Format string
}

// Info describes the image at path. Without BackingChain the result has
// exactly one element; with it, the chain from path (first) down to the
// image without backing file (last).
func (t *Tool) Info(ctx context.Context, path string, opts InfoOptions) ([]ImageInfo, error) {
	args := []string{"info", "--output=json"}
	if opts.BackingChain {
		args = append(args, "--backing-chain")
	}
	if opts.ForceShare {
		args = append(args, "-U")
	}
	if opts.Format != "" {
		args = append(args, "-f", opts.Format)
	}
	args = append(args, imagePath(path))
	out, err := t.run(ctx, args, nil)
	if err != nil {
		return nil, err
	}
	infos, err := decodeInfo(out, opts.BackingChain)
	if err != nil {
		return nil, fmt.Errorf("qemu-img info %s: %w", path, err)
	}
	return infos, nil
}

// Backing names the backing file of a new or converted image.
type Backing struct {
	// Path is recorded in the image header as given (absolute, or relative
	// to the new image's directory).
	Path string
	// Format is the backing file's format; required.
	Format string
}

// Create makes a new image of the given format. With backing, the image is
// an overlay of backing.Path and size may be 0 to inherit the backing
// file's virtual size. Create fails if path's parent directory is missing;
// it overwrites an existing file at path.
func (t *Tool) Create(ctx context.Context, path, format string, size int64, backing *Backing) error {
	if format == "" {
		return errors.New("qemu-img create: format required")
	}
	args := []string{"create", "-q", "-f", format}
	if backing != nil {
		if backing.Path == "" || backing.Format == "" {
			return errors.New("qemu-img create: backing path and format required")
		}
		args = append(args, "-b", backing.Path, "-F", backing.Format)
	} else if size <= 0 {
		return errors.New("qemu-img create: size required without backing file")
	}
	args = append(args, imagePath(path))
	if size > 0 {
		args = append(args, strconv.FormatInt(size, 10))
	}
	_, err := t.run(ctx, args, nil)
	return err
}

// ConvertOptions describes one qemu-img convert run.
type ConvertOptions struct {
	// Src is the image to read; SrcFormat its format (-f; probed if empty).
	Src, SrcFormat string
	// Dst is the image to write; DstFormat its format (-O; required).
	Dst, DstFormat string
	// ForceShare reads Src without locks (-U), e.g. from a running VM.
	ForceShare bool
	// BackingFile, when set, makes an incremental copy: only the clusters
	// allocated in Src's top layer are written, and Dst records BackingFile
	// (-B, taken verbatim, commas included) with format BackingFormat (-F,
	// required with BackingFile).
	BackingFile, BackingFormat string
	// Compress writes compressed clusters (-c, qcow2 only), with
	// CompressionType ("zlib" or "zstd"; default of qemu-img when empty).
	Compress        bool
	CompressionType string
	// Coroutines is the number of parallel coroutines (-m, 1..16); 0 keeps
	// qemu-img's default (8).
	Coroutines int
	// RateLimit caps the copy at this many bytes per second (-r); 0 means
	// unlimited.
	RateLimit int64
	// OutOfOrder allows out-of-order writes to Dst (-W).
	OutOfOrder bool
	// DstCache is Dst's cache mode (-t: "writeback", "unsafe", "none",
	// ...); empty keeps qemu-img's default (writeback: it flushes Dst when
	// it closes it). "unsafe" leaves the one flush to the caller.
	DstCache string
	// Progress, when set, is called with the percentage done (0..100) as
	// qemu-img reports it (-p). It is called from another goroutine, never
	// concurrently with itself.
	Progress func(pct float64)
}

// Convert copies Src to Dst, creating (or overwriting) Dst.
func (t *Tool) Convert(ctx context.Context, o ConvertOptions) error {
	if o.Src == "" || o.Dst == "" || o.DstFormat == "" {
		return errors.New("qemu-img convert: source, destination and destination format required")
	}
	args := []string{"convert"}
	if o.Progress != nil {
		args = append(args, "-p")
	}
	if o.ForceShare {
		args = append(args, "-U")
	}
	if o.SrcFormat != "" {
		args = append(args, "-f", o.SrcFormat)
	}
	args = append(args, "-O", o.DstFormat)
	if o.BackingFile != "" {
		if o.BackingFormat == "" {
			return errors.New("qemu-img convert: backing format required with backing file")
		}
		args = append(args, "-B", o.BackingFile, "-F", o.BackingFormat)
	}
	if o.Compress {
		args = append(args, "-c")
		if o.CompressionType != "" {
			if strings.ContainsAny(o.CompressionType, ",=") {
				return fmt.Errorf("qemu-img convert: invalid compression type %q", o.CompressionType)
			}
			args = append(args, "-o", "compression_type="+o.CompressionType)
		}
	}
	if o.Coroutines > 0 {
		args = append(args, "-m", strconv.Itoa(o.Coroutines))
	}
	if o.RateLimit > 0 {
		args = append(args, "-r", strconv.FormatInt(o.RateLimit, 10))
	}
	if o.OutOfOrder {
		args = append(args, "-W")
	}
	switch o.DstCache {
	case "":
	case "none", "writeback", "writethrough", "directsync", "unsafe":
		args = append(args, "-t", o.DstCache)
	default:
		return fmt.Errorf("qemu-img convert: invalid cache mode %q", o.DstCache)
	}
	args = append(args, imagePath(o.Src), imagePath(o.Dst))
	if o.Progress == nil {
		_, err := t.run(ctx, args, nil)
		return err
	}
	pw := &progressWriter{fn: o.Progress}
	_, err := t.run(ctx, args, pw)
	return err
}

// progressWriter parses qemu-img -p output: "    (12.34/100%)\r".
type progressWriter struct {
	mu  sync.Mutex
	buf []byte
	fn  func(float64)
}

var progressRE = regexp.MustCompile(`\((\d+(?:\.\d+)?)/100%\)`)

func (p *progressWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexAny(p.buf, "\r\n")
		if i < 0 {
			break
		}
		line := p.buf[:i]
		if m := progressRE.FindSubmatch(line); m != nil {
			if v, err := strconv.ParseFloat(string(m[1]), 64); err == nil {
				p.fn(v)
			}
		}
		p.buf = p.buf[i+1:]
	}
	if len(p.buf) > 4096 { // not progress output; do not grow without bound
		p.buf = p.buf[:0]
	}
	return len(b), nil
}

// Commit writes the clusters of top into base (-b), which must be in top's
// backing chain; an empty base means top's immediate backing file. With
// dropTop (-d) top is not emptied afterwards (for a caller that deletes
// it); qemu-img implies -d whenever base is given. Images between base and
// top are invalid afterwards.
func (t *Tool) Commit(ctx context.Context, top, base string, dropTop bool) error {
	args := []string{"commit", "-q"}
	if base != "" {
		args = append(args, "-b", base)
	}
	if dropTop {
		args = append(args, "-d")
	}
	args = append(args, imagePath(top))
	_, err := t.run(ctx, args, nil)
	return err
}

// Rebase makes path an overlay of newBacking (format backingFormat). Safe
// mode (unsafe false) copies into path whatever differs between the old and
// the new backing chain, so the guest-visible content is unchanged; unsafe
// mode only rewrites the header. An empty newBacking removes the backing
// file (safe mode then copies the whole old chain into path).
func (t *Tool) Rebase(ctx context.Context, path, newBacking, backingFormat string, unsafe bool) error {
	args := []string{"rebase", "-q"}
	if unsafe {
		args = append(args, "-u")
	}
	args = append(args, "-b", newBacking)
	if newBacking != "" {
		if backingFormat == "" {
			return errors.New("qemu-img rebase: backing format required")
		}
		args = append(args, "-F", backingFormat)
	}
	args = append(args, imagePath(path))
	_, err := t.run(ctx, args, nil)
	return err
}

// CheckResult is qemu-img check's JSON report (QAPI ImageCheck).
type CheckResult struct {
	Filename           string `json:"filename"`
	Format             string `json:"format"`
	CheckErrors        int64  `json:"check-errors"`
	ImageEndOffset     int64  `json:"image-end-offset"`
	Corruptions        int64  `json:"corruptions"`
	Leaks              int64  `json:"leaks"`
	CorruptionsFixed   int64  `json:"corruptions-fixed"`
	LeaksFixed         int64  `json:"leaks-fixed"`
	TotalClusters      int64  `json:"total-clusters"`
	AllocatedClusters  int64  `json:"allocated-clusters"`
	FragmentedClusters int64  `json:"fragmented-clusters"`
	CompressedClusters int64  `json:"compressed-clusters"`
	// ExitCode is qemu-img's exit code: 0 consistent, 2 corrupted, 3
	// leaked clusters only.
	ExitCode int `json:"-"`
}

// Corrupt reports whether the check found corruption (exit code 2).
func (r CheckResult) Corrupt() bool { return r.ExitCode == 2 || r.Corruptions > 0 }

// Clean reports whether the image is fully consistent (exit code 0).
func (r CheckResult) Clean() bool { return r.ExitCode == 0 && r.Corruptions == 0 && r.Leaks == 0 }

// ErrCheckUnsupported is wrapped by Check's error when the image format
// does not support consistency checks (exit code 63), e.g. raw.
var ErrCheckUnsupported = errors.New("image format does not support checks")

// Check verifies the consistency of the image at path without repairing
// it. A completed check returns its result and a nil error, also when it
// found corruption or leaks (see CheckResult.Corrupt and Clean). An error
// means the check did not complete: a *RunError (exit code 1), or an error
// wrapping ErrCheckUnsupported and the *RunError (exit code 63).
func (t *Tool) Check(ctx context.Context, path string) (CheckResult, error) {
	out, err := t.run(ctx, []string{"check", "--output=json", imagePath(path)}, nil)
	code := 0
	if err != nil {
		c, ok := exitCode(err)
		switch {
		case ok && ctx.Err() == nil && (c == 2 || c == 3):
			code = c
		case ok && c == 63:
			return CheckResult{}, fmt.Errorf("qemu-img check %s: %w: %w", path, ErrCheckUnsupported, err)
		default:
			return CheckResult{}, err
		}
	}
	var res CheckResult
	if err := json.Unmarshal(out, &res); err != nil {
		return CheckResult{}, fmt.Errorf("qemu-img check %s: decode output: %w", path, err)
	}
	res.ExitCode = code
	return res, nil
}

// Compare reports whether images a and b present the same guest-visible
// content (qemu-img compare, non-strict: an area past the end of the
// smaller image counts as equal when it reads as zeros). forceShare opens
// both without locks (-U). An error (exit code 2 or a failure to run)
// means no verdict.
func (t *Tool) Compare(ctx context.Context, a, b string, forceShare bool) (bool, error) {
	args := []string{"compare", "-q"}
	if forceShare {
		args = append(args, "-U")
	}
	args = append(args, imagePath(a), imagePath(b))
	_, err := t.run(ctx, args, nil)
	if err == nil {
		return true, nil
	}
	if c, ok := exitCode(err); ok && c == 1 && ctx.Err() == nil {
		return false, nil
	}
	return false, err
}

// decodeInfo reads `qemu-img info --output=json` (a list with
// --backing-chain, one object without).
func decodeInfo(out []byte, chain bool) ([]ImageInfo, error) {
	var infos []ImageInfo
	var err error
	if chain {
		err = json.Unmarshal(out, &infos)
	} else {
		var one ImageInfo
		err = json.Unmarshal(out, &one)
		infos = []ImageInfo{one}
	}
	if err != nil {
		return nil, fmt.Errorf("decode output: %w", err)
	}
	if len(infos) == 0 {
		return nil, fmt.Errorf("empty output")
	}
	return infos, nil
}

// ConvertRateLimit reports whether this qemu-img's convert takes a rate
// limit (-r, QEMU 5.2 and later): its help text lists the option in the
// convert synopsis. Older versions refuse the option, so callers leave it
// out and say so.
func (t *Tool) ConvertRateLimit(ctx context.Context) (bool, error) {
	out, err := t.run(ctx, []string{"--help"}, nil)
	if err != nil {
		return false, err
	}
	for line := range strings.SplitSeq(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == "convert" {
			return strings.Contains(line, "[-r rate_limit]"), nil
		}
	}
	return false, nil
}

// MapEntry is one range of `qemu-img map --output=json`: where the
// guest-visible bytes [Start, Start+Length) of an image live.
type MapEntry struct {
	Start  int64 `json:"start"`
	Length int64 `json:"length"`
	// Depth is the image of the chain that holds the range: 0 the named
	// image, 1 its backing file, and so on (Info's order with
	// BackingChain).
	Depth   int  `json:"depth"`
	Present bool `json:"present"`
	Zero    bool `json:"zero"`
	Data    bool `json:"data"`
	// Offset is where the range's bytes start in the file at Depth; nil
	// when they have no plain place there (compressed clusters, or no
	// data).
	Offset *int64 `json:"offset"`
}

// Map lists where the guest-visible bytes of the image at path (format
// given, "" to probe) live in its chain: sorted, contiguous ranges from 0
// to the virtual size.
func (t *Tool) Map(ctx context.Context, path, format string) ([]MapEntry, error) {
	args := []string{"map", "--output=json"}
	if format != "" {
		args = append(args, "-f", format)
	}
	out, err := t.run(ctx, append(args, imagePath(path)), nil)
	if err != nil {
		return nil, err
	}
	m, err := decodeMap(out)
	if err != nil {
		return nil, fmt.Errorf("qemu-img map %s: %w", path, err)
	}
	return m, nil
}

// decodeMap reads `qemu-img map --output=json` and checks that its ranges
// follow each other from 0 with sane depths and offsets.
func decodeMap(out []byte) ([]MapEntry, error) {
	var m []MapEntry
	if err := json.Unmarshal(out, &m); err != nil {
		return nil, fmt.Errorf("decode output: %w", err)
	}
	var next int64
	for _, e := range m {
		if e.Start != next || e.Length <= 0 || e.Start > math.MaxInt64-e.Length || e.Depth < 0 ||
			(e.Offset != nil && (*e.Offset < 0 || *e.Offset > math.MaxInt64-e.Length)) {
			return nil, fmt.Errorf("range %+v does not follow at %d", e, next)
		}
		next = e.Start + e.Length
	}
	return m, nil
}
