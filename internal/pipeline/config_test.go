package pipeline

import (
	"context"
	"math"
	"runtime/debug"
	"testing"
)

// Loading a config runs without rowhook's default soft memory limit (the
// GC would otherwise run back to back on a large file's transient heap),
// and the limit is back afterwards; a limit set with GOMEMLIMIT stays.
func TestUntilDone_MemoryLimit(t *testing.T) {
	old := debug.SetMemoryLimit(DefaultMemoryLimit)
	defer debug.SetMemoryLimit(old)
	for _, tt := range []struct {
		env    string
		during int64
	}{{"", math.MaxInt64}, {"40MiB", DefaultMemoryLimit}} {
		t.Setenv("GOMEMLIMIT", tt.env)
		var during int64
		_, _, err := UntilDone(context.Background(), "config", func() (int, int, error) {
			during = debug.SetMemoryLimit(-1)
			return 0, 0, nil
		})
		if err != nil || during != tt.during {
			t.Errorf("GOMEMLIMIT=%q: limit while loading %d, want %d (%v)", tt.env, during, tt.during, err)
		}
		if after := debug.SetMemoryLimit(-1); after != DefaultMemoryLimit {
			t.Errorf("GOMEMLIMIT=%q: limit after loading %d", tt.env, after)
		}
	}
	// Overlapping loads: the limit is back once both are done, whatever
	// order they end in.
	t.Setenv("GOMEMLIMIT", "")
	first, second := liftMemoryLimit(), liftMemoryLimit()
	first()
	if during := debug.SetMemoryLimit(-1); during != math.MaxInt64 {
		t.Errorf("limit with one load still running %d", during)
	}
	second()
	first() // a second call changes nothing
	if after := debug.SetMemoryLimit(-1); after != DefaultMemoryLimit {
		t.Errorf("limit after overlapping loads %d", after)
	}
}
