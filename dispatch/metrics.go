package dispatch

import (
	"context"
	"errors"
	"net"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rowhook/rowhook/dispatch/send"
)

// Metric names are namespace_name: the dispatcher's names
// (rowhook_delivery_attempts_total, rowhook_queue_depth, …) predate a
// subsystem and keep their exported names.
const namespace = "rowhook"

type metrics struct {
	attempts     *prometheus.CounterVec
	attemptDur   *prometheus.HistogramVec
	latency      *prometheus.HistogramVec
	retries      *prometheus.CounterVec
	deadLetters  *prometheus.CounterVec
	commitDur    prometheus.Histogram
	enqueued     prometheus.Counter
	state        *prometheus.GaugeVec
	storeErrors  prometheus.Counter
	queueCollect *queueCollector
	circuit      *prometheus.GaugeVec
}

// Attempt classes (label class of rowhook_delivery_attempts_total): what
// came back, a fixed set.
const (
	class2xx      = "2xx"
	class3xx      = "3xx"
	class4xx      = "4xx"
	class5xx      = "5xx"
	classRejected = "rejected" // a 2xx the response check refused (a SOAP fault)
	classTimeout  = "timeout"  // no answer within the webhook's timeout
	classNetwork  = "network"  // no answer: connection refused or reset, DNS, TLS, a blocked address
	classRequest  = "request"  // not sent: the request could not be built (no URL, credentials)
)

var attemptClasses = []string{class2xx, class3xx, class4xx, class5xx, classRejected, classTimeout, classNetwork, classRequest}

// Webhook states (label state of rowhook_webhook_state), one-hot.
const (
	stateRunning  = "running"
	statePaused   = "paused"
	stateDisabled = "disabled"
)

var webhookStates = []string{stateRunning, statePaused, stateDisabled}

func newMetrics(reg prometheus.Registerer, st Store) *metrics {
	m := &metrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "delivery_attempts_total",
			Help: "Delivery attempts by webhook and class of answer: 2xx, 3xx, 4xx, 5xx, rejected (a 2xx the response check refused), timeout, network (no answer), request (not sent).",
		}, []string{"webhook", "class"}),
		attemptDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "delivery_attempt_duration_seconds",
			Help:    "Duration of delivery attempts, request to response body read.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"webhook"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "delivery_latency_seconds",
			Help: "Seconds from the binlog commit of the row change (the event time) to the receiver's successful answer, by webhook. " +
				"From the event time: a re-delivery, a backlog or a scheduled webhook shows as a large value; the binlog keeps whole seconds, so a value is up to 1 s above the true latency.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600},
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
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "webhook_state",
			Help: "Webhook state, 1 for the current one and 0 for the others: running, paused (failing continuously for delivery.pause_after), disabled (410 Gone, until re-enabled).",
		}, []string{"webhook", "state"}),
		storeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "store_errors_total",
			Help: "State store operations that failed (retried), queue gauge reads included.",
		}),
	}
	m.queueCollect = newQueueCollector(st, m.storeErrors)
	m.circuit = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace, Name: "webhook_circuit_state",
		Help: "Endpoint circuit by webhook and state (closed, open, half_open): 1 for the webhook's state, 0 for the others; for webhook=\"subscription\", how many subscriptions are in each state.",
	}, []string{"webhook", "state"})
	if reg != nil {
		reg.MustRegister(m.circuit, m.attempts, m.attemptDur, m.latency, m.retries, m.deadLetters, m.commitDur, m.enqueued, m.state,
			m.storeErrors, m.queueCollect)
	}
	return m
}

// Queue gauges are read from the store in the background, never by the
// scrape: with a million pending deliveries the read takes seconds
// (BenchmarkScrape_1MPending), and a long read transaction keeps SQLite from
// checkpointing its WAL.
const (
	// queueStatsWait is how long a scrape waits for the read it started
	// before serving the previous values.
	queueStatsWait = 50 * time.Millisecond
	// queueStatsSpacing: the next read starts no sooner than this many
	// times the last read's duration after it ended, so the store spends at
	// most a tenth of its time in this read whatever the scrape interval.
	queueStatsSpacing = 10
	// queueStatsMaxGap bounds that pause; queueStatsTimeout bounds a read.
	queueStatsMaxGap  = 10 * time.Minute
	queueStatsTimeout = 5 * time.Minute
)

// queueCollector serves the queue gauges from the last read of the store
// (Store.Stats). A scrape starts a read when none is running and the last
// one ended long enough ago, waits for that read up to queueStatsWait, and
// serves whatever is newest, with its age: a slow or failing store makes
// the values older, never the scrape slow or failed. The store is read
// rather than counted in memory so the gauges are right when another
// process (rowhook redeliver, prune) changed it.
type queueCollector struct {
	store                        Store
	errors                       prometheus.Counter
	depth, terminal, oldest, age *prometheus.Desc
	now                          func() time.Time
	// webhooks are the webhook labels known at start: their series are
	// reported at 0 when the store has no delivery for them.
	webhooks []string

	mu      sync.Mutex
	stats   []QueueStat
	readAt  time.Time     // when stats were read (c.now); zero before the first read
	since   time.Time     // when the dispatcher was made (c.now), for the age before the first read
	running chan struct{} // closed when the read in flight ends; nil when none
	next    time.Time     // earliest start of the next read (wall clock)
}

func newQueueCollector(st Store, errors prometheus.Counter) *queueCollector {
	return &queueCollector{store: st, errors: errors, now: time.Now,
		depth: prometheus.NewDesc(prometheus.BuildFQName(namespace, "", "queue_depth"),
			"Pending deliveries (waiting for their first or next attempt) by webhook.", []string{"webhook"}, nil),
		terminal: prometheus.NewDesc(prometheus.BuildFQName(namespace, "", "dead_letter_queue_depth"),
			"Deliveries given up on and kept in the store by webhook and status: dead (out of attempts) or failed (refused for good, 410 Gone, failed by an operator); they leave when re-delivered or pruned.",
			[]string{"webhook", "status"}, nil),
		oldest: prometheus.NewDesc(prometheus.BuildFQName(namespace, "", "oldest_pending_age_seconds"),
			"Age of the oldest pending delivery by webhook (0 when none).", []string{"webhook"}, nil),
		age: prometheus.NewDesc(prometheus.BuildFQName(namespace, "", "queue_stats_age_seconds"),
			"Seconds since rowhook_queue_depth, rowhook_dead_letter_queue_depth and rowhook_oldest_pending_age_seconds were read from the store (since start before the first read).", nil, nil),
	}
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.depth
	ch <- c.terminal
	ch <- c.oldest
	ch <- c.age
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	// Wait only for a read this scrape started: one already running for
	// longer is slow, and waiting for it would make every scrape slow.
	var started chan struct{}
	c.mu.Lock()
	if c.running == nil && !time.Now().Before(c.next) {
		started = make(chan struct{})
		c.running = started
		go c.read(started)
	}
	c.mu.Unlock()
	if started != nil {
		t := time.NewTimer(queueStatsWait)
		select {
		case <-started:
		case <-t.C:
		}
		t.Stop()
	}
	c.mu.Lock()
	stats, readAt, since := c.stats, c.readAt, c.since
	c.mu.Unlock()
	now := c.now()
	if readAt.IsZero() {
		ch <- prometheus.MustNewConstMetric(c.age, prometheus.GaugeValue, max(0, now.Sub(since).Seconds()))
		return
	}
	ch <- prometheus.MustNewConstMetric(c.age, prometheus.GaugeValue, max(0, now.Sub(readAt).Seconds()))
	type key struct {
		webhook string
		status  Status
	}
	seen := map[key]bool{}
	for _, s := range stats {
		switch s.Status {
		case StatusPending:
			ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(s.Count), s.Webhook)
			age := 0.0
			if !s.OldestPending.IsZero() {
				// From the current clock: a stale read still shows
				// the oldest delivery growing older.
				age = max(0, now.Sub(s.OldestPending).Seconds())
			}
			ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, age, s.Webhook)
		case StatusDead, StatusFailed:
			ch <- prometheus.MustNewConstMetric(c.terminal, prometheus.GaugeValue, float64(s.Count), s.Webhook, string(s.Status))
		default:
			continue
		}
		seen[key{s.Webhook, s.Status}] = true
	}
	for _, w := range c.webhooks {
		if !seen[key{w, StatusPending}] {
			ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, 0, w)
			ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, 0, w)
		}
		for _, st := range []Status{StatusDead, StatusFailed} {
			if !seen[key{w, st}] {
				ch <- prometheus.MustNewConstMetric(c.terminal, prometheus.GaugeValue, 0, w, string(st))
			}
		}
	}
}

// read reads the store's queue stats and closes done.
func (c *queueCollector) read(done chan struct{}) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), queueStatsTimeout)
	stats, err := c.store.Stats(ctx)
	cancel()
	took := time.Since(start)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil {
		c.stats, c.readAt = stats, c.now()
	} else {
		c.errors.Inc()
	}
	c.next = time.Now().Add(min(queueStatsSpacing*took, queueStatsMaxGap))
	c.running = nil
	close(done)
}

// initSeries creates at 0 the series whose label values are known at
// start: each configured webhook (and the subscriptions' label when
// subscriptions are on) with every attempt class and webhook state. A
// series that first appears at 1 hides that event from increase() and
// rate(), so RowhookDeadLetters would miss the first dead letter.
func (m *metrics) initSeries(cfg Config) {
	names := make([]string, 0, len(cfg.Webhooks)+1)
	for n := range cfg.Webhooks {
		names = append(names, n)
	}
	if cfg.Admin.Subscriptions.Enabled {
		names = append(names, SubscriptionWebhook)
	}
	sort.Strings(names)
	for _, n := range names {
		for _, c := range attemptClasses {
			m.attempts.WithLabelValues(n, c)
		}
		m.attemptDur.WithLabelValues(n)
		m.latency.WithLabelValues(n)
		m.retries.WithLabelValues(n)
		m.deadLetters.WithLabelValues(n)
		m.setWebhookState(n, stateRunning)
	}
	m.queueCollect.webhooks = names
	m.queueCollect.since = m.queueCollect.now()
}

// setWebhookState sets webhook's state gauge to 1 for state, 0 for the others.
func (m *metrics) setWebhookState(webhook, state string) {
	for _, s := range webhookStates {
		v := 0.0
		if s == state {
			v = 1
		}
		m.state.WithLabelValues(webhook, s).Set(v)
	}
}

// attempted counts an attempt by the class of what came back (a, err from
// Dispatcher.attempt) and, when it succeeded, the delivery's latency from
// its event time to now.
func (m *metrics) attempted(webhook string, a Attempt, err error, eventTime, now time.Time) {
	m.attempts.WithLabelValues(webhook, attemptClass(a.Status, err)).Inc()
	if err == nil && !eventTime.IsZero() {
		m.latency.WithLabelValues(webhook).Observe(max(0, now.Sub(eventTime).Seconds()))
	}
}

// attemptClass is the class label of an attempt that got status (0 when no
// answer came) and err.
func attemptClass(status int, err error) string {
	var reqErr *send.RequestError
	var netErr net.Error
	switch {
	case status >= 500:
		return class5xx
	case status >= 400:
		return class4xx
	case status >= 300:
		return class3xx
	case status > 0 && err != nil:
		return classRejected
	case status > 0:
		return class2xx
	case errors.As(err, &reqErr):
		return classRequest
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return classTimeout
	}
	return classNetwork
}
