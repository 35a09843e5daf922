package schedule

import (
	"strings"
	"testing"
	"time"
)

func TestNext(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 10, 30, 0, 0, time.UTC) // a Friday
	cases := []struct {
		interval, at, tz string
		want             time.Time
	}{
		{"hourly", "15", "", time.Date(2026, 11, 27, 11, 15, 0, 0, time.UTC)},
		{"hourly", "45", "", time.Date(2026, 11, 27, 10, 45, 0, 0, time.UTC)},
		{"hourly", "30", "", time.Date(2026, 11, 27, 11, 30, 0, 0, time.UTC)}, // strictly after
		{"daily", "02:00", "", time.Date(2026, 11, 28, 2, 0, 0, 0, time.UTC)},
		{"daily", "23:59", "", time.Date(2026, 11, 27, 23, 59, 0, 0, time.UTC)},
		{"daily", "02:00", "Europe/Berlin", time.Date(2026, 11, 28, 1, 0, 0, 0, time.UTC)},
		{"weekly", "mon 03:00", "", time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)},
		{"weekly", "fri 11:00", "", time.Date(2026, 11, 27, 11, 0, 0, 0, time.UTC)},
		{"weekly", "fri 09:00", "", time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)},
		{"monthly", "1 00:00", "", time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)},
		{"monthly", "27 12:00", "", time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)},
	}
	for _, c := range cases {
		s, err := Parse(c.interval, c.at, c.tz)
		if err != nil {
			t.Fatalf("%v: %v", c, err)
		}
		if got := s.Next(t0); !got.Equal(c.want) {
			t.Errorf("%s %q %s: next %v, want %v", c.interval, c.at, c.tz, got, c.want)
		}
	}
}

func TestParseRefusesBadSpecs(t *testing.T) {
	for _, c := range []struct{ interval, at, tz, want string }{
		{"yearly", "1", "", "interval"},
		{"hourly", "60", "", "minute"},
		{"daily", "25:00", "", "HH:MM"},
		{"daily", "2pm", "", "HH:MM"},
		{"weekly", "someday 02:00", "", "unknown day"},
		{"monthly", "31 02:00", "", "1-28"},
		{"daily", "02:00", "Mars/Base", "time zone"},
	} {
		if _, err := Parse(c.interval, c.at, c.tz); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: got %v, want an error about %s", c, err, c.want)
		}
	}
}
