package dispatch

import (
	"context"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names are namespace_name: the dispatcher's names (rowhook_deliveries_total,
// rowhook_queue_depth, …) predate a subsystem and keep their exported names.
const namespace = "rowhook"

type metrics struct {
	deliveries   *prometheus.CounterVec
	attemptDur   *prometheus.HistogramVec
	retries      *prometheus.CounterVec
	deadLetters  *prometheus.CounterVec
	commitDur    prometheus.Histogram
	enqueued     prometheus.Counter
	paused       *prometheus.GaugeVec
	writebacks   *prometheus.CounterVec
	storeErrors  prometheus.Counter
	queueCollect *queueCollector
	circuit      *prometheus.GaugeVec
}

// Delivery outcomes (label values of rowhook_deliveries_total).
const (
	outcomeOK     = "ok"
	outcomeRetry  = "retry"
	outcomeFailed = "failed"
	outcomeDead   = "dead"
	outcomeGone   = "gone"
)

func newMetrics(reg prometheus.Registerer, st Store) *metrics {
	m := &metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "deliveries_total",
			Help: "Delivery attempts by webhook and outcome (ok, retry, failed, dead, gone).",
		}, []string{"webhook", "outcome"}),
		attemptDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "delivery_attempt_duration_seconds",
			Help:    "Duration of delivery attempts, request to response body read.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"webhook"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "delivery_retries_total",
			Help: "Failed attempts scheduled for another try.",
		}, []string{"webhook"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "dead_letters_total",
			Help: "Deliveries given up on (dead after the last attempt, or failed permanently).",
		}, []string{"webhook"}),
		commitDur: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "store_commit_duration_seconds",
			Help:    "Duration of state store commits of deliveries and checkpoint.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}),
		enqueued: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "deliveries_enqueued_total",
			Help: "Deliveries written to the outbox (duplicates from replays not counted).",
		}),
		paused: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "webhook_paused",
			Help: "1 when a webhook is paused after failing continuously, 2 when disabled (410).",
		}, []string{"webhook"}),
		writebacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "writeback_attempts_total",
			Help: "Writeback applications by outcome (ok, retry, failed).",
		}, []string{"outcome"}),
		storeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "store_errors_total",
			Help: "State store operations that failed (retried).",
		}),
		queueCollect: &queueCollector{store: st,
			depth: prometheus.NewDesc(prometheus.BuildFQName(namespace, "", "queue_depth"), "Deliveries in the store by webhook and state (pending, failed, dead).",
				[]string{"webhook", "state"}, nil),
			oldest: prometheus.NewDesc(prometheus.BuildFQName(namespace, "", "oldest_pending_age_seconds"), "Age of the oldest pending delivery by webhook.",
				[]string{"webhook"}, nil),
		},
	}
	m.circuit = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace, Name: "webhook_circuit_state",
		Help: "Endpoint circuit by webhook and state (closed, open, half_open): 1 for the webhook's state, 0 for the others; for webhook=\"subscription\", how many subscriptions are in each state.",
	}, []string{"webhook", "state"})
	if reg != nil {
		reg.MustRegister(m.circuit)
	}
	if reg != nil {
		reg.MustRegister(m.deliveries, m.attemptDur, m.retries, m.deadLetters, m.commitDur, m.enqueued, m.paused,
			m.writebacks, m.storeErrors, m.queueCollect)
	}
	return m
}

// queueCollector reads queue gauges from the store at scrape time, so they
// are right even when another process (rowhook redeliver) changed the store.
type queueCollector struct {
	store  Store
	depth  *prometheus.Desc
	oldest *prometheus.Desc
	now    func() time.Time
	// webhooks are the webhook labels known at start: their series are
	// reported at 0 when the store has no delivery for them.
	webhooks []string
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.depth
	ch <- c.oldest
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stats, err := c.store.Stats(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.depth, err)
		return
	}
	now := time.Now()
	if c.now != nil {
		now = c.now()
	}
	seen := map[QueueStat]bool{}
	for _, s := range stats {
		ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(s.Count), s.Webhook, string(s.Status))
		seen[QueueStat{Webhook: s.Webhook, Status: s.Status}] = true
		if s.Status == StatusPending && !s.OldestPending.IsZero() {
			ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, now.Sub(s.OldestPending).Seconds(), s.Webhook)
			seen[QueueStat{Webhook: s.Webhook}] = true
		}
	}
	for _, w := range c.webhooks {
		for _, st := range []Status{StatusPending, StatusFailed, StatusDead} {
			if !seen[QueueStat{Webhook: w, Status: st}] {
				ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, 0, w, string(st))
			}
		}
		if !seen[QueueStat{Webhook: w}] {
			ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, 0, w)
		}
	}
}

// initSeries creates at 0 the series whose label values are known at
// start: each configured webhook (and the subscriptions' label when
// subscriptions are on) with every delivery outcome, and the writeback
// outcomes when writeback is wired. A series that first appears at 1 hides
// that event from increase() and rate(), so RowhookDeadLetters would miss
// the first dead letter.
func (m *metrics) initSeries(cfg Config, writeback bool) {
	names := make([]string, 0, len(cfg.Webhooks)+1)
	for n := range cfg.Webhooks {
		names = append(names, n)
	}
	if cfg.Admin.Subscriptions.Enabled {
		names = append(names, SubscriptionWebhook)
	}
	sort.Strings(names)
	for _, n := range names {
		for _, o := range []string{outcomeOK, outcomeRetry, outcomeFailed, outcomeDead, outcomeGone} {
			m.deliveries.WithLabelValues(n, o)
		}
		m.attemptDur.WithLabelValues(n)
		m.retries.WithLabelValues(n)
		m.deadLetters.WithLabelValues(n)
		m.paused.WithLabelValues(n)
	}
	m.queueCollect.webhooks = names
	if writeback {
		for _, o := range []string{outcomeOK, outcomeRetry, outcomeFailed} {
			m.writebacks.WithLabelValues(o)
		}
	}
}
