package seal

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
)

// ChunkSize is the plaintext bytes of every chunk but the last.
const ChunkSize = 1 << 20

// maxChunkSize bounds the chunk size a header may announce.
const maxChunkSize = 16 << 20

const (
	magic      = "KNIBSEAL"
	version    = 1
	saltLen    = 32
	tagLen     = 16
	headerLen  = len(magic) + 4 + 4 + saltLen // magic, version + 3 reserved, chunk size, salt
	keyText    = "knib-remote-key-v1:"
	labelName  = "knib-seal-v1 names"
	labelCheck = "knib-seal-v1 check"
	labelObj   = "knib-seal-v1 object "
)

// ErrTampered: the sealed bytes are not what was sealed under this key and
// name (changed, truncated, extended, reordered, moved, or another key).
var ErrTampered = errors.New("sealed object is damaged or was tampered with")

// Key is a remote's 32-byte secret.
type Key [32]byte

// NewKey draws a key from crypto/rand.
func NewKey() (Key, error) {
	var k Key
	_, err := rand.Read(k[:])
	return k, err
}

// ParseKey reads a key's text form.
func ParseKey(s string) (Key, error) {
	var k Key
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, keyText) {
		return k, fmt.Errorf("not a knib remote key: want the prefix %q", keyText)
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(s, keyText))
	if err != nil {
		return k, fmt.Errorf("remote key: %w", err)
	}
	if len(raw) != len(k) {
		return k, fmt.Errorf("remote key: %d bytes, want %d", len(raw), len(k))
	}
	copy(k[:], raw)
	return k, nil
}

// String is the key's text form.
func (k Key) String() string { return keyText + base64.RawURLEncoding.EncodeToString(k[:]) }

// derive returns a 32-byte key derived from k for a purpose.
func (k Key) derive(salt []byte, info string) []byte {
	out, err := hkdf.Key(sha256.New, k[:], salt, info, 32)
	if err != nil {
		panic("seal: hkdf: " + err.Error()) // only for lengths out of range
	}
	return out
}

// ObjectName is the hex HMAC-SHA256, under the key's names key, of parts
// joined by a 0 byte.
func (k Key) ObjectName(parts ...string) string {
	m := hmac.New(sha256.New, k.derive(nil, labelName))
	m.Write([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(m.Sum(nil))
}

// Check is the key's check value: equal for equal keys, revealing nothing
// of the key.
func (k Key) Check() string {
	m := hmac.New(sha256.New, k.derive(nil, labelCheck))
	m.Write([]byte("check"))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// NewSalt draws an object salt.
func NewSalt() ([]byte, error) {
	s := make([]byte, saltLen)
	_, err := rand.Read(s)
	return s, err
}

// SealedSize is the size of the sealed form of plain bytes.
func SealedSize(plain int64) int64 {
	return int64(headerLen) + plain + chunks(plain, ChunkSize)*tagLen
}

// chunks is the number of chunks of plain bytes (at least one).
func chunks(plain int64, size int) int64 {
	n := (plain + int64(size) - 1) / int64(size)
	return max(n, 1)
}

// header builds an object's header.
func header(salt []byte, chunk int) []byte {
	h := make([]byte, headerLen)
	copy(h, magic)
	h[len(magic)] = version
	binary.BigEndian.PutUint32(h[len(magic)+4:], uint32(chunk))
	copy(h[len(magic)+8:], salt)
	return h
}

// nonce is a chunk's GCM nonce: the last-chunk flag, then the index.
func nonce(dst *[12]byte, index int64, last bool) []byte {
	*dst = [12]byte{}
	if last {
		dst[0] = 1
	}
	binary.BigEndian.PutUint64(dst[4:], uint64(index))
	return dst[:]
}

// aead returns the object's cipher and additional data.
func aead(k Key, salt []byte, name string, hdr []byte) (cipher.AEAD, []byte, error) {
	block, err := aes.NewCipher(k.derive(salt, labelObj+name))
	if err != nil {
		return nil, nil, err
	}
	g, err := cipher.NewGCM(block)
	if err != nil {
		return nil, nil, err
	}
	return g, append(append([]byte(nil), hdr...), name...), nil
}

// sealed is the sealed view of a plaintext: random access, deterministic.
type sealed struct {
	src   io.ReaderAt
	size  int64 // plaintext bytes
	total int64 // sealed bytes
	n     int64 // chunks
	hdr   []byte
	aad   []byte
	g     cipher.AEAD

	mu    sync.Mutex
	index int64 // chunk in buf, -1 when none
	buf   []byte
}

// NewSealed returns the sealed object of the size bytes of src, sealed
// under k with salt (32 bytes) for the object called name. Reads are
// deterministic for (k, salt, name, content), so any range can be sealed
// again identically; it is safe for concurrent use.
func NewSealed(k Key, salt []byte, name string, src io.ReaderAt, size int64) (io.ReaderAt, error) {
	if len(salt) != saltLen {
		return nil, fmt.Errorf("seal: salt of %d bytes, want %d", len(salt), saltLen)
	}
	if size < 0 {
		return nil, fmt.Errorf("seal: negative size")
	}
	hdr := header(salt, ChunkSize)
	g, aad, err := aead(k, salt, name, hdr)
	if err != nil {
		return nil, err
	}
	return &sealed{src: src, size: size, total: SealedSize(size), n: chunks(size, ChunkSize), hdr: hdr, aad: aad, g: g, index: -1}, nil
}

// chunkPlain is the plaintext length of chunk i.
func (s *sealed) chunkPlain(i int64) int {
	return int(min(int64(ChunkSize), s.size-i*ChunkSize))
}

// sealInto seals chunk i into dst (len = its plaintext + tag), reading its
// plaintext into dst first (sealed in place).
func (s *sealed) sealInto(dst []byte, i int64) error {
	plain := s.chunkPlain(i)
	if plain > 0 {
		m, err := s.src.ReadAt(dst[:plain], i*ChunkSize)
		if m < plain {
			if err == nil || errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("seal: read: %w", err)
		}
	}
	var nb [12]byte
	s.g.Seal(dst[:0], nonce(&nb, i, i == s.n-1), dst[:plain], s.aad)
	return nil
}

// ReadAt implements io.ReaderAt over the sealed bytes.
func (s *sealed) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("seal: negative offset")
	}
	n := 0
	for n < len(p) && off < s.total {
		if off < int64(headerLen) {
			c := copy(p[n:], s.hdr[off:])
			n, off = n+c, off+int64(c)
			continue
		}
		rel := off - int64(headerLen)
		i, in := rel/(ChunkSize+tagLen), int(rel%(ChunkSize+tagLen))
		clen := s.chunkPlain(i) + tagLen
		if in == 0 && len(p)-n >= clen {
			// A whole chunk: sealed in place in the caller's buffer.
			if err := s.sealInto(p[n:n+clen], i); err != nil {
				return n, err
			}
			n, off = n+clen, off+int64(clen)
			continue
		}
		c, err := s.partial(p[n:], i, in, clen)
		if err != nil {
			return n, err
		}
		n, off = n+c, off+int64(c)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// partial copies part of chunk i (from byte in) through the chunk cache.
func (s *sealed) partial(p []byte, i int64, in, clen int) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.index != i {
		if cap(s.buf) < clen {
			s.buf = make([]byte, ChunkSize+tagLen)
		}
		s.index = -1
		if err := s.sealInto(s.buf[:clen], i); err != nil {
			return 0, err
		}
		s.index = i
	}
	return copy(p, s.buf[in:clen]), nil
}

// opener streams the plaintext of a sealed object.
type opener struct {
	r     *bufio.Reader
	k     Key
	name  string
	g     cipher.AEAD
	aad   []byte
	chunk int
	index int64
	buf   []byte
	out   []byte // plaintext not yet returned
	done  bool   // the last chunk was opened
	err   error
}

// NewOpener returns the plaintext of the sealed object read from r, sealed
// under k for the object called name. Read fails with an error wrapping
// ErrTampered on any change, truncation, extension or reordering, and
// never returns bytes that did not authenticate.
func NewOpener(r io.Reader, k Key, name string) io.Reader {
	return &opener{r: bufio.NewReaderSize(r, 256<<10), k: k, name: name}
}

func tampered(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrTampered}, args...)...)
}

func (o *opener) start() error {
	hdr := make([]byte, headerLen)
	if _, err := io.ReadFull(o.r, hdr); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return tampered("shorter than its header")
		}
		return err
	}
	if string(hdr[:len(magic)]) != magic || hdr[len(magic)] != version || !bytes.Equal(hdr[len(magic)+1:len(magic)+4], []byte{0, 0, 0}) {
		return tampered("not a knib sealed object of version %d", version)
	}
	o.chunk = int(binary.BigEndian.Uint32(hdr[len(magic)+4:]))
	if o.chunk < 1 || o.chunk > maxChunkSize {
		return tampered("chunk size %d out of range", o.chunk)
	}
	salt := hdr[len(magic)+8:]
	g, aad, err := aead(o.k, salt, o.name, hdr)
	if err != nil {
		return err
	}
	o.g, o.aad, o.buf = g, aad, make([]byte, o.chunk+tagLen)
	return nil
}

// next opens the next chunk into o.out.
func (o *opener) next() error {
	n, err := io.ReadFull(o.r, o.buf)
	switch {
	case errors.Is(err, io.EOF):
		return tampered("truncated after chunk %d", o.index)
	case errors.Is(err, io.ErrUnexpectedEOF):
		// A short chunk is the last one.
	case err != nil:
		return err
	}
	if n < tagLen {
		return tampered("truncated in chunk %d", o.index)
	}
	last := n < len(o.buf)
	if !last {
		if _, perr := o.r.Peek(1); errors.Is(perr, io.EOF) {
			last = true
		} else if perr != nil {
			return perr
		}
	}
	var nb [12]byte
	plain, err := o.g.Open(o.buf[:0], nonce(&nb, o.index, last), o.buf[:n], o.aad)
	if err != nil {
		return tampered("chunk %d does not authenticate", o.index)
	}
	o.out, o.index, o.done = plain, o.index+1, last
	return nil
}

// Read implements io.Reader.
func (o *opener) Read(p []byte) (int, error) {
	if o.err != nil {
		return 0, o.err
	}
	if o.g == nil {
		if o.err = o.start(); o.err != nil {
			return 0, o.err
		}
	}
	for len(o.out) == 0 {
		if o.done {
			return 0, io.EOF
		}
		if o.err = o.next(); o.err != nil {
			return 0, o.err
		}
	}
	n := copy(p, o.out)
	o.out = o.out[n:]
	return n, nil
}

// Seal seals a small plaintext (a manifest) at once.
func Seal(k Key, salt []byte, name string, plain []byte) ([]byte, error) {
	s, err := NewSealed(k, salt, name, bytes.NewReader(plain), int64(len(plain)))
	if err != nil {
		return nil, err
	}
	out := make([]byte, SealedSize(int64(len(plain))))
	if _, err := s.ReadAt(out, 0); err != nil {
		return nil, err
	}
	return out, nil
}

// Open opens a small sealed object at once.
func Open(k Key, name string, sealed []byte) ([]byte, error) {
	return io.ReadAll(NewOpener(bytes.NewReader(sealed), k, name))
}
