package writeback

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the writeback metrics; a nil *metrics records nothing.
type metrics struct {
	total    *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// newMetrics registers the metrics with reg; nil reg means no metrics.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &metrics{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rowhook_writebacks_total",
			Help: "Writebacks attempted, by table and outcome (ok, skipped, conversion_error, expression_error, not_found, transient_error, permanent_error).",
		}, []string{"table", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "rowhook_writeback_duration_seconds",
			Help:    "Time to evaluate and write one writeback, by table.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"table"}),
	}
	// A second Writer on the same registry (a reload) shares the series.
	if err := reg.Register(m.total); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return nil, fmt.Errorf("register writeback metrics: %w", err)
		}
		m.total = are.ExistingCollector.(*prometheus.CounterVec)
	}
	if err := reg.Register(m.duration); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return nil, fmt.Errorf("register writeback metrics: %w", err)
		}
		m.duration = are.ExistingCollector.(*prometheus.HistogramVec)
	}
	return m, nil
}

func (m *metrics) observe(table, outcome string, d time.Duration) {
	if m == nil {
		return
	}
	m.total.WithLabelValues(table, outcome).Inc()
	if outcome != "skipped" {
		m.duration.WithLabelValues(table).Observe(d.Seconds())
	}
}

// outcomeOf is the outcome label for an Apply error.
func outcomeOf(err error) string {
	var ce *ConversionError
	var ee *ExprError
	switch {
	case errors.As(err, &ce):
		return "conversion_error"
	case errors.As(err, &ee):
		return "expression_error"
	case errors.Is(err, ErrRowNotFound):
		return "not_found"
	case IsPermanent(err):
		return "permanent_error"
	}
	return "transient_error"
}
