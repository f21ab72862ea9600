package writeback

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestNewMetrics_twice(t *testing.T) {
	reg := prometheus.NewRegistry()
	a, err := newMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := newMetrics(reg)
	if err != nil {
		t.Fatalf("second registration: %v", err)
	}
	a.observe("db.t", "ok", time.Millisecond)
	b.observe("db.t", "ok", time.Millisecond)
	if got := testutil.ToFloat64(a.total.WithLabelValues("db.t", "ok")); got != 2 {
		t.Errorf("shared counter = %v, want 2", got)
	}
	var none *metrics
	none.observe("db.t", "ok", time.Millisecond) // nil records nothing, no panic
}
