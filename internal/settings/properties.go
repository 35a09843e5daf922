package settings

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
)

// maxPropertiesLine bounds one line of an agent configuration file.
const maxPropertiesLine = 64 * 1024

// ParseProperties reads a host's agent configuration file: one key=value per
// line, surrounding spaces ignored, blank lines and lines starting with #
// skipped. Every key must be a setting that is AgentConfigurable, every value
// must be valid for it, and a key may appear once. Values are returned
// normalized. Errors name the line: "line 3: backup.chain.size: cannot be set
// in the agent configuration file (...)".
func ParseProperties(r io.Reader) (map[string]string, error) {
	out := make(map[string]string)
	firstLine := make(map[string]int)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxPropertiesLine)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if n == 1 {
			line = strings.TrimPrefix(line, "\uFEFF")
		}
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("line %d: expected key=value, got %q", n, line)
		}
		key = strings.TrimSpace(key)
		if key == "" {
			return nil, fmt.Errorf("line %d: missing key before '='", n)
		}
		d, err := lookup(key)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if !d.AgentConfigurable {
			return nil, fmt.Errorf("line %d: %w", n, notAgentConfigurable(key))
		}
		if prev, dup := firstLine[key]; dup {
			return nil, fmt.Errorf("line %d: %w", n, &Error{Key: key, Reason: fmt.Sprintf("already set on line %d", prev), Kind: ErrInvalidValue})
		}
		v, err := d.Validate(value)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		out[key] = v
		firstLine[key] = n
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("line %d: longer than %d bytes: %w", n+1, maxPropertiesLine, err)
		}
		return nil, fmt.Errorf("read agent configuration: %w", err)
	}
	return out, nil
}
