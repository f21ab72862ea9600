package writeback

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names are namespace_subsystem_name (prometheus.BuildFQName);
// rowhook_writebacks_total predates the subsystem and keeps its name. It is
// the one writeback counter: every try, by table and outcome (the
// dispatcher, which retries, counts none of its own).
const (
	namespace = "rowhook"
	subsystem = "writeback"
)

// metrics are the writeback metrics; a nil *metrics records nothing.
type metrics struct {
	total    *prometheus.CounterVec
	duration *prometheus.HistogramVec
	own      *prometheus.CounterVec
	mode     *prometheus.GaugeVec
}

// newMetrics registers the metrics with reg; nil reg means no metrics.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &metrics{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "writebacks_total",
			Help: "Writebacks attempted, by table and outcome (ok, skipped, conversion_error, expression_error, not_found, transient_error, permanent_error).",
		}, []string{"table", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: subsystem, Name: "duration_seconds",
			Help:    "Time to evaluate and write one writeback, by table.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"table"}),
		own: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: subsystem, Name: "own_changes_skipped_total",
			Help: "Updates recognised as rowhook's own writeback only by repeating its recent values (no annotation or marker said so), by table; not fired. Above 0, annotations or markers are missing.",
		}, []string{"table"}),
		mode: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: subsystem, Name: "mode",
			Help: "How rowhook recognises its own writes now: 1 for the current mode (annotate or marker), 0 for the other.",
		}, []string{"mode"}),
	}
	var err error
	if m.total, err = register(reg, m.total); err != nil {
		return nil, err
	}
	if m.duration, err = register(reg, m.duration); err != nil {
		return nil, err
	}
	if m.own, err = register(reg, m.own); err != nil {
		return nil, err
	}
	if m.mode, err = register(reg, m.mode); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c; a second Writer on the same registry (a reload)
// shares the series of the first.
func register[T prometheus.Collector](reg prometheus.Registerer, c T) (T, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return c, fmt.Errorf("register writeback metrics: %w", err)
		}
		return are.ExistingCollector.(T), nil
	}
	return c, nil
}

func (m *metrics) ownSkippedInit(table string) {
	if m != nil {
		m.own.WithLabelValues(table).Add(0)
	}
}

func (m *metrics) ownSkipped(table string) {
	if m != nil {
		m.own.WithLabelValues(table).Inc()
	}
}

func (m *metrics) setMode(mode Mode) {
	if m == nil {
		return
	}
	for _, x := range []Mode{ModeAnnotate, ModeMarker} {
		v := 0.0
		if x == mode {
			v = 1
		}
		m.mode.WithLabelValues(string(x)).Set(v)
	}
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
