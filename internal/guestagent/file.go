package guestagent

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
)

// writeChunk is the most a guest-file-write carries (its base64 travels in
// one agent message).
const writeChunk = 1 << 20

// WriteFile creates or truncates the guest file path (guest-file-open mode
// "w": the guest agent's umask and owner) and writes r to it in chunks,
// then closes it. It returns the bytes written.
func (c *Client) WriteFile(ctx context.Context, domainUUID, path string, r io.Reader) (int64, error) {
	var handle int64
	if err := c.Call(ctx, domainUUID, "guest-file-open", map[string]string{"path": path, "mode": "w"}, &handle); err != nil {
		return 0, err
	}
	var total int64
	buf := make([]byte, writeChunk)
	var werr error
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			var res struct {
				Count int64 `json:"count"`
			}
			args := struct {
				Handle int64  `json:"handle"`
				Buf    string `json:"buf-b64"`
			}{handle, base64.StdEncoding.EncodeToString(buf[:n])}
			if werr = c.Call(ctx, domainUUID, "guest-file-write", args, &res); werr != nil {
				break
			}
			if res.Count != int64(n) {
				werr = fmt.Errorf("guest-file-write %s: wrote %d of %d bytes", path, res.Count, n)
				break
			}
			total += int64(n)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			werr = err
			break
		}
	}
	cerr := c.Call(ctx, domainUUID, "guest-file-close", map[string]int64{"handle": handle}, nil)
	if werr != nil {
		return total, werr
	}
	return total, cerr
}
