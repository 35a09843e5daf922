// Package s3 implements offsite.Bucket on an S3-compatible server with
// github.com/minio/minio-go/v7: resumable multipart uploads (parts already
// on the server with the same MD5 are not sent again), Object Lock
// retention, versions, and a bandwidth limit per handle.
package s3

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/knib/knib/internal/offsite"
)

// DefaultPartSize is the multipart part size.
const DefaultPartSize = 16 << 20

// Options tune a handle (tests use small parts).
type Options struct {
	PartSize int64 // default DefaultPartSize
	// Parallel is the number of parts in flight (default 2: one sealed
	// while another is sent).
	Parallel int
	// MD5Parts sends every part with Content-MD5 (servers that demand it).
	MD5Parts bool
}

type bucket struct {
	c        *minio.Client
	core     minio.Core
	name     string
	part     int64
	par      int
	md5Parts bool
	limiter  *limiter
}

// Open returns a Bucket for cfg.
func Open(cfg offsite.Config) (offsite.Bucket, error) { return OpenWith(cfg, Options{}) }

// OpenWith returns a Bucket for cfg with options.
func OpenWith(cfg offsite.Config, o Options) (offsite.Bucket, error) {
	u, err := url.Parse(cfg.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("s3 endpoint %q: want http(s)://host:port", cfg.Endpoint)
	}
	c, err := minio.New(u.Host, &minio.Options{
		Creds:  credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure: u.Scheme == "https",
		Region: cfg.Region,
	})
	if err != nil {
		return nil, fmt.Errorf("s3 client: %w", err)
	}
	b := &bucket{c: c, core: minio.Core{Client: c}, name: cfg.Bucket, part: o.PartSize, par: o.Parallel, md5Parts: o.MD5Parts}
	if b.part <= 0 {
		b.part = DefaultPartSize
	}
	if b.par <= 0 {
		b.par = 2
	}
	if cfg.BandwidthBps > 0 {
		b.limiter = &limiter{bps: cfg.BandwidthBps}
	}
	return b, nil
}

// wrap maps a server error to the port's errors, keeping its message.
func wrap(op, key string, err error) error {
	if err == nil {
		return nil
	}
	resp := minio.ToErrorResponse(err)
	msg := resp.Message
	if msg == "" {
		msg = err.Error()
	}
	switch {
	case resp.Code == "NoSuchKey" || resp.Code == "NoSuchVersion" || resp.Code == "NoSuchBucket" || resp.StatusCode == http.StatusNotFound:
		return fmt.Errorf("%s %s: %s: %w", op, key, msg, offsite.ErrNotFound)
	case strings.Contains(strings.ToLower(msg), "object lock") || strings.Contains(strings.ToLower(msg), "retention") && resp.Code == "AccessDenied":
		return fmt.Errorf("%s %s: %s: %w", op, key, msg, offsite.ErrLocked)
	case resp.Code == "AccessDenied" || resp.StatusCode == http.StatusForbidden:
		return fmt.Errorf("%s %s: %s: %w", op, key, msg, offsite.ErrDenied)
	}
	return fmt.Errorf("%s %s: %w", op, key, err)
}

func putOptions(lock offsite.Lock) minio.PutObjectOptions {
	o := minio.PutObjectOptions{SendContentMd5: true, DisableContentSha256: true, DisableMultipart: true}
	if !lock.Until.IsZero() {
		o.Mode = minio.RetentionMode(lock.Mode)
		o.RetainUntilDate = lock.Until.UTC()
	}
	return o
}

// Put implements offsite.Bucket.
func (b *bucket) Put(ctx context.Context, key string, src io.ReaderAt, size int64, lock offsite.Lock, progress offsite.Progress) (offsite.ObjectInfo, error) {
	if size <= b.part {
		buf := make([]byte, size)
		if n, err := src.ReadAt(buf, 0); int64(n) < size {
			return offsite.ObjectInfo{}, fmt.Errorf("put %s: read: %w", key, orEOF(err))
		}
		info, err := b.c.PutObject(ctx, b.name, key, b.limited(ctx, bytes.NewReader(buf)), size, putOptions(lock))
		if err != nil {
			return offsite.ObjectInfo{}, wrap("put", key, err)
		}
		if progress != nil {
			progress(size)
		}
		return offsite.ObjectInfo{Key: key, VersionID: info.VersionID, Size: size, ETag: strings.Trim(info.ETag, `"`), Lock: lock}, nil
	}
	return b.putMultipart(ctx, key, src, size, lock, progress)
}

func orEOF(err error) error {
	if err == nil || errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// resume finds the unfinished upload of key to continue (aborting any
// other) and the parts it has.
func (b *bucket) resume(ctx context.Context, key string) (string, map[int]minio.ObjectPart, error) {
	res, err := b.core.ListMultipartUploads(ctx, b.name, key, "", "", "", 1000)
	if err != nil {
		return "", nil, wrap("list uploads of", key, err)
	}
	var ours []minio.ObjectMultipartInfo
	for _, u := range res.Uploads {
		if u.Key == key {
			ours = append(ours, u)
		}
	}
	if len(ours) == 0 {
		return "", nil, nil
	}
	sort.Slice(ours, func(i, j int) bool { return ours[i].Initiated.After(ours[j].Initiated) })
	for _, u := range ours[1:] {
		if err := b.core.AbortMultipartUpload(ctx, b.name, key, u.UploadID); err != nil {
			return "", nil, wrap("abort an older upload of", key, err)
		}
	}
	parts := map[int]minio.ObjectPart{}
	marker := 0
	for {
		lp, err := b.core.ListObjectParts(ctx, b.name, key, ours[0].UploadID, marker, 1000)
		if err != nil {
			return "", nil, wrap("list parts of", key, err)
		}
		for _, p := range lp.ObjectParts {
			parts[p.PartNumber] = p
		}
		if !lp.IsTruncated || lp.NextPartNumberMarker <= marker {
			break
		}
		marker = lp.NextPartNumberMarker
	}
	return ours[0].UploadID, parts, nil
}

// putMultipart uploads in parts, resuming an unfinished upload of key.
func (b *bucket) putMultipart(ctx context.Context, key string, src io.ReaderAt, size int64, lock offsite.Lock, progress offsite.Progress) (offsite.ObjectInfo, error) {
	id, have, err := b.resume(ctx, key)
	if err != nil {
		return offsite.ObjectInfo{}, err
	}
	if id == "" {
		o := putOptions(lock)
		o.DisableMultipart = false
		if id, err = b.core.NewMultipartUpload(ctx, b.name, key, o); err != nil {
			return offsite.ObjectInfo{}, wrap("start the upload of", key, err)
		}
	}
	n := int((size + b.part - 1) / b.part)
	done := make([]minio.CompletePart, n)
	var mu sync.Mutex
	var sent int64
	jobs := make(chan int)
	errs := make(chan error, b.par)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for range b.par {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, b.part)
			for i := range jobs {
				off := int64(i) * b.part
				ln := min(b.part, size-off)
				if m, err := src.ReadAt(buf[:ln], off); int64(m) < ln {
					errs <- fmt.Errorf("put %s: read: %w", key, orEOF(err))
					cancel()
					return
				}
				part, err := b.putPart(ctx, key, id, i+1, buf[:ln], have)
				if err != nil {
					errs <- err
					cancel()
					return
				}
				done[i] = part
				mu.Lock()
				sent += ln
				if progress != nil {
					progress(sent)
				}
				mu.Unlock()
			}
		}()
	}
feed:
	for i := range n {
		select {
		case jobs <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	select {
	case err := <-errs:
		return offsite.ObjectInfo{}, err
	default:
	}
	if err := ctx.Err(); err != nil {
		return offsite.ObjectInfo{}, err
	}
	info, err := b.core.CompleteMultipartUpload(ctx, b.name, key, id, done, minio.PutObjectOptions{})
	if err != nil {
		return offsite.ObjectInfo{}, wrap("complete the upload of", key, err)
	}
	return offsite.ObjectInfo{Key: key, VersionID: info.VersionID, Size: size, ETag: strings.Trim(info.ETag, `"`), Lock: lock}, nil
}

// putPart sends one part unless the unfinished upload has it already: a
// part on the server is kept when its MD5 (its ETag) is that of the bytes
// src holds for it. A new part goes without Content-MD5 unless MD5Parts:
// its bytes are sealed, and a restore authenticates every chunk end to end.
func (b *bucket) putPart(ctx context.Context, key, id string, n int, data []byte, have map[int]minio.ObjectPart) (minio.CompletePart, error) {
	opts := minio.PutObjectPartOptions{DisableContentSha256: true}
	if p, ok := have[n]; ok || b.md5Parts {
		sum := md5.Sum(data)
		if ok && p.Size == int64(len(data)) && strings.Trim(p.ETag, `"`) == hex.EncodeToString(sum[:]) {
			return minio.CompletePart{PartNumber: n, ETag: p.ETag}, nil
		}
		opts.Md5Base64 = base64.StdEncoding.EncodeToString(sum[:])
	}
	p, err := b.core.PutObjectPart(ctx, b.name, key, id, n, b.limited(ctx, bytes.NewReader(data)), int64(len(data)), opts)
	if err != nil {
		return minio.CompletePart{}, wrap("upload a part of", key, err)
	}
	return minio.CompletePart{PartNumber: n, ETag: p.ETag}, nil
}

// Get implements offsite.Bucket.
func (b *bucket) Get(ctx context.Context, key, versionID string) (io.ReadCloser, error) {
	if _, err := b.Stat(ctx, key, versionID); err != nil {
		return nil, err
	}
	obj, err := b.c.GetObject(ctx, b.name, key, minio.GetObjectOptions{VersionID: versionID})
	if err != nil {
		return nil, wrap("get", key, err)
	}
	return &readCloser{Reader: b.limited(ctx, obj), Closer: obj, key: key}, nil
}

// readCloser maps read errors too.
type readCloser struct {
	io.Reader
	io.Closer
	key string
}

func (r *readCloser) Read(p []byte) (int, error) {
	n, err := r.Reader.Read(p)
	if err != nil && err != io.EOF {
		err = wrap("read", r.key, err)
	}
	return n, err
}

// lockOf reads an object's retention from its headers.
func lockOf(h http.Header) offsite.Lock {
	var l offsite.Lock
	if m := h.Get("X-Amz-Object-Lock-Mode"); m != "" {
		l.Mode = offsite.LockMode(strings.ToUpper(m))
	}
	if d := h.Get("X-Amz-Object-Lock-Retain-Until-Date"); d != "" {
		if t, err := time.Parse(time.RFC3339, d); err == nil {
			l.Until = t
		}
	}
	return l
}

// Stat implements offsite.Bucket.
func (b *bucket) Stat(ctx context.Context, key, versionID string) (offsite.ObjectInfo, error) {
	info, err := b.c.StatObject(ctx, b.name, key, minio.StatObjectOptions{VersionID: versionID})
	if err != nil {
		return offsite.ObjectInfo{}, wrap("stat", key, err)
	}
	if info.IsDeleteMarker {
		return offsite.ObjectInfo{}, fmt.Errorf("stat %s: a delete marker: %w", key, offsite.ErrNotFound)
	}
	return offsite.ObjectInfo{Key: key, VersionID: info.VersionID, Size: info.Size, ETag: strings.Trim(info.ETag, `"`), Modified: info.LastModified, Lock: lockOf(info.Metadata)}, nil
}

// List implements offsite.Bucket.
func (b *bucket) List(ctx context.Context, prefix string, withHidden bool) ([]offsite.ObjectInfo, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	latest := map[string]minio.ObjectInfo{}  // newest version per key
	visible := map[string]minio.ObjectInfo{} // newest version that is not a marker
	for o := range b.c.ListObjects(ctx, b.name, minio.ListObjectsOptions{Prefix: prefix, Recursive: true, WithVersions: true}) {
		if o.Err != nil {
			return nil, wrap("list", prefix, o.Err)
		}
		if cur, ok := latest[o.Key]; !ok || o.IsLatest || (!cur.IsLatest && o.LastModified.After(cur.LastModified)) {
			latest[o.Key] = o
		}
		if o.IsDeleteMarker {
			continue
		}
		if cur, ok := visible[o.Key]; !ok || o.IsLatest || (!cur.IsLatest && o.LastModified.After(cur.LastModified)) {
			visible[o.Key] = o
		}
	}
	var out []offsite.ObjectInfo
	for key, o := range visible {
		if l := latest[key]; l.IsDeleteMarker && !withHidden {
			continue
		}
		out = append(out, offsite.ObjectInfo{Key: key, VersionID: o.VersionID, Size: o.Size, ETag: strings.Trim(o.ETag, `"`), Modified: o.LastModified})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// Delete implements offsite.Bucket.
func (b *bucket) Delete(ctx context.Context, key, versionID string) error {
	if versionID != "" {
		return wrap("delete", key, b.c.RemoveObject(ctx, b.name, key, minio.RemoveObjectOptions{VersionID: versionID}))
	}
	var versions []string
	for o := range b.c.ListObjects(ctx, b.name, minio.ListObjectsOptions{Prefix: key, Recursive: true, WithVersions: true}) {
		if o.Err != nil {
			return wrap("list versions of", key, o.Err)
		}
		if o.Key == key {
			versions = append(versions, o.VersionID)
		}
	}
	if len(versions) == 0 {
		return fmt.Errorf("delete %s: %w", key, offsite.ErrNotFound)
	}
	for _, v := range versions {
		if err := b.c.RemoveObject(ctx, b.name, key, minio.RemoveObjectOptions{VersionID: v}); err != nil {
			return wrap("delete", key, err)
		}
	}
	return nil
}

// ExtendLock implements offsite.Bucket.
func (b *bucket) ExtendLock(ctx context.Context, key, versionID string, lock offsite.Lock) error {
	cur, err := b.Stat(ctx, key, versionID)
	if err != nil {
		return err
	}
	if !lock.Until.After(cur.Lock.Until) {
		return nil
	}
	mode := minio.RetentionMode(lock.Mode)
	until := lock.Until.UTC()
	return wrap("extend the lock of", key, b.c.PutObjectRetention(ctx, b.name, key, minio.PutObjectRetentionOptions{Mode: &mode, RetainUntilDate: &until, VersionID: cur.VersionID}))
}

// LockEnabled implements offsite.Bucket.
func (b *bucket) LockEnabled(ctx context.Context) (bool, error) {
	state, _, _, _, err := b.c.GetObjectLockConfig(ctx, b.name)
	if err != nil {
		resp := minio.ToErrorResponse(err)
		if resp.Code == "ObjectLockConfigurationNotFoundError" || strings.Contains(resp.Code, "ObjectLockConfiguration") {
			return false, nil
		}
		return false, wrap("read the lock configuration of", b.name, err)
	}
	return state == "Enabled", nil
}

// limited wraps r in the handle's bandwidth limit.
func (b *bucket) limited(ctx context.Context, r io.Reader) io.Reader {
	if b.limiter == nil {
		return r
	}
	return &limitedReader{ctx: ctx, r: r, l: b.limiter}
}
