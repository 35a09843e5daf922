package offsitetest

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/knib/knib/internal/clock"
	"github.com/knib/knib/internal/offsite"
)

// Mem is an in-memory offsite.Bucket that keeps the contract: versions,
// locks that refuse deletion, delete markers, resumable multipart puts (in
// parts of PartSize; FailAfterParts makes a Put fail after that many parts
// were stored, as a crash would). It is for unit tests of the callers;
// the real adapter passes the same conformance suite against a real
// server.
type Mem struct {
	// Now is the clock locks are checked against (default the real clock).
	Now func() time.Time
	// PartSize is the multipart part size (default 1 MiB).
	PartSize int64
	// FailAfterParts, when > 0, fails the next Put after that many new
	// parts were stored (then resets to 0).
	FailAfterParts int
	// NoLock makes the bucket one without Object Lock; IgnoreLocks one
	// that accepts locks and does not enforce them (an unsafe server).
	NoLock, IgnoreLocks bool

	mu       sync.Mutex
	objects  map[string][]*memVersion // oldest first
	uploads  map[string]map[int][]byte
	seq      int
	PartsPut int // parts stored by every Put (resumed parts are not counted)
}

type memVersion struct {
	id     string
	data   []byte
	lock   offsite.Lock
	marker bool
	mod    time.Time
}

var _ offsite.Bucket = (*Mem)(nil)

func (m *Mem) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return clock.Real{}.Now()
}

func (m *Mem) init() {
	if m.objects == nil {
		m.objects, m.uploads = map[string][]*memVersion{}, map[string]map[int][]byte{}
	}
}

func (m *Mem) info(key string, v *memVersion) offsite.ObjectInfo {
	sum := md5.Sum(v.data)
	return offsite.ObjectInfo{Key: key, VersionID: v.id, Size: int64(len(v.data)), ETag: hex.EncodeToString(sum[:]), Modified: v.mod, Lock: v.lock}
}

// Put implements offsite.Bucket.
func (m *Mem) Put(ctx context.Context, key string, src io.ReaderAt, size int64, lock offsite.Lock, progress offsite.Progress) (offsite.ObjectInfo, error) {
	m.mu.Lock()
	m.init()
	if (m.NoLock) && !lock.Until.IsZero() {
		m.mu.Unlock()
		return offsite.ObjectInfo{}, fmt.Errorf("put %s: the bucket has no object lock: %w", key, offsite.ErrDenied)
	}
	part := m.PartSize
	if part <= 0 {
		part = 1 << 20
	}
	parts := m.uploads[key]
	if parts == nil {
		parts = map[int][]byte{}
		m.uploads[key] = parts
	}
	m.mu.Unlock()
	data := make([]byte, 0, size)
	for i, off := 0, int64(0); off < size || (size == 0 && i == 0); i, off = i+1, off+part {
		n := min(part, size-off)
		buf := make([]byte, n)
		if got, err := src.ReadAt(buf, off); int64(got) < n {
			return offsite.ObjectInfo{}, fmt.Errorf("put %s: read: %w", key, err)
		}
		m.mu.Lock()
		have, ok := parts[i]
		if !ok || !bytes.Equal(have, buf) {
			if m.FailAfterParts > 0 && m.PartsPut >= m.FailAfterParts {
				m.FailAfterParts = 0
				m.mu.Unlock()
				return offsite.ObjectInfo{}, fmt.Errorf("put %s: connection reset (test)", key)
			}
			parts[i] = buf
			m.PartsPut++
		}
		m.mu.Unlock()
		data = append(data, buf...)
		if progress != nil {
			progress(off + n)
		}
		if size == 0 {
			break
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.uploads, key)
	m.seq++
	v := &memVersion{id: "v" + strconv.Itoa(m.seq), data: data, lock: lock, mod: m.now()}
	m.objects[key] = append(m.objects[key], v)
	return m.info(key, v), nil
}

// version finds a version (the current one for ""). Callers hold m.mu.
func (m *Mem) version(key, id string) (*memVersion, error) {
	m.init()
	vs := m.objects[key]
	if id == "" {
		if len(vs) == 0 || vs[len(vs)-1].marker {
			return nil, fmt.Errorf("object %s: %w", key, offsite.ErrNotFound)
		}
		return vs[len(vs)-1], nil
	}
	for _, v := range vs {
		if v.id == id && !v.marker {
			return v, nil
		}
	}
	return nil, fmt.Errorf("object %s version %s: %w", key, id, offsite.ErrNotFound)
}

// Get implements offsite.Bucket.
func (m *Mem) Get(ctx context.Context, key, versionID string) (io.ReadCloser, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, err := m.version(key, versionID)
	if err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(bytes.Clone(v.data))), nil
}

// Stat implements offsite.Bucket.
func (m *Mem) Stat(ctx context.Context, key, versionID string) (offsite.ObjectInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, err := m.version(key, versionID)
	if err != nil {
		return offsite.ObjectInfo{}, err
	}
	return m.info(key, v), nil
}

// List implements offsite.Bucket.
func (m *Mem) List(ctx context.Context, prefix string, withHidden bool) ([]offsite.ObjectInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.init()
	var out []offsite.ObjectInfo
	for key, vs := range m.objects {
		if !strings.HasPrefix(key, prefix) || len(vs) == 0 {
			continue
		}
		for i := len(vs) - 1; i >= 0; i-- {
			if !vs[i].marker {
				out = append(out, m.info(key, vs[i]))
				break
			}
			if !withHidden {
				break
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// Delete implements offsite.Bucket.
func (m *Mem) Delete(ctx context.Context, key, versionID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.init()
	vs := m.objects[key]
	now := m.now()
	var keep []*memVersion
	found := false
	for _, v := range vs {
		if versionID != "" && v.id != versionID {
			keep = append(keep, v)
			continue
		}
		found = true
		if v.lock.Locked(now) && !m.IgnoreLocks {
			return fmt.Errorf("delete %s version %s: %w", key, v.id, offsite.ErrLocked)
		}
	}
	if !found {
		return fmt.Errorf("object %s version %s: %w", key, versionID, offsite.ErrNotFound)
	}
	if len(keep) == 0 {
		delete(m.objects, key)
	} else {
		m.objects[key] = keep
	}
	return nil
}

// Hide puts a delete marker on a key, as a plain DELETE without a version
// does on a versioned bucket (what an attacker with the credentials can do).
func (m *Mem) Hide(key string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.init()
	m.seq++
	m.objects[key] = append(m.objects[key], &memVersion{id: "v" + strconv.Itoa(m.seq), marker: true, mod: m.now()})
}

// Corrupt flips one byte of an object's current version at offset off.
func (m *Mem) Corrupt(key string, off int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if v, err := m.version(key, ""); err == nil && off < len(v.data) {
		v.data[off] ^= 0x01
	}
}

// ExtendLock implements offsite.Bucket.
func (m *Mem) ExtendLock(ctx context.Context, key, versionID string, lock offsite.Lock) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, err := m.version(key, versionID)
	if err != nil {
		return err
	}
	if m.NoLock {
		return fmt.Errorf("extend lock of %s: the bucket has no object lock: %w", key, offsite.ErrDenied)
	}
	if lock.Until.After(v.lock.Until) {
		v.lock = lock
	}
	return nil
}

// LockEnabled implements offsite.Bucket.
func (m *Mem) LockEnabled(ctx context.Context) (bool, error) { return !m.NoLock, nil }
