// Package schedule computes when scheduled backups are due. It is pure
// logic (the time is always a parameter) over the standard library.
//
// Vocabulary:
//   - interval: hourly, daily, weekly or monthly.
//   - at: when in the interval, in the schedule's time zone: "MM" (minute of
//     the hour) for hourly, "HH:MM" for daily, "DAY HH:MM" (mon..sun) for
//     weekly, "D HH:MM" (day 1..28) for monthly.
//   - next run: the first due time strictly after a given time. A server
//     that was down runs a missed schedule once (catch-up at most once), then
//     follows the plan from the current time on.
package schedule

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Interval is how often a schedule runs.
type Interval string

// Intervals.
const (
	Hourly  Interval = "hourly"
	Daily   Interval = "daily"
	Weekly  Interval = "weekly"
	Monthly Interval = "monthly"
)

// Spec is a parsed schedule.
type Spec struct {
	Interval Interval
	At       string
	Location *time.Location
	minute   int
	hour     int
	weekday  time.Weekday
	day      int
}

var weekdays = map[string]time.Weekday{"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday}

// Parse checks an interval, an at-spec and a time zone name ("" = UTC).
// Errors name the part that is wrong.
func Parse(interval, at, tz string) (Spec, error) {
	s := Spec{Interval: Interval(strings.ToLower(interval)), At: strings.TrimSpace(at), Location: time.UTC}
	if tz != "" {
		loc, err := time.LoadLocation(tz)
		if err != nil {
			return s, fmt.Errorf("timezone: unknown time zone %q", tz)
		}
		s.Location = loc
	}
	fields := strings.Fields(s.At)
	hm := func(v string) error {
		h, m, ok := strings.Cut(v, ":")
		hh, err1 := strconv.Atoi(h)
		mm, err2 := strconv.Atoi(m)
		if !ok || err1 != nil || err2 != nil || hh < 0 || hh > 23 || mm < 0 || mm > 59 {
			return fmt.Errorf("at: want HH:MM, got %q", v)
		}
		s.hour, s.minute = hh, mm
		return nil
	}
	switch s.Interval {
	case Hourly:
		m, err := strconv.Atoi(s.At)
		if err != nil || m < 0 || m > 59 {
			return s, fmt.Errorf("at: for hourly schedules want the minute (0-59), got %q", at)
		}
		s.minute = m
	case Daily:
		if len(fields) != 1 {
			return s, fmt.Errorf("at: for daily schedules want HH:MM, got %q", at)
		}
		if err := hm(fields[0]); err != nil {
			return s, err
		}
	case Weekly:
		if len(fields) != 2 {
			return s, fmt.Errorf("at: for weekly schedules want \"DAY HH:MM\" (mon..sun), got %q", at)
		}
		wd, ok := weekdays[strings.ToLower(fields[0])[:min(3, len(fields[0]))]]
		if !ok {
			return s, fmt.Errorf("at: unknown day %q, want mon..sun", fields[0])
		}
		s.weekday = wd
		if err := hm(fields[1]); err != nil {
			return s, err
		}
	case Monthly:
		if len(fields) != 2 {
			return s, fmt.Errorf("at: for monthly schedules want \"D HH:MM\" (day 1-28), got %q", at)
		}
		d, err := strconv.Atoi(fields[0])
		if err != nil || d < 1 || d > 28 {
			return s, fmt.Errorf("at: the day of the month must be 1-28, got %q", fields[0])
		}
		s.day = d
		if err := hm(fields[1]); err != nil {
			return s, err
		}
	default:
		return s, fmt.Errorf("interval: want hourly, daily, weekly or monthly, got %q", interval)
	}
	return s, nil
}

// Next returns the first due time strictly after t.
func (s Spec) Next(t time.Time) time.Time {
	lt := t.In(s.Location)
	var c time.Time
	switch s.Interval {
	case Hourly:
		c = time.Date(lt.Year(), lt.Month(), lt.Day(), lt.Hour(), s.minute, 0, 0, s.Location)
		for !c.After(lt) {
			c = c.Add(time.Hour)
		}
	case Daily:
		c = time.Date(lt.Year(), lt.Month(), lt.Day(), s.hour, s.minute, 0, 0, s.Location)
		for !c.After(lt) {
			c = c.AddDate(0, 0, 1)
		}
	case Weekly:
		c = time.Date(lt.Year(), lt.Month(), lt.Day(), s.hour, s.minute, 0, 0, s.Location)
		c = c.AddDate(0, 0, (int(s.weekday)-int(c.Weekday())+7)%7)
		for !c.After(lt) {
			c = c.AddDate(0, 0, 7)
		}
	case Monthly:
		c = time.Date(lt.Year(), lt.Month(), s.day, s.hour, s.minute, 0, 0, s.Location)
		for !c.After(lt) {
			c = c.AddDate(0, 1, 0)
		}
	}
	return c.UTC()
}
