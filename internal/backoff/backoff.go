// Package backoff is rowhook's one retry-delay schedule: a delay doubling
// per attempt up to a cap, with "equal jitter" (half the delay fixed, half
// scaled by a number in [0, 1]). The callers keep their own clock and
// jitter source (STYLE.md §14): this package only computes, so tests are
// exact. The binlog reader's reconnections, the dispatcher's retries and
// writeback's retry schedule use it.
//
// github.com/cenkalti/backoff/v5 was considered: its ExponentialBackOff is a
// stateful timer with its own randomisation (±factor around the delay, from
// math/rand), which neither takes an injected jitter nor gives equal
// jitter, so the exact tests could not stay.
package backoff

import "time"

// Exponential returns the delay before attempt n+1 after attempt n (from 1;
// n < 1 counts as 1) failed: initial doubled n-1 times, capped at max. It
// never overflows, whatever n.
func Exponential(n int, initial, max time.Duration) time.Duration {
	d := initial
	for i := 1; i < n && d < max; i++ {
		if d > max/2 {
			d = max
			break
		}
		d *= 2
	}
	return min(d, max)
}

// EqualJitter returns d/2 + d/2·j, with j clamped to [0, 1]: j = 1 gives d,
// j = 0 half of it.
func EqualJitter(d time.Duration, j float64) time.Duration {
	j = min(max(j, 0), 1)
	return d/2 + time.Duration(float64(d/2)*j)
}
