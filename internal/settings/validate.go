package settings

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Sentinel errors wrapped by *Error; test with errors.Is.
var (
	// ErrUnknownKey means the key names no registered setting or VM detail.
	ErrUnknownKey = errors.New("unknown key")
	// ErrInvalidValue means the value breaks the key's type or range.
	ErrInvalidValue = errors.New("invalid value")
	// ErrUnsupportedScope means the setting cannot be set at that scope (or
	// in the agent configuration file).
	ErrUnsupportedScope = errors.New("unsupported scope")
)

// Error is a settings error: Key names the setting or VM detail, Reason the
// broken rule, Kind the sentinel it wraps.
type Error struct {
	Key    string
	Reason string
	Kind   error
}

func (e *Error) Error() string { return e.Key + ": " + e.Reason }

// Unwrap returns the sentinel, so errors.Is(err, ErrInvalidValue) works.
func (e *Error) Unwrap() error { return e.Kind }

func invalid(key, format string, args ...any) error {
	return &Error{Key: key, Reason: fmt.Sprintf(format, args...), Kind: ErrInvalidValue}
}

// Validate checks value against the setting's type and range and returns it
// in normalized form: surrounding spaces trimmed, integers and floats in
// canonical decimal form, booleans lower case, lists as "a,b,c".
func (d Definition) Validate(value string) (string, error) {
	return validateValue(d.Key, d.Type, d.Unit, d.Min, d.Max, value)
}

// Validate checks value for key; see Definition.Validate.
func Validate(key, value string) (string, error) {
	d, err := lookup(key)
	if err != nil {
		return "", err
	}
	return d.Validate(value)
}

func validateValue(key string, t Type, unit Unit, lo, hi *float64, value string) (string, error) {
	v := strings.TrimSpace(value)
	switch t {
	case TypeInt:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			var ne *strconv.NumError
			if errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange) {
				return "", invalid(key, "must be an integer in the 64-bit range, got %q", value)
			}
			return "", invalid(key, "must be an integer, got %q", value)
		}
		if err := checkRange(key, float64(n), lo, hi, strconv.FormatInt(n, 10)); err != nil {
			return "", err
		}
		if u := unitDuration(unit); u > 0 && n > int64(math.MaxInt64/u) {
			return "", invalid(key, "must be at most %d (%s), got %d", int64(math.MaxInt64/u), unit, n)
		}
		return strconv.FormatInt(n, 10), nil
	case TypeFloat:
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return "", invalid(key, "must be a number, got %q", value)
		}
		norm := strconv.FormatFloat(f, 'g', -1, 64)
		if err := checkRange(key, f, lo, hi, norm); err != nil {
			return "", err
		}
		return norm, nil
	case TypeBool:
		switch strings.ToLower(v) {
		case "true":
			return "true", nil
		case "false":
			return "false", nil
		}
		return "", invalid(key, "must be true or false, got %q", value)
	case TypeString:
		return v, nil
	case TypeList:
		var items []string
		for item := range strings.SplitSeq(v, ",") {
			item = strings.TrimSpace(item)
			if item == "" {
				continue
			}
			if strings.ContainsFunc(item, isControlOrSpace) {
				return "", invalid(key, "list items must not contain spaces or control characters, got %q", item)
			}
			items = append(items, item)
		}
		return strings.Join(items, ","), nil
	}
	return "", invalid(key, "has unknown type %q", t)
}

func isControlOrSpace(r rune) bool { return r <= ' ' || r == 0x7f }

func checkRange(key string, f float64, lo, hi *float64, got string) error {
	switch {
	case lo != nil && hi != nil && (f < *lo || f > *hi):
		return invalid(key, "must be between %s and %s, got %s", fmtNum(*lo), fmtNum(*hi), got)
	case lo != nil && f < *lo:
		return invalid(key, "must be at least %s, got %s", fmtNum(*lo), got)
	case hi != nil && f > *hi:
		return invalid(key, "must be at most %s, got %s", fmtNum(*hi), got)
	}
	return nil
}

func fmtNum(f float64) string {
	if f == float64(int64(f)) {
		return strconv.FormatInt(int64(f), 10) // 1000000, not 1e+06
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// unitDuration returns the length of one unit, or 0 for non-time units.
func unitDuration(u Unit) time.Duration {
	switch u {
	case UnitSeconds:
		return time.Second
	case UnitMinutes:
		return time.Minute
	case UnitHours:
		return time.Hour
	}
	return 0
}
