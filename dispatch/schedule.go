package dispatch

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Schedule says when a scheduled webhook sends what it holds.
type Schedule interface {
	// Next returns the first send time strictly after t, or the zero time
	// when there is none (a cron expression that never matches).
	Next(t time.Time) time.Time
}

// ParseSchedule parses "every DURATION" (aligned to multiples of DURATION
// since the Unix epoch, so restarts do not shift it), a 5-field cron
// expression "minute hour day-of-month month day-of-week" with *, lists,
// ranges, steps and JAN-DEC / SUN-SAT names, or @hourly, @daily, @weekly,
// @monthly, @yearly. Cron times are in UTC; see WithLocation.
func ParseSchedule(s string) (Schedule, error) {
	s = strings.TrimSpace(s)
	if rest, ok := strings.CutPrefix(s, "every "); ok {
		d, err := time.ParseDuration(strings.TrimSpace(rest))
		if err != nil {
			return nil, fmt.Errorf("schedule %q: %w", s, err)
		}
		if d < time.Second {
			return nil, fmt.Errorf("schedule %q: interval must be at least 1s", s)
		}
		return every(d), nil
	}
	switch s {
	case "@hourly":
		s = "0 * * * *"
	case "@daily", "@midnight":
		s = "0 0 * * *"
	case "@weekly":
		s = "0 0 * * 0"
	case "@monthly":
		s = "0 0 1 * *"
	case "@yearly", "@annually":
		s = "0 0 1 1 *"
	}
	fields := strings.Fields(s)
	if len(fields) != 5 {
		return nil, fmt.Errorf("schedule %q: want \"every 5m\" or 5 cron fields (minute hour day-of-month month day-of-week), got %d fields", s, len(fields))
	}
	c := &cron{loc: time.UTC}
	var err error
	specs := []struct {
		dst      *uint64
		min, max int
		names    []string
		what     string
	}{
		{&c.minute, 0, 59, nil, "minute"},
		{&c.hour, 0, 23, nil, "hour"},
		{&c.dom, 1, 31, nil, "day-of-month"},
		{&c.month, 1, 12, monthNames, "month"},
		{&c.dow, 0, 7, dayNames, "day-of-week"},
	}
	for i, sp := range specs {
		*sp.dst, err = parseCronField(fields[i], sp.min, sp.max, sp.names)
		if err != nil {
			return nil, fmt.Errorf("schedule %q: %s field %q: %w", s, sp.what, fields[i], err)
		}
	}
	if c.dow&(1<<7) != 0 { // 7 is Sunday too
		c.dow |= 1
		c.dow &^= 1 << 7
	}
	c.domStar = fields[2] == "*" || strings.HasPrefix(fields[2], "*/")
	c.dowStar = fields[4] == "*" || strings.HasPrefix(fields[4], "*/")
	return c, nil
}

// WithLocation returns s counting cron fields in loc; "every" schedules are
// unaffected.
func WithLocation(s Schedule, loc *time.Location) Schedule {
	if c, ok := s.(*cron); ok && loc != nil {
		cp := *c
		cp.loc = loc
		return &cp
	}
	return s
}

type every time.Duration

func (e every) Next(t time.Time) time.Time {
	d := time.Duration(e)
	return t.Truncate(d).Add(d)
}

var (
	monthNames = []string{"", "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}
	dayNames   = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}
)

type cron struct {
	minute, hour, dom, month, dow uint64
	domStar, dowStar              bool
	loc                           *time.Location
}

func parseCronField(f string, min, max int, names []string) (uint64, error) {
	var set uint64
	for _, part := range strings.Split(f, ",") {
		rng, stepStr, hasStep := strings.Cut(part, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepStr)
			if err != nil || n < 1 {
				return 0, fmt.Errorf("bad step %q", stepStr)
			}
			step = n
		}
		lo, hi := min, max
		switch {
		case rng == "*":
		case strings.Contains(rng, "-"):
			a, b, _ := strings.Cut(rng, "-")
			var err error
			if lo, err = cronValue(a, names); err != nil {
				return 0, err
			}
			if hi, err = cronValue(b, names); err != nil {
				return 0, err
			}
		default:
			v, err := cronValue(rng, names)
			if err != nil {
				return 0, err
			}
			lo, hi = v, v
			if hasStep {
				hi = max
			}
		}
		if lo < min || hi > max || lo > hi {
			return 0, fmt.Errorf("%d-%d is outside %d-%d", lo, hi, min, max)
		}
		for v := lo; v <= hi; v += step {
			set |= 1 << uint(v)
		}
	}
	return set, nil
}

func cronValue(s string, names []string) (int, error) {
	if n, err := strconv.Atoi(s); err == nil {
		return n, nil
	}
	for i, name := range names {
		if name != "" && strings.EqualFold(s, name) {
			return i, nil
		}
	}
	return 0, fmt.Errorf("bad value %q", s)
}

func (c *cron) dayMatches(t time.Time) bool {
	dom := c.dom&(1<<uint(t.Day())) != 0
	dow := c.dow&(1<<uint(t.Weekday())) != 0
	// Vixie cron: when both day fields are restricted, either may match.
	if !c.domStar && !c.dowStar {
		return dom || dow
	}
	return dom && dow
}

func (c *cron) Next(after time.Time) time.Time {
	t := after.In(c.loc).Truncate(time.Minute).Add(time.Minute)
	limit := t.AddDate(5, 0, 0)
	for t.Before(limit) {
		if c.month&(1<<uint(t.Month())) == 0 {
			t = time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, c.loc)
			continue
		}
		if !c.dayMatches(t) {
			t = time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, c.loc)
			continue
		}
		if c.hour&(1<<uint(t.Hour())) == 0 {
			t = time.Date(t.Year(), t.Month(), t.Day(), t.Hour()+1, 0, 0, 0, c.loc)
			continue
		}
		if c.minute&(1<<uint(t.Minute())) == 0 {
			t = t.Add(time.Minute)
			continue
		}
		return t
	}
	return time.Time{}
}
