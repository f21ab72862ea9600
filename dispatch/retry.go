package dispatch

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rowhook/rowhook/internal/backoff"
)

// Clock is the time source of retries, schedules and pauses; tests inject
// a manual one (dispatchtest.Clock) to make timing exact.
type Clock interface {
	Now() time.Time
	// After is time.After on this clock.
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

var _ Clock = realClock{}

// Jitter returns a number in [0, 1] that spreads retry delays.
type Jitter func() float64

func defaultJitter() float64 { return rand.Float64() }

// Backoff returns the delay before the next attempt after attempt n (from 1)
// failed: InitialInterval doubled per attempt, capped at MaxInterval, with
// "equal jitter" (half fixed, half scaled by j, so j=1 gives the full
// delay), and never shorter than retryAfter, the endpoint's Retry-After, up
// to MaxInterval: a receiver answering Retry-After: 315360000 (or a date in
// 2099) must not park a delivery for years.
func (r RetryConfig) Backoff(n int, retryAfter time.Duration, j float64) time.Duration {
	d := backoff.EqualJitter(backoff.Exponential(n, r.InitialInterval, r.MaxInterval), j)
	if retryAfter > d {
		d = min(retryAfter, r.MaxInterval)
	}
	return d
}

// CapsRetryAfter reports whether a Retry-After of ra is longer than the
// policy honours (MaxInterval).
func (r RetryConfig) CapsRetryAfter(ra time.Duration) bool { return ra > r.MaxInterval }

// AttemptError describes a failed attempt; the dispatcher decides with
// errors.As whether and when to retry.
type AttemptError struct {
	// Status is the HTTP status, 0 when no response came.
	Status int
	// Retryable: network errors, timeouts, 408, 429, 5xx.
	Retryable bool
	// Gone: the endpoint answered 410.
	Gone bool
	// RetryAfter is the endpoint's Retry-After, 0 when absent.
	RetryAfter time.Duration
	Err        error
}

func (e *AttemptError) Error() string {
	if e.Status != 0 {
		if e.Err != nil {
			return fmt.Sprintf("http %d: %v", e.Status, e.Err)
		}
		return fmt.Sprintf("http %d %s", e.Status, http.StatusText(e.Status))
	}
	return e.Err.Error()
}

func (e *AttemptError) Unwrap() error { return e.Err }

// classify turns a response status into nil (2xx) or an *AttemptError.
func classify(status int, h http.Header, now time.Time) error {
	if status >= 200 && status < 300 {
		return nil
	}
	e := &AttemptError{Status: status}
	switch {
	case status == http.StatusGone:
		e.Gone = true
	case status == http.StatusRequestTimeout, status == http.StatusTooManyRequests, status >= 500:
		e.Retryable = true
		e.RetryAfter = parseRetryAfter(h.Get("Retry-After"), now)
	}
	return e
}

// maxRetryAfter is the longest Retry-After in seconds kept as given (about
// 290 years, what a time.Duration holds).
const maxRetryAfter = int64(1<<63-1) / int64(time.Second)

// parseRetryAfter reads delay-seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		switch {
		case n < 0:
			return 0
		case n > maxRetryAfter:
			// Past what a Duration holds: the policy caps it anyway.
			return time.Duration(maxRetryAfter) * time.Second
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// retryable reports whether err (from an attempt) may succeed later.
func retryable(err error) (*AttemptError, bool) {
	var ae *AttemptError
	if errors.As(err, &ae) {
		return ae, ae.Retryable
	}
	return nil, true
}
