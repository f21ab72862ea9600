package dispatch

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/rowhook/rowhook/internal/yamlconf"
)

// The log.delivery_success settings: how successful deliveries reach the
// INFO log. Failures are logged as they happen whatever the setting
// (a dead or failed delivery at WARN; retries at DEBUG and in the summary).
const (
	// SuccessSummary logs one INFO line per webhook per
	// log.summary_interval with the interval's counts and latencies
	// (nothing for an idle webhook). The default.
	SuccessSummary = "summary"
	// SuccessEvery logs one INFO line per successful delivery.
	SuccessEvery = "every"
	// SuccessSample logs every log.sample-th successful delivery at INFO.
	SuccessSample = "sample"
	// SuccessNone logs successful deliveries at DEBUG only.
	SuccessNone = "none"
)

// DefaultSummaryInterval is log.summary_interval's default.
const DefaultSummaryInterval = time.Minute

// LogConfig is the `log:` block: what rowhook logs about deliveries that
// went well. The format and level are command-line flags of rowhook run.
type LogConfig struct {
	// DeliverySuccess is summary (default), every, sample or none.
	DeliverySuccess string `yaml:"delivery_success"`
	// SummaryInterval is how often summary writes its lines. Default 60s.
	SummaryInterval time.Duration `yaml:"summary_interval"`
	// Sample is N for delivery_success sample: one line per N successful
	// deliveries of a webhook. Default 100.
	Sample int `yaml:"sample"`
}

func (l LogConfig) withDefaults() LogConfig {
	if l.DeliverySuccess == "" {
		l.DeliverySuccess = SuccessSummary
	}
	if l.SummaryInterval == 0 {
		l.SummaryInterval = DefaultSummaryInterval
	}
	if l.Sample == 0 {
		l.Sample = 100
	}
	return l
}

func (l LogConfig) validate() []error {
	var errs []error
	switch l.DeliverySuccess {
	case SuccessSummary, SuccessEvery, SuccessSample, SuccessNone:
	default:
		errs = append(errs, yamlconf.Errf("log.delivery_success", "unknown value %q: use summary, every, sample or none", l.DeliverySuccess))
	}
	if l.SummaryInterval < time.Second {
		errs = append(errs, yamlconf.Errf("log.summary_interval", "must be at least 1s, got %s", l.SummaryInterval))
	}
	if l.Sample < 1 {
		errs = append(errs, yamlconf.Errf("log.sample", "must be at least 1, got %d", l.Sample))
	}
	return errs
}

// outcomeLog turns delivery outcomes into INFO lines as log.delivery_success
// says. Safe for concurrent use.
type outcomeLog struct {
	cfg LogConfig
	log *slog.Logger

	mu    sync.Mutex
	start time.Time // of the current summary interval
	hooks map[string]*outcomeCounts
}

// latencySamples bounds the latencies kept per webhook per interval for
// the median: the most recent ones.
const latencySamples = 4096

type outcomeCounts struct {
	ok, retry, failed, dead int
	okSeen                  int // successes since start, for sample
	lat                     []time.Duration
	next                    int // ring position in lat once full
	max                     time.Duration
}

func newOutcomeLog(cfg LogConfig, log *slog.Logger, now time.Time) *outcomeLog {
	return &outcomeLog{cfg: cfg.withDefaults(), log: log, start: now, hooks: map[string]*outcomeCounts{}}
}

// record notes one attempt's outcome for webhook; log carries the
// delivery's attributes (id, webhook, attempt) for a per-delivery line.
func (o *outcomeLog) record(webhook string, st Status, took time.Duration, log *lazyLog, status int) {
	o.mu.Lock()
	c := o.hooks[webhook]
	if c == nil {
		c = &outcomeCounts{}
		o.hooks[webhook] = c
	}
	var sampled bool
	switch st {
	case StatusOK:
		c.ok++
		c.okSeen++
		sampled = o.cfg.DeliverySuccess == SuccessSample && (c.okSeen-1)%o.cfg.Sample == 0
		if len(c.lat) < latencySamples {
			c.lat = append(c.lat, took)
		} else {
			c.lat[c.next] = took
			c.next = (c.next + 1) % latencySamples
		}
		c.max = max(c.max, took)
	case StatusPending:
		c.retry++
	case StatusDead:
		c.dead++
	default:
		c.failed++
	}
	o.mu.Unlock()
	if st != StatusOK {
		return
	}
	switch {
	case o.cfg.DeliverySuccess == SuccessEvery:
		log.Info("delivered", "status", status, "duration", took)
	case sampled:
		log.Info("delivered", "status", status, "duration", took, "sampled", fmt.Sprintf("1 in %d", o.cfg.Sample))
	default:
		log.Debug("delivered", "status", status, "duration", took)
	}
}

// flush writes the summary lines of the interval that ends at now and
// starts a new one. Only delivery_success summary writes them.
func (o *outcomeLog) flush(now time.Time) {
	if o.cfg.DeliverySuccess != SuccessSummary {
		return
	}
	o.mu.Lock()
	interval := now.Sub(o.start)
	o.start = now
	names := make([]string, 0, len(o.hooks))
	for n, c := range o.hooks {
		if c.ok+c.retry+c.failed+c.dead > 0 {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	type line struct {
		name                    string
		ok, retry, failed, dead int
		p50, max                time.Duration
	}
	lines := make([]line, 0, len(names))
	for _, n := range names {
		c := o.hooks[n]
		l := line{name: n, ok: c.ok, retry: c.retry, failed: c.failed, dead: c.dead, max: c.max}
		if len(c.lat) > 0 {
			s := slices.Clone(c.lat)
			slices.Sort(s)
			l.p50 = s[(len(s)-1)/2]
		}
		lines = append(lines, l)
		*c = outcomeCounts{okSeen: c.okSeen, lat: c.lat[:0]}
	}
	o.mu.Unlock()
	for _, l := range lines {
		args := []any{"webhook", l.name, "interval", interval, "ok", l.ok, "retry", l.retry, "failed", l.failed, "dead", l.dead}
		if l.ok > 0 {
			args = append(args, "latency_p50", l.p50, "latency_max", l.max)
		}
		o.log.Info("deliveries", args...)
	}
}

// run writes the summary every log.summary_interval until ctx ends. The
// last, partial interval is Run's to flush once in-flight attempts are
// done: the shutdown's last word on deliveries.
func (o *outcomeLog) run(ctx context.Context, clock Clock) {
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-clock.After(o.cfg.SummaryInterval):
			o.flush(now)
		}
	}
}

// DrainReport is what Run's shutdown did with the attempts on the wire
// when it was asked to stop.
type DrainReport struct {
	// InFlight attempts were on the wire when Run was cancelled.
	InFlight int
	// Finished of them ended (delivered, failed or due again) and their
	// results were handed to the store.
	Finished int
	// LeftPending were cut short by the drain timeout: they stay pending
	// and are sent again (same webhook-id) after the restart.
	LeftPending int
}

// Drained is the report of Run's last shutdown; ok is false before Run
// has stopped.
func (d *Dispatcher) Drained() (r DrainReport, ok bool) {
	if p := d.drained.Load(); p != nil {
		return *p, true
	}
	return DrainReport{}, false
}

// sending counts the attempts on the wire, over every queue.
func (d *Dispatcher) sending() int {
	d.qmu.Lock()
	qs := make([]*queue, 0, len(d.queues))
	for _, q := range d.queues {
		qs = append(qs, q)
	}
	d.qmu.Unlock()
	n := 0
	for _, q := range qs {
		q.mu.Lock()
		n += q.sending
		q.mu.Unlock()
	}
	return n
}
