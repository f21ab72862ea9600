package pipeline

import (
	"testing"
	"time"

	"github.com/rowhook/rowhook/dispatch"
	"github.com/rowhook/rowhook/writeback"
)

// The writeback: section's retry settings become the dispatcher's
// writeback retry policy.
func TestWritebackRetry(t *testing.T) {
	for _, tt := range []struct {
		c    writeback.Config
		want dispatch.RetryConfig
	}{
		{writeback.DefaultConfig(), dispatch.RetryConfig{MaxAttempts: 8, InitialInterval: time.Second, MaxInterval: 5 * time.Minute}},
		{writeback.Config{MaxAttempts: 3, Backoff: 2 * time.Second, MaxBackoff: 5 * time.Second}, dispatch.RetryConfig{MaxAttempts: 3, InitialInterval: 2 * time.Second, MaxInterval: 5 * time.Second}},
		// No cap: the longest wait RetryDelay gives for these attempts.
		{writeback.Config{MaxAttempts: 4, Backoff: time.Second}, dispatch.RetryConfig{MaxAttempts: 4, InitialInterval: time.Second, MaxInterval: 8 * time.Second}},
		// 0 attempts: tried once.
		{writeback.Config{MaxAttempts: 0, Backoff: time.Second, MaxBackoff: time.Minute}, dispatch.RetryConfig{MaxAttempts: 1, InitialInterval: time.Second, MaxInterval: time.Minute}},
	} {
		if got := writebackRetry(tt.c); got != tt.want {
			t.Errorf("writebackRetry(%+v) = %+v, want %+v", tt.c, got, tt.want)
		}
	}
}
