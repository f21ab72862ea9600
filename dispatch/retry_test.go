package dispatch

import (
	"net/http"
	"testing"
	"time"
)

func TestRetryConfig_Backoff(t *testing.T) {
	r := RetryConfig{MaxAttempts: 10, InitialInterval: 2 * time.Second, MaxInterval: time.Minute}
	tests := []struct {
		n          int
		retryAfter time.Duration
		jitter     float64
		want       time.Duration
	}{
		{1, 0, 1, 2 * time.Second},
		{2, 0, 1, 4 * time.Second},
		{3, 0, 1, 8 * time.Second},
		{3, 0, 0, 4 * time.Second},
		{3, 0, 0.5, 6 * time.Second},
		{6, 0, 1, time.Minute}, // 64s capped
		{30, 0, 1, time.Minute},
		{1, 30 * time.Second, 1, 30 * time.Second}, // Retry-After wins when longer
		{6, 5 * time.Second, 1, time.Minute},
		// A Retry-After beyond max_interval is honoured up to it.
		{1, 315360000 * time.Second, 1, time.Minute},
		{1, 1<<63 - 1, 0, time.Minute},
	}
	for _, tt := range tests {
		if got := r.Backoff(tt.n, tt.retryAfter, tt.jitter); got != tt.want {
			t.Errorf("Backoff(%d, %v, %v) = %v, want %v", tt.n, tt.retryAfter, tt.jitter, got, tt.want)
		}
	}
}

func TestClassify(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		status     int
		retryAfter string
		ok, retry  bool
		gone       bool
		after      time.Duration
	}{
		{200, "", true, false, false, 0},
		{204, "", true, false, false, 0},
		{400, "", false, false, false, 0},
		{401, "", false, false, false, 0},
		{404, "", false, false, false, 0},
		{408, "", false, true, false, 0},
		{410, "", false, false, true, 0},
		{429, "7", false, true, false, 7 * time.Second},
		{503, now.Add(90 * time.Second).Format(http.TimeFormat), false, true, false, 90 * time.Second},
		{500, "soon", false, true, false, 0},
		{503, "315360000", false, true, false, 315360000 * time.Second},
		// Past what a Duration holds: the longest one, not an overflow.
		{503, "99999999999999999999", false, true, false, time.Duration(maxRetryAfter) * time.Second},
		{429, "-5", false, true, false, 0},
		{302, "", false, false, false, 0},
	}
	for _, tt := range tests {
		h := http.Header{}
		if tt.retryAfter != "" {
			h.Set("Retry-After", tt.retryAfter)
		}
		err := classify(tt.status, h, now)
		if (err == nil) != tt.ok {
			t.Errorf("%d: err = %v", tt.status, err)
			continue
		}
		if err == nil {
			continue
		}
		ae, retry := retryable(err)
		if retry != tt.retry || ae.Gone != tt.gone || ae.RetryAfter != tt.after {
			t.Errorf("%d: retry=%v gone=%v after=%v", tt.status, retry, ae.Gone, ae.RetryAfter)
		}
	}
}
