package schedule

import (
	"strings"
	"time"
)

// Period is the longest time between two runs of a schedule of this
// interval: 1 h, 24 h, 7 days, 31 days; 0 for an unknown interval. A
// daylight saving change makes a daily run at most an hour late or
// early, which twice the period (the stale rule) absorbs.
func (i Interval) Period() time.Duration {
	switch Interval(strings.ToLower(string(i))) {
	case Hourly:
		return time.Hour
	case Daily:
		return 24 * time.Hour
	case Weekly:
		return 7 * 24 * time.Hour
	case Monthly:
		return 31 * 24 * time.Hour
	}
	return 0
}
