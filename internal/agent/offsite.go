package agent

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/zeebo/xxh3"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/fsatomic"
	"github.com/knib/knib/internal/offsite"
	"github.com/knib/knib/internal/offsite/s3"
	"github.com/knib/knib/internal/offsite/seal"
)

// Offsite copies: the host seals backup files and uploads them straight to
// the remote's bucket (offsite.put), and brings them back (offsite.get).
// A request carries the remote's secrets: they are never logged.

// SetBucketOpener replaces how the agent opens buckets (tests); the
// default is the S3 adapter.
func (a *Local) SetBucketOpener(open offsite.Opener) { a.openBucket = open }

// remote checks a request's storage root, opens its bucket and parses its
// key; every error is clean (nothing was done).
func (a *Local) remote(root string, r agentapi.Remote) (offsite.Bucket, seal.Key, error) {
	if err := CheckStorageRoot(root); err != nil {
		return nil, seal.Key{}, cleanError{err}
	}
	key, err := seal.ParseKey(r.Key)
	if err != nil {
		return nil, key, err
	}
	if err != nil {
		return nil, key, cleanError{err}
	}
	open := a.openBucket
	if open == nil {
		open = s3.Open
	}
	b, err := open(offsite.Config{Endpoint: r.Endpoint, Bucket: r.Bucket, Region: r.Region, AccessKey: r.AccessKey, SecretKey: r.SecretKey, BandwidthBps: r.BandwidthBps})
	if err != nil {
		return nil, key, cleanError{err}
	}
	return b, key, nil
}

// putItem is one file to upload.
type putItem struct {
	path, abs, key string
	salt           []byte
	hash           string
	size           int64
}

// offsitePut seals and uploads backup files (see agentapi.OffsitePutRequest).
func (a *Local) offsitePut(ctx context.Context, req agentapi.OffsitePutRequest, progress func(float64, string)) (any, error) {
	root := req.Storage
	b, key, err := a.remote(root, req.Remote)
	if err != nil {
		return nil, err
	}
	items, err := putItems(root, key, req)
	if err != nil {
		return nil, cleanError{err}
	}
	var total, done int64
	for _, it := range items {
		total += it.size
	}
	lock := offsite.Lock{Mode: offsite.LockMode(req.LockMode), Until: req.LockUntil}
	res := agentapi.OffsitePutResult{Objects: []agentapi.PutObjectResult{}}
	for _, it := range items {
		out, err := a.putOne(ctx, b, key, it, lock, func(n int64) {
			if total > 0 {
				progress(100*float64(done+n)/float64(total), "uploading "+it.path)
			}
		})
		if err != nil {
			return nil, err
		}
		done += it.size
		res.Objects = append(res.Objects, out)
	}
	return res, nil
}

// putItems checks every path and names the files to upload, the extras
// of a backup directory included, before anything is sent.
func putItems(root string, key seal.Key, req agentapi.OffsitePutRequest) ([]putItem, error) {
	var items []putItem
	named := map[string]bool{}
	add := func(rel, objKey, saltHex, hash string) error {
		abs, err := inStorage(root, rel)
		if err != nil {
			return err
		}
		if !strings.HasPrefix(objKey, "knib/") || strings.ContainsAny(objKey, "\x00\n") {
			return fmt.Errorf("object key %q is not a knib key", objKey)
		}
		salt, err := hex.DecodeString(saltHex)
		if err != nil || len(salt) != 32 {
			return fmt.Errorf("object %s: the salt must be 32 bytes in hex", objKey)
		}
		st, err := os.Stat(abs)
		if err != nil {
			return fmt.Errorf("backup file %s: %w", rel, err)
		}
		if !st.Mode().IsRegular() {
			return fmt.Errorf("backup file %s is not a regular file", rel)
		}
		named[filepath.Clean(rel)] = true
		items = append(items, putItem{path: rel, abs: abs, key: objKey, salt: salt, hash: hash, size: st.Size()})
		return nil
	}
	for _, o := range req.Objects {
		if err := add(o.Path, o.Key, o.Salt, o.Hash); err != nil {
			return nil, err
		}
	}
	if x := req.Extras; x.Dir != "" {
		dir, err := inStorage(root, x.Dir)
		if err != nil {
			return nil, err
		}
		var extras []string
		err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return err
			}
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			switch {
			case named[rel], strings.HasSuffix(rel, ".png"), strings.HasSuffix(rel, ".part"), strings.HasSuffix(rel, ".compressed"):
				return nil
			}
			extras = append(extras, rel)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("list backup directory %s: %w", x.Dir, err)
		}
		for _, rel := range extras {
			if err := add(rel, x.ObjectPrefix+key.ObjectName("object", x.Copy, rel), x.Salt, ""); err != nil {
				return nil, err
			}
		}
	}
	return items, nil
}

// putOne uploads one file unless the bucket has it already.
func (a *Local) putOne(ctx context.Context, b offsite.Bucket, key seal.Key, it putItem, lock offsite.Lock, progress offsite.Progress) (agentapi.PutObjectResult, error) {
	out := agentapi.PutObjectResult{Path: it.path, Key: it.key, PlainSize: it.size, Size: seal.SealedSize(it.size)}
	if it.hash != "" {
		// The recorded hash first: a file that changed is not sealed (its
		// salt must never seal other bytes under the same name).
		got, err := HashFile(it.abs)
		if err != nil {
			return out, err
		}
		if got != it.hash {
			return out, fmt.Errorf("backup file %s no longer matches its recorded hash (%s, recorded %s): not copied", it.path, got, it.hash)
		}
	}
	if info, err := b.Stat(ctx, it.key, ""); err == nil && info.Size == out.Size {
		out.VersionID, out.ETag = info.VersionID, info.ETag
		return out, nil
	} else if err != nil && !errors.Is(err, offsite.ErrNotFound) {
		return out, fmt.Errorf("object %s: %w", it.key, err)
	}
	f, err := os.Open(it.abs)
	if err != nil {
		return out, err
	}
	defer f.Close()
	view, err := seal.NewSealed(key, it.salt, it.key, f, it.size)
	if err != nil {
		return out, err
	}
	info, err := b.Put(ctx, it.key, view, out.Size, lock, progress)
	if err != nil {
		return out, fmt.Errorf("upload %s: %w", it.path, err)
	}
	out.VersionID, out.ETag, out.Sent = info.VersionID, info.ETag, out.Size
	a.log.Info("backup file copied offsite", "path", it.path, "key", it.key, "bytes", out.Size)
	return out, nil
}

// offsiteGet downloads and opens objects into backup files (see
// agentapi.OffsiteGetRequest).
func (a *Local) offsiteGet(ctx context.Context, req agentapi.OffsiteGetRequest, progress func(float64, string)) (any, error) {
	root := req.Storage
	b, key, err := a.remote(root, req.Remote)
	if err != nil {
		return nil, err
	}
	paths := make([]string, len(req.Objects))
	for i, o := range req.Objects {
		if paths[i], err = inStorage(root, o.Path); err != nil {
			return nil, cleanError{err}
		}
	}
	res := agentapi.OffsiteGetResult{Files: []agentapi.GotFile{}}
	for i, o := range req.Objects {
		progress(100*float64(i)/float64(len(req.Objects)), "fetching "+o.Path)
		got, err := a.getOne(ctx, b, key, o, paths[i])
		if err != nil {
			return nil, err
		}
		res.Files = append(res.Files, got)
	}
	return res, nil
}

// getOne brings one object back as the file at abs, unless the file is
// there with its hash already.
func (a *Local) getOne(ctx context.Context, b offsite.Bucket, key seal.Key, o agentapi.GetObject, abs string) (agentapi.GotFile, error) {
	got := agentapi.GotFile{Path: o.Path, Hash: o.Hash}
	if o.Hash != "" {
		if h, err := HashFile(abs); err == nil && h == o.Hash {
			if st, err := os.Stat(abs); err == nil {
				got.Size = st.Size()
			}
			return got, nil
		}
	}
	if err := a.perm.MkdirAll(filepath.Dir(abs)); err != nil {
		return got, err
	}
	rc, err := b.Get(ctx, o.Key, o.VersionID)
	if err != nil {
		return got, fmt.Errorf("object %s (%s): %w", o.Key, o.Path, err)
	}
	defer rc.Close()
	var n int64
	err = writePart(abs, a.perm, func(w io.Writer) error {
		h := xxh3.New()
		var err error
		if n, err = io.Copy(io.MultiWriter(w, h), seal.NewOpener(rc, key, o.Key)); err != nil {
			return err
		}
		got.Hash = hashText(h)
		if o.Hash != "" && got.Hash != o.Hash {
			return fmt.Errorf("%w: it opens, but its content hashes to %s, recorded %s", seal.ErrTampered, got.Hash, o.Hash)
		}
		return nil
	})
	if errors.Is(err, seal.ErrTampered) {
		return got, fmt.Errorf("object %s (for %s) is damaged or was tampered with; nothing was written: %w", o.Key, o.Path, err)
	}
	if err != nil {
		return got, fmt.Errorf("fetch %s: %w", o.Path, err)
	}
	if err := fsatomic.SyncDir(filepath.Dir(abs)); err != nil {
		return got, err
	}
	got.Size, got.Downloaded = n, true
	a.log.Info("backup file fetched from offsite", "path", o.Path, "key", o.Key, "bytes", n)
	return got, nil
}
