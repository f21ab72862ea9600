package rules

import "github.com/prometheus/client_golang/prometheus"

// Metric names are namespace_subsystem_name (prometheus.BuildFQName).
const (
	namespace = "rowhook"
	subsystem = "rule"
)

// metrics are the engine's Prometheus metrics. Rule names label the
// counters: they come from the config, so their number is bounded.
type metrics struct {
	events          *prometheus.CounterVec
	conditionErrors *prometheus.CounterVec
	bodyErrors      *prometheus.CounterVec
	dropped         *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, e *Engine) *metrics {
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: subsystem, Name: "events_total", Help: "Events produced by a rule (returned by the engine, ready for delivery).",
		}, []string{"rule"}),
		conditionErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: subsystem, Name: "condition_errors_total", Help: "Row changes on which a rule's condition failed at run time (the rule did not fire).",
		}, []string{"rule"}),
		bodyErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: subsystem, Name: "body_field_errors_total", Help: "Events sent with a YAML body field set to null: its expression failed, or it reads a column the row's table does not have (renamed or dropped).",
		}, []string{"rule"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: subsystem, Name: "events_dropped_total", Help: "Vtiger preset events dropped when their settle window closed, by reason.",
		}, []string{"rule", "reason"}),
	}
	if reg != nil {
		reg.MustRegister(m.events, m.conditionErrors, m.bodyErrors, m.dropped, &heldCollector{e: e})
	}
	return m
}

// dropReasons are the label values of rowhook_rule_events_dropped_total.
var dropReasons = []string{"other_module", "no_record", "deleted", "created_in_window", "restored"}

// initRule resolves rule r's counters and creates its series at 0, so that
// they exist from the start: increase() over a series that appears at 1
// misses the first event.
func (m *metrics) initRule(r *rule) {
	r.events = m.events.WithLabelValues(r.cfg.Name)
	r.bodyErrors = m.bodyErrors.WithLabelValues(r.cfg.Name)
	m.conditionErrors.WithLabelValues(r.cfg.Name)
	if r.body.vtiger != nil {
		for _, reason := range dropReasons {
			m.dropped.WithLabelValues(r.cfg.Name, reason)
		}
	}
}

var (
	heldEventsDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, subsystem, "held_events"),
		"Events waiting for a settle window to close (or behind one, to keep binlog order).", nil, nil)
	openWindowsDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, subsystem, "settle_windows"),
		"Vtiger records whose rows are being collected in an open settle window.", nil, nil)
)

// heldCollector reports the engine's held state at scrape time.
type heldCollector struct{ e *Engine }

// Describe implements prometheus.Collector.
func (c *heldCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- heldEventsDesc
	ch <- openWindowsDesc
}

// Collect implements prometheus.Collector.
func (c *heldCollector) Collect(ch chan<- prometheus.Metric) {
	c.e.mu.Lock()
	held, windows := len(c.e.queue), 0
	if c.e.vt != nil {
		windows = len(c.e.vt.order)
	}
	c.e.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(heldEventsDesc, prometheus.GaugeValue, float64(held))
	ch <- prometheus.MustNewConstMetric(openWindowsDesc, prometheus.GaugeValue, float64(windows))
}

var _ prometheus.Collector = (*heldCollector)(nil)
