package cdc

import (
	"strconv"
	"strings"
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
	fileDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, subsystem, "file_number"),
		"Numeric suffix of the binlog file of the last transaction read (mysql-bin.000042: 42).", nil, nil)
	offsetDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, subsystem, "file_offset_bytes"),
		"Offset in the current binlog file after the last transaction read.", nil, nil)
	gtidDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, subsystem, "gtid_sequence_number"),
		"Highest GTID sequence number read, by GTID domain (MariaDB domain id; MySQL source server UUID).", []string{"domain"}, nil)
)

func (c *positionCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- lagDesc
	ch <- lastCommitDesc
	ch <- fileDesc
	ch <- offsetDesc
	ch <- gtidDesc
}

// Collect reports the position as numbers only: the file and the GTID set
// as label values would make a new series on every transaction. Their text
// form is in the admin page's status, the logs and `rowhook position`.
func (c *positionCollector) Collect(ch chan<- prometheus.Metric) {
	c.r.mu.Lock()
	lag := c.r.lagLocked(time.Now())
	pos := c.r.pos
	c.r.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, lag.Seconds())
	if !pos.Timestamp.IsZero() {
		ch <- prometheus.MustNewConstMetric(lastCommitDesc, prometheus.GaugeValue, float64(pos.Timestamp.Unix()))
	}
	if pos.File != "" {
		if n, ok := fileNumber(pos.File); ok {
			ch <- prometheus.MustNewConstMetric(fileDesc, prometheus.GaugeValue, float64(n))
		}
		ch <- prometheus.MustNewConstMetric(offsetDesc, prometheus.GaugeValue, float64(pos.Pos))
	}
	for _, g := range gtidSequences(pos.GTIDSet) {
		ch <- prometheus.MustNewConstMetric(gtidDesc, prometheus.GaugeValue, float64(g.seq), g.domain)
	}
}

// fileNumber is the numeric suffix of a binlog file name (mysql-bin.000042).
func fileNumber(file string) (uint64, bool) {
	i := strings.LastIndexByte(file, '.')
	n, err := strconv.ParseUint(file[i+1:], 10, 64)
	return n, err == nil
}

type gtidSeq struct {
	domain string
	seq    uint64
}

// gtidSequences reads the highest sequence number per domain of a GTID set:
// MariaDB "domain-server-seq,…" (several servers in one domain keep the
// highest), MySQL "uuid:1-5:7-9,…" (the end of the last interval). Parts it
// cannot read are left out: a gauge missing is better than a wrong one.
func gtidSequences(set string) []gtidSeq {
	var out []gtidSeq
	idx := map[string]int{}
	add := func(domain string, seq uint64) {
		if i, ok := idx[domain]; ok {
			out[i].seq = max(out[i].seq, seq)
			return
		}
		idx[domain] = len(out)
		out = append(out, gtidSeq{domain, seq})
	}
	for _, part := range strings.Split(set, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if uuid, ivs, ok := strings.Cut(part, ":"); ok { // MySQL
			iv := ivs[strings.LastIndexByte(ivs, ':')+1:]
			iv = iv[strings.LastIndexByte(iv, '-')+1:]
			if n, err := strconv.ParseUint(iv, 10, 64); err == nil {
				add(strings.ToLower(uuid), n)
			}
			continue
		}
		f := strings.Split(part, "-")
		if len(f) != 3 {
			continue
		}
		if _, err := strconv.ParseUint(f[0], 10, 32); err != nil {
			continue
		}
		if n, err := strconv.ParseUint(f[2], 10, 64); err == nil {
			add(f[0], n)
		}
	}
	return out
}
