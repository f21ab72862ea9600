package dispatch

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

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
			Name: "rowhook_deliveries_total",
			Help: "Delivery attempts by webhook and outcome (ok, retry, failed, dead, gone).",
		}, []string{"webhook", "outcome"}),
		attemptDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "rowhook_delivery_attempt_duration_seconds",
			Help:    "Duration of delivery attempts, request to response body read.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"webhook"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rowhook_delivery_retries_total",
			Help: "Failed attempts scheduled for another try.",
		}, []string{"webhook"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rowhook_dead_letters_total",
			Help: "Deliveries given up on (dead after the last attempt, or failed permanently).",
		}, []string{"webhook"}),
		commitDur: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "rowhook_store_commit_duration_seconds",
			Help:    "Duration of state store commits of deliveries and checkpoint.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}),
		enqueued: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rowhook_deliveries_enqueued_total",
			Help: "Deliveries written to the outbox (duplicates from replays not counted).",
		}),
		paused: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rowhook_webhook_paused",
			Help: "1 when a webhook is paused after failing continuously, 2 when disabled (410).",
		}, []string{"webhook"}),
		writebacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rowhook_writeback_attempts_total",
			Help: "Writeback applications by outcome (ok, retry, failed).",
		}, []string{"outcome"}),
		storeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rowhook_store_errors_total",
			Help: "State store operations that failed (retried).",
		}),
		queueCollect: &queueCollector{store: st,
			depth: prometheus.NewDesc("rowhook_queue_depth", "Deliveries in the store by webhook and state (pending, failed, dead).",
				[]string{"webhook", "state"}, nil),
			oldest: prometheus.NewDesc("rowhook_oldest_pending_age_seconds", "Age of the oldest pending delivery by webhook.",
				[]string{"webhook"}, nil),
		},
	}
	m.circuit = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "rowhook_webhook_circuit_state",
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
	for _, s := range stats {
		ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(s.Count), s.Webhook, string(s.Status))
		if s.Status == StatusPending && !s.OldestPending.IsZero() {
			ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, now.Sub(s.OldestPending).Seconds(), s.Webhook)
		}
	}
}
