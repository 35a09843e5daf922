package report

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
)

const (
	mib = int64(1) << 20
	gib = int64(1) << 30
)

// LoadAvg returns the first three fields of /proc/loadavg, or "?" when it
// cannot be read.
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) > 3 {
		f = f[:3]
	}
	return strings.Join(f, " ")
}

// Ratio returns a/b, or 0 when b <= 0.
func Ratio(a, b float64) float64 {
	if b <= 0 {
		return 0
	}
	return a / b
}

// Median returns the median of v (the mean of the middle two for an even
// count), or 0 for an empty v. v is not modified.
func Median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

// HumanSize prints n as a whole number of GiB or MiB when it is an exact
// multiple of one, else as bytes: "2 GiB", "512 MiB", "1000 B".
func HumanSize(n int64) string {
	switch {
	case n >= gib && n%gib == 0:
		return fmt.Sprintf("%d GiB", n/gib)
	case n >= mib && n%mib == 0:
		return fmt.Sprintf("%d MiB", n/mib)
	}
	return fmt.Sprintf("%d B", n)
}

// MiB prints n bytes in MiB with one decimal: "12.3 MiB".
func MiB(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/float64(mib)) }

// F1 prints v with one decimal.
func F1(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

// F2 prints v with two decimals.
func F2(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }

// F3 prints v with three decimals.
func F3(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) }
