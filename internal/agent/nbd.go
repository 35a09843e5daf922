package agent

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/knib/knib/internal/clock"
)

// nbdConn is one client connection to an NBD server (fixed newstyle
// handshake, the default export, reads only, one request at a time).
type nbdConn struct {
	mu   sync.Mutex
	c    net.Conn
	size int64
	seq  uint64
}

const (
	nbdMagic        = 0x4e42444d41474943 // "NBDMAGIC"
	nbdOptMagic     = 0x49484156454f5054 // "IHAVEOPT"
	nbdFixedNew     = 1 << 0
	nbdNoZeroes     = 1 << 1
	nbdOptExport    = 1
	nbdRequestMagic = 0x25609513
	nbdReplyMagic   = 0x67446698
	nbdCmdRead      = 0
	nbdCmdDisc      = 2
	nbdMaxRead      = 32 << 20
)

func dialNBD(path, export string, timeout time.Duration) (*nbdConn, error) {
	c, err := net.DialTimeout("unix", path, timeout)
	if err != nil {
		return nil, err
	}
	n := &nbdConn{c: c}
	if err := n.handshake(export, timeout); err != nil {
		c.Close()
		return nil, fmt.Errorf("nbd handshake: %w", err)
	}
	return n, nil
}

func (n *nbdConn) handshake(export string, timeout time.Duration) error {
	n.c.SetDeadline(clock.Real{}.Now().Add(timeout))
	defer n.c.SetDeadline(time.Time{})
	var hello struct {
		Magic, Opt uint64
		Flags      uint16
	}
	if err := binary.Read(n.c, binary.BigEndian, &hello); err != nil {
		return err
	}
	if hello.Magic != nbdMagic || hello.Opt != nbdOptMagic || hello.Flags&nbdFixedNew == 0 {
		return errors.New("not a fixed-newstyle NBD server")
	}
	flags := uint32(nbdFixedNew) | uint32(hello.Flags&nbdNoZeroes)
	var req bytes.Buffer
	binary.Write(&req, binary.BigEndian, flags)
	binary.Write(&req, binary.BigEndian, uint64(nbdOptMagic))
	binary.Write(&req, binary.BigEndian, uint32(nbdOptExport))
	binary.Write(&req, binary.BigEndian, uint32(len(export)))
	req.WriteString(export)
	if _, err := n.c.Write(req.Bytes()); err != nil {
		return err
	}
	var info struct {
		Size  uint64
		Flags uint16
	}
	if err := binary.Read(n.c, binary.BigEndian, &info); err != nil {
		return err
	}
	if hello.Flags&nbdNoZeroes == 0 {
		if _, err := io.CopyN(io.Discard, n.c, 124); err != nil {
			return err
		}
	}
	n.size = int64(info.Size)
	return nil
}

// readAt reads len(p) bytes at off, in requests of at most nbdMaxRead.
func (n *nbdConn) readAt(p []byte, off int64) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	for len(p) > 0 {
		k := min(len(p), nbdMaxRead)
		n.seq++
		var req [28]byte
		binary.BigEndian.PutUint32(req[0:], nbdRequestMagic)
		binary.BigEndian.PutUint16(req[6:], nbdCmdRead)
		binary.BigEndian.PutUint64(req[8:], n.seq)
		binary.BigEndian.PutUint64(req[16:], uint64(off))
		binary.BigEndian.PutUint32(req[24:], uint32(k))
		if _, err := n.c.Write(req[:]); err != nil {
			return err
		}
		var rep [16]byte
		if _, err := io.ReadFull(n.c, rep[:]); err != nil {
			return err
		}
		if binary.BigEndian.Uint32(rep[0:]) != nbdReplyMagic || binary.BigEndian.Uint64(rep[8:]) != n.seq {
			return errors.New("nbd: unexpected reply")
		}
		if e := binary.BigEndian.Uint32(rep[4:]); e != 0 {
			return fmt.Errorf("nbd: read at %d: error %d", off, e)
		}
		if _, err := io.ReadFull(n.c, p[:k]); err != nil {
			return err
		}
		p, off = p[k:], off+int64(k)
	}
	return nil
}

func (n *nbdConn) close() {
	var req [28]byte
	binary.BigEndian.PutUint32(req[0:], nbdRequestMagic)
	binary.BigEndian.PutUint16(req[6:], nbdCmdDisc)
	n.c.SetWriteDeadline(clock.Real{}.Now().Add(time.Second))
	n.c.Write(req[:])
	n.c.Close()
}
