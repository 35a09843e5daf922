package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/knib/knib/internal/api"
)

// TrailerError is the trailer in which the server reports an error that
// broke off a streamed answer.
const TrailerError = "Knib-Error"

// Stream POSTs body and copies the (non-JSON) answer to w as it arrives.
// An error the server reports after the stream began (the trailer) is
// returned after w got what arrived.
func (c *Client) Stream(ctx context.Context, path string, body any, w io.Writer) error {
	raw, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, "POST", c.Base+"/api/v1"+path, bytes.NewReader(raw))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the knib server at %s: %w", c.Base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		var p api.Problem
		if json.Unmarshal(msg, &p) != nil || p.Detail == "" {
			p.Detail = fmt.Sprintf("POST %s: %s", path, resp.Status)
		}
		return &APIError{Status: resp.StatusCode, Detail: p.Detail, Field: p.Field}
	}
	// Large reads: a file's ReadFrom would copy 32 KiB at a time.
	if _, err := io.CopyBuffer(struct{ io.Writer }{w}, resp.Body, make([]byte, 1<<20)); err != nil {
		return fmt.Errorf("POST %s: the stream broke off: %w", path, err)
	}
	if msg := resp.Trailer.Get(TrailerError); msg != "" {
		return fmt.Errorf("POST %s: the stream broke off: %s", path, msg)
	}
	return nil
}
