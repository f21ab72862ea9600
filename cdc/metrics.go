package cdc

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names are namespace_subsystem_name (prometheus.BuildFQName): binlog_*
// for what the reader reads; the lag keeps its rowhook_cdc_ name, which
// dashboards and alerts use.
const (
	namespace = "rowhook"
	subsystem = "binlog"
)

type metrics struct {
	events       prometheus.Counter
	bytes        prometheus.Counter
	rows         *prometheus.CounterVec
	rowsByOp     map[Op]prometheus.Counter
	transactions prometheus.Counter
	reconnects   prometheus.Counter
	connected    prometheus.Gauge
	// skipped counts transactions read but not handed on, by reason.
	skipped        *prometheus.CounterVec
	skippedApplied prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, r *Reader) *metrics {
	m := &metrics{
		events: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: subsystem, Name: "events_total", Help: "Binlog events read from the source, heartbeats included.",
		}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: subsystem, Name: "bytes_total", Help: "Bytes of binlog events read from the source.",
		}),
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: subsystem, Name: "rows_total", Help: "Row changes read from the binlog after table filters, by operation.",
		}, []string{"op"}),
		transactions: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: subsystem, Name: "transactions_total", Help: "Committed binlog transactions read.",
		}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: subsystem, Name: "reconnects_total", Help: "Times the binlog connection was re-established after a failure.",
		}),
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: subsystem, Name: "connected", Help: "1 while the binlog stream is connected.",
		}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: subsystem, Name: "transactions_skipped_total",
			Help: "Transactions read from the binlog but not handed on, by reason; already_applied: the source sent again a transaction the checkpoint covers.",
		}, []string{"reason"}),
	}
	m.skippedApplied = m.skipped.WithLabelValues("already_applied")
	// Resolved once: a label lookup per row shows in decode profiles.
	m.rowsByOp = map[Op]prometheus.Counter{}
	for _, op := range []Op{OpInsert, OpUpdate, OpDelete} {
		m.rowsByOp[op] = m.rows.WithLabelValues(string(op))
	}
	if reg != nil {
		reg.MustRegister(m.events, m.bytes, m.rows, m.transactions, m.reconnects, m.connected, m.skipped, &positionCollector{r: r})
	}
	return m
}

// positionCollector reports lag and position at scrape time.
type positionCollector struct{ r *Reader }

var (
	lagDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "cdc", "lag_seconds"),
		"Seconds between now and the commit time of the last binlog event read; 0 while the source is idle and fully read.", nil, nil)
	lastCommitDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, subsystem, "last_commit_timestamp_seconds"),
		"Commit time (Unix seconds) of the last transaction read.", nil, nil)
	posDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, subsystem, "position_info"),
		"The binlog position after the last transaction read, as labels (value 1).", []string{"file", "gtid_set"}, nil)
	offsetDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, subsystem, "file_offset_bytes"),
		"Offset in the current binlog file after the last transaction read.", nil, nil)
)

func (c *positionCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- lagDesc
	ch <- lastCommitDesc
	ch <- posDesc
	ch <- offsetDesc
}

func (c *positionCollector) Collect(ch chan<- prometheus.Metric) {
	c.r.mu.Lock()
	lag := c.r.lagLocked(time.Now())
	pos := c.r.pos
	c.r.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, lag.Seconds())
	if !pos.Timestamp.IsZero() {
		ch <- prometheus.MustNewConstMetric(lastCommitDesc, prometheus.GaugeValue, float64(pos.Timestamp.Unix()))
	}
	if !pos.IsZero() {
		ch <- prometheus.MustNewConstMetric(posDesc, prometheus.GaugeValue, 1, pos.File, pos.GTIDSet)
		ch <- prometheus.MustNewConstMetric(offsetDesc, prometheus.GaugeValue, float64(pos.Pos))
	}
}
