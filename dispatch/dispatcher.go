package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/dispatch/send"
	"github.com/rowhook/rowhook/rules"
)

// ErrUnknownWebhook: an event names a webhook the configuration lacks.
var ErrUnknownWebhook = errors.New("dispatch: unknown webhook")

// Deps are the Dispatcher's collaborators. Zero fields get defaults.
type Deps struct {
	// Logger receives the dispatcher's logs (default: discard).
	Logger *slog.Logger
	// Registerer registers the dispatch metrics (nil: not registered).
	Registerer prometheus.Registerer
	// Clock and Jitter drive retry and schedule timing (default: real time,
	// math/rand).
	Clock  Clock
	Jitter Jitter
	// Transport is the shared HTTP transport; webhooks with TLS options get
	// a clone. Default: a keep-alive transport honouring HTTP(S)_PROXY.
	Transport *http.Transport
	// Writeback applies responses of rules that write back; may be nil.
	Writeback Writebacker
	// WritebackRetry is how often and how far apart a failing writeback is
	// tried (rowhook passes writeback.max_attempts, backoff and
	// max_backoff). Zero fields take delivery.writeback's.
	WritebackRetry RetryConfig
	// Encoders adds content types (soap) by factory.
	Encoders map[string]EncoderFactory
	// NewSender builds the Sender of one webhook (name SubscriptionWebhook:
	// of all subscriptions) from its settings and codec. Default:
	// send.New.
	NewSender func(name string, cfg send.Config, codec send.Codec) (Sender, error)
	// AdminOpen lets the admin API answer without the bearer token: set it
	// only when the listener is bound to loopback.
	AdminOpen bool
	// Events are the event names the rules produce. When not nil,
	// subscriptions to any other name (but "*") are refused with an
	// *UnknownEventError listing them; nil accepts any name.
	Events []string
	// Resolver resolves subscription hosts for the SSRF check (default
	// net.DefaultResolver).
	Resolver *net.Resolver
	// DrainTimeout bounds how long Run waits for in-flight attempts after
	// its context is cancelled (default 10s).
	DrainTimeout time.Duration
	// PollInterval is how often idle queues look for deliveries another
	// process (rowhook redeliver) made pending (default 1s).
	PollInterval time.Duration
	// CheckpointEvery is the shortest interval between two commits that
	// only move the checkpoint (default 5ms; see checkpointEvery).
	CheckpointEvery time.Duration
	// UserAgent is sent with every request (default "rowhook").
	UserAgent string
}

// Dispatcher turns events into durable deliveries and sends them.
type Dispatcher struct {
	cfg         Config
	store       Store
	log         *slog.Logger
	clock       Clock
	jitter      Jitter
	m           *metrics
	wb          Writebacker
	wbRetry     RetryConfig
	endpoints   map[string]*endpoint
	subEndpoint *endpoint
	guard       *send.Guard
	resolver    *net.Resolver
	adminOpen   bool
	events      []string // sorted; nil: any event may be subscribed to
	drain       time.Duration
	poll        time.Duration
	newSender   func(name string, cfg send.Config, codec send.Codec) (Sender, error)
	outcomes    *outcomeLog

	cmu        sync.Mutex
	cur        *commitBatch
	writing    *commitBatch
	committing bool
	commitErr  error
	// lastCommit and pausing pace commits that only move the checkpoint
	// (checkpointEvery); nudge ends a pause early.
	lastCommit time.Time
	pausing    bool
	nudge      chan struct{}
	ckEvery    time.Duration
	// batchHint is the size of the last batch taken: a new batch starts
	// with that capacity instead of growing (and copying) to it.
	batchHint int
	// commitFailed is closed with the first failed commit: Run stops then,
	// rather than wait for the reader's next Enqueue to see the error.
	commitFailed chan struct{}

	smu  sync.RWMutex
	subs map[string]Subscription

	qmu      sync.Mutex
	queues   map[queueKey]*queue
	newQueue chan struct{}
	toStart  []*queue
	running  bool

	// bmu guards built, the deliveries buffer Enqueue reuses.
	bmu   sync.Mutex
	built []NewDelivery

	results chan *recordReq
	wbWake  chan struct{}
	drained atomic.Pointer[DrainReport]
}

// New builds a Dispatcher for cfg (validated here too) over store.
func New(cfg Config, store Store, deps Deps) (*Dispatcher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("dispatch config: %w", err)
	}
	cfg = cfg.WithDefaults()
	d := &Dispatcher{
		cfg: cfg, store: store, log: deps.Logger, clock: deps.Clock, jitter: deps.Jitter, wb: deps.Writeback,
		endpoints: map[string]*endpoint{}, resolver: deps.Resolver, adminOpen: deps.AdminOpen,
		drain: deps.DrainTimeout, poll: deps.PollInterval, events: sortedEvents(deps.Events),
		subs: map[string]Subscription{}, queues: map[queueKey]*queue{}, newQueue: make(chan struct{}, 1),
		results: make(chan *recordReq, 4096), wbWake: make(chan struct{}, 1),
		commitFailed: make(chan struct{}),
		nudge:        make(chan struct{}, 1), ckEvery: deps.CheckpointEvery,
	}
	if d.ckEvery <= 0 {
		d.ckEvery = checkpointEvery
	}
	d.wbRetry = deps.WritebackRetry.merge(cfg.Delivery.Writeback)
	if d.wbRetry.MaxAttempts < 1 || d.wbRetry.InitialInterval < 0 || d.wbRetry.MaxInterval < d.wbRetry.InitialInterval {
		return nil, fmt.Errorf("dispatch: writeback retry policy %+v: want max_attempts >= 1 and 0 <= backoff <= max_backoff", d.wbRetry)
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	d.log = d.log.With("component", "dispatch")
	if d.clock == nil {
		d.clock = realClock{}
	}
	d.outcomes = newOutcomeLog(cfg.Log, d.log, d.clock.Now())
	if d.jitter == nil {
		d.jitter = defaultJitter
	}
	if d.newSender = deps.NewSender; d.newSender == nil {
		d.newSender = func(_ string, cfg send.Config, codec send.Codec) (Sender, error) { return send.New(cfg, codec) }
	}
	if d.drain <= 0 {
		d.drain = 10 * time.Second
	}
	if d.poll <= 0 {
		d.poll = time.Second
	}
	ua := deps.UserAgent
	if ua == "" {
		ua = "rowhook"
	}
	d.m = newMetrics(deps.Registerer, store)
	d.m.queueCollect.now = d.clock.Now
	base := deps.Transport
	if base == nil {
		base = send.DefaultTransport()
	}
	names := make([]string, 0, len(cfg.Webhooks))
	for n := range cfg.Webhooks {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		ep, err := d.newEndpoint(name, cfg.Webhooks[name], base, deps.Encoders, ua)
		if err != nil {
			return nil, fmt.Errorf("webhook %s: %w", name, err)
		}
		d.endpoints[name] = ep
	}
	for _, name := range names {
		for _, st := range circuitStates {
			v := 0.0
			if st == CircuitClosed {
				v = 1
			}
			d.m.circuit.WithLabelValues(name, st).Set(v)
		}
	}
	if cfg.Admin.Subscriptions.Enabled {
		for _, st := range circuitStates {
			d.m.circuit.WithLabelValues(SubscriptionWebhook, st).Set(0)
		}
		g, err := send.NewGuard(cfg.Admin.Subscriptions.AllowedHosts)
		if err != nil {
			return nil, fmt.Errorf("admin.subscriptions.allowed_hosts: %w", err)
		}
		d.guard = g
		tr := base.Clone()
		tr.Proxy = nil // a proxy would dial for us, past the guard
		tr.DialContext = g.DialContext(&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second})
		sc := WebhookConfig{Method: "POST", ContentType: ContentJSON, Signing: cfg.Admin.Subscriptions.Signing, URL: "https://subscriber"}.withDefaults(cfg.Delivery)
		ep, err := d.newEndpoint(SubscriptionWebhook, sc, tr, nil, ua)
		if err != nil {
			return nil, fmt.Errorf("subscriptions: %w", err)
		}
		d.subEndpoint = ep
	}
	d.m.initSeries(cfg)
	return d, nil
}

func (d *Dispatcher) newEndpoint(name string, w WebhookConfig, base *http.Transport, encoders map[string]EncoderFactory, ua string) (*endpoint, error) {
	ep := &endpoint{name: name, cfg: w}
	var codec send.Codec
	if f, ok := encoders[w.ContentType]; ok {
		var err error
		if codec, err = f(name, w); err != nil {
			return nil, fmt.Errorf("content_type %s: %w", w.ContentType, err)
		}
		if codec == nil {
			return nil, fmt.Errorf("content_type %s: the encoder factory returned no codec", w.ContentType)
		}
	} else if enc, ok := send.Builtin(w.Method, w.ContentType, w.XMLRoot); ok {
		codec = send.Plain(enc)
	} else {
		return nil, fmt.Errorf("content_type %s: no encoder registered (is the SOAP package wired in?)", w.ContentType)
	}
	sender, err := d.newSender(name, send.Config{
		URL: w.URL, PerDeliveryURL: name == SubscriptionWebhook, Method: w.Method,
		Headers: w.Headers, SecretHeaders: w.SecretHeaders, Auth: w.Auth, TLS: w.TLS, Signing: w.Signing,
		Timeout: w.Timeout, MaxResponseBytes: d.cfg.Delivery.MaxResponseBytes, BodyLimit: d.cfg.State.BodyLimit,
		UserAgent: ua, Transport: base, Now: d.clock.Now,
	}, codec)
	if err != nil {
		return nil, err
	}
	if sender == nil {
		return nil, errors.New("Deps.NewSender returned no sender")
	}
	ep.sender = sender
	if w.RateLimit != "" {
		lim, burst, err := parseRate(w.RateLimit)
		if err != nil {
			return nil, err
		}
		ep.limiter = rate.NewLimiter(lim, burst)
	}
	if w.Mode == ModeScheduled {
		s, err := ParseSchedule(w.Schedule)
		if err != nil {
			return nil, err
		}
		loc := time.UTC
		if w.Timezone != "" {
			if loc, err = time.LoadLocation(w.Timezone); err != nil {
				return nil, err
			}
		}
		ep.sched = WithLocation(s, loc)
	}
	return ep, nil
}

// Checkpoint returns where the binlog reader should resume.
func (d *Dispatcher) Checkpoint(ctx context.Context) (cdc.Checkpoint, bool, error) {
	return d.store.Checkpoint(ctx)
}

// Enqueue stores the deliveries of events and the checkpoint cp in one
// store transaction. Call it once per binlog transaction, in binlog order,
// even with no events (to move the checkpoint). It hands both to the
// committer and returns; a commit takes whatever accumulated while the
// previous one ran (group commit), so the reader never waits for the disk
// unless maxPendingDeliveries are waiting while a commit runs: then it
// blocks until the committer takes them (back-pressure; at most two full
// batches are held: one being written, one filling). Nothing is lost by returning
// early: the checkpoint is written only together with the deliveries of
// the transactions before it, so after a crash the reader resumes before
// any event that was not stored. Flush waits until everything enqueued is
// durable.
//
// An error means the store failed: nothing after the last durable
// checkpoint is trusted, every later call fails too, and the reader must
// restart from Checkpoint (replayed events get the same delivery ids).
func (d *Dispatcher) Enqueue(ctx context.Context, cp cdc.Checkpoint, events []rules.Event) error {
	if len(events) == 0 {
		return d.commit(ctx, cp, nil, false)
	}
	// The deliveries are built into a buffer kept from call to call:
	// commit copies them into its batch.
	d.bmu.Lock()
	defer d.bmu.Unlock()
	ds, err := d.build(d.built[:0], events)
	if err == nil {
		err = d.commit(ctx, cp, ds, false)
	}
	// The batch holds the deliveries now, not this buffer; one grown
	// past a batch by a huge transaction is not kept.
	clear(ds[:cap(ds)])
	if d.built = ds[:0]; cap(ds) > maxPendingDeliveries {
		d.built = nil
	}
	return err
}

// Flush returns once everything enqueued so far is durable.
func (d *Dispatcher) Flush(ctx context.Context) error {
	return d.commit(ctx, cdc.Checkpoint{}, nil, true)
}

// build appends the deliveries of events to ds (also on error: the
// caller clears them).
func (d *Dispatcher) build(ds []NewDelivery, events []rules.Event) ([]NewDelivery, error) {
	if len(events) == 0 {
		return ds, nil
	}
	now := d.clock.Now().UTC()
	// A scheduled webhook's next slot, computed once per call (every
	// delivery has the same now), and the subscriptions to the last event
	// name, read once per name and call.
	var next nextSlot
	var subsOf string
	var subs []Subscription
	for i := range events {
		ev := &events[i]
		var change json.RawMessage
		if d.wb != nil && d.wb.Needs(ev.Rule) {
			var err error
			if change, err = cdc.MarshalChange(ev.Change); err != nil {
				return ds, fmt.Errorf("enqueue event %s: encode change: %w", ev.ID, err)
			}
		}
		for _, name := range ev.Webhooks {
			ep, ok := d.endpoints[name]
			if !ok {
				return ds, fmt.Errorf("enqueue event %s of rule %s: %w %q", ev.ID, ev.Rule, ErrUnknownWebhook, name)
			}
			ds = append(ds, NewDelivery{})
			d.fillDelivery(&ds[len(ds)-1], ev, ep, name, "", "", now, next.at(ep, now), change)
		}
		if d.subEndpoint != nil {
			if subs == nil || subsOf != ev.Name {
				subsOf, subs = ev.Name, d.subscriptionsFor(ev.Name)
			}
			for _, s := range subs {
				ds = append(ds, NewDelivery{})
				d.fillDelivery(&ds[len(ds)-1], ev, d.subEndpoint, SubscriptionWebhook, s.ID, s.URL, now, next.at(d.subEndpoint, now), change)
			}
		}
	}
	return ds, nil
}

// nextSlot remembers the first attempt time of the last endpoint asked
// about.
type nextSlot struct {
	ep   *endpoint
	next time.Time
}

// at is when the first attempt to ep is due for a delivery made at now.
func (n *nextSlot) at(ep *endpoint, now time.Time) time.Time {
	if ep.sched == nil {
		return now
	}
	if n.ep != ep {
		n.ep, n.next = ep, ep.sched.Next(now)
	}
	return n.next
}

func (d *Dispatcher) newDelivery(ev *rules.Event, ep *endpoint, webhook, sub, subURL string, now time.Time, change json.RawMessage) NewDelivery {
	var nd NewDelivery
	var next nextSlot
	d.fillDelivery(&nd, ev, ep, webhook, sub, subURL, now, next.at(ep, now), change)
	return nd
}

// fillDelivery sets *nd (zero) to the delivery of ev to ep, first due at
// nextAt.
func (d *Dispatcher) fillDelivery(nd *NewDelivery, ev *rules.Event, ep *endpoint, webhook, sub, subURL string, now, nextAt time.Time, change json.RawMessage) {
	nd.ID, nd.EventID, nd.Rule, nd.Event, nd.Webhook = DeliveryID(ev.Timestamp, ev.ID, webhook, sub), ev.ID, ev.Rule, ev.Name, webhook
	nd.Subscription, nd.Key, nd.Once, nd.Method, nd.EventTime = sub, ev.Key, ev.Once, ep.cfg.Method, ev.Timestamp
	nd.CreatedAt, nd.NextAt, nd.Change = now, nextAt, change
	req, err := ep.build(ev, subURL)
	nd.URL, nd.ContentType, nd.Body, nd.Headers = req.URL, req.ContentType, req.Body, req.Headers
	if err != nil {
		nd.Error = err.Error()
		d.log.Error("delivery cannot be built; stored as failed", "delivery_id", nd.ID, "webhook", webhook, "event_id", ev.ID, "error", nd.Error)
	}
}

type commitBatch struct {
	cp    cdc.Checkpoint
	ds    []NewDelivery
	taken chan struct{} // closed when the committer starts writing it
	done  chan struct{} // closed when written (err says how)
	err   error
	// awaited: somebody waits for it to be durable (Flush).
	awaited bool
}

// checkpointEvery is the shortest interval between two commits that only
// move the checkpoint (binlog transactions no rule matched) and that
// nobody waits for. Written one per transaction, they were a SQLite commit
// each time the previous one finished: 9% of the CPU of a catch-up of
// one-row transactions, and a commit per transaction on a busy CRM whose
// writes match nothing. A delivery, or a Flush, ends the pause at once.
const checkpointEvery = 5 * time.Millisecond

// maxPendingDeliveries bounds the deliveries waiting for the next commit:
// past it Enqueue waits until the committer takes them (back-pressure). Each holds its body
// and change in memory until committed; 20,000 held about 80 MB while
// catching up, which GC percent 400 let grow to over 400 MB resident
// (rowhook bench --only rss), and batches of 2,000 commit as fast.
const maxPendingDeliveries = 2000

// commit adds ds and cp to the batch the committer writes next, starting
// the committer when idle. While one commit runs the next batch fills up,
// so commits grow with the load (group commit).
func (d *Dispatcher) commit(ctx context.Context, cp cdc.Checkpoint, ds []NewDelivery, wait bool) error {
	d.cmu.Lock()
	if d.commitErr != nil {
		err := d.commitErr
		d.cmu.Unlock()
		return err
	}
	if d.cur == nil {
		if cp.IsZero() && len(ds) == 0 {
			// Nothing new: a Flush waits for the commit under way.
			b := d.writing
			d.cmu.Unlock()
			if wait && b != nil {
				return waitBatch(ctx, b)
			}
			return nil
		}
		d.cur = &commitBatch{taken: make(chan struct{}), done: make(chan struct{}),
			ds: make([]NewDelivery, 0, max(d.batchHint, len(ds)))}
	}
	b := d.cur
	if !cp.IsZero() {
		b.cp = cp
	}
	b.ds = append(b.ds, ds...)
	if wait {
		b.awaited = true
	}
	if d.pausing && (len(ds) > 0 || wait) {
		select {
		case d.nudge <- struct{}{}:
		default:
		}
	}
	if !d.committing {
		d.committing = true
		go d.commitLoop()
	}
	full := len(b.ds) >= maxPendingDeliveries
	d.cmu.Unlock()
	if wait {
		return waitBatch(ctx, b)
	}
	if !full {
		return nil
	}
	// Back-pressure: a full batch waits until the committer takes it, not
	// until it is written, so the next batch fills while this one is
	// written (reading and rules on one core, the store on the other:
	// docs/benchmarks.md). At most two full batches are in memory.
	select {
	case <-b.taken:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func waitBatch(ctx context.Context, b *commitBatch) error {
	select {
	case <-b.done:
		return b.err
	case <-ctx.Done():
		// The batch is committed regardless.
		return ctx.Err()
	}
}

// commitLoop writes batches until none is waiting.
func (d *Dispatcher) commitLoop() {
	d.cmu.Lock()
	for d.cur != nil {
		b := d.cur
		if len(b.ds) == 0 && !b.awaited {
			if wait := d.ckEvery - time.Since(d.lastCommit); wait > 0 {
				d.pause(wait)
				continue
			}
		}
		d.cur, d.writing = nil, b
		d.batchHint = len(b.ds)
		close(b.taken)
		d.cmu.Unlock()
		b.err = d.storeCommit(b)
		d.cmu.Lock()
		d.lastCommit = time.Now()
		d.writing = nil
		if b.err != nil && d.commitErr == nil {
			d.commitErr = b.err
			close(d.commitFailed)
		}
		close(b.done)
		if d.commitErr != nil && d.cur != nil {
			d.cur.err = d.commitErr
			close(d.cur.taken)
			close(d.cur.done)
			d.cur = nil
		}
	}
	d.committing = false
	d.cmu.Unlock()
}

// pause waits up to wait, or until commit nudges: a delivery or a waiter
// joined the batch. Called and returns with cmu held.
func (d *Dispatcher) pause(wait time.Duration) {
	select {
	case <-d.nudge: // stale: from before this pause
	default:
	}
	d.pausing = true
	d.cmu.Unlock()
	t := time.NewTimer(wait)
	select {
	case <-t.C:
	case <-d.nudge:
		t.Stop()
	}
	d.cmu.Lock()
	d.pausing = false
}

func (d *Dispatcher) storeCommit(b *commitBatch) error {
	if b.cp.IsZero() && len(b.ds) == 0 {
		return nil
	}
	// Never the caller's context: the batch holds other callers' events.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	n, err := d.store.Commit(ctx, b.cp, b.ds)
	d.m.commitDur.Observe(time.Since(start).Seconds())
	if err != nil {
		d.m.storeErrors.Inc()
		d.log.Error("store commit failed; the binlog reader must restart from the last checkpoint", "error", err, "deliveries", len(b.ds))
		return fmt.Errorf("enqueue: %w", err)
	}
	d.m.enqueued.Add(float64(n))
	d.committed(b.ds, n == len(b.ds))
	return nil
}

func (d *Dispatcher) subscriptionsFor(event string) []Subscription {
	d.smu.RLock()
	defer d.smu.RUnlock()
	out := []Subscription{} // not nil: build caches it
	for _, s := range d.subs {
		if s.Event == event || s.Event == "*" {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b Subscription) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// loadState reads subscriptions and disabled webhooks from the store.
func (d *Dispatcher) loadState(ctx context.Context) error {
	if d.subEndpoint != nil {
		subs, err := d.store.Subscriptions(ctx)
		if err != nil {
			return err
		}
		d.smu.Lock()
		for _, s := range subs {
			d.subs[s.ID] = s
		}
		d.smu.Unlock()
	}
	disabled, err := d.store.DisabledWebhooks(ctx)
	if err != nil {
		return err
	}
	for name, reason := range disabled {
		if _, ok := d.endpoints[name]; ok {
			q := d.queue(queueKey{webhook: name})
			q.mu.Lock()
			q.disabled = reason
			q.mu.Unlock()
			d.m.setWebhookState(name, stateDisabled)
		}
	}
	return nil
}

// Run sends deliveries until ctx is cancelled, then lets in-flight attempts
// finish (at most DrainTimeout), records their results, writes a held
// checkpoint and returns nil. It stops the same way, returning the error,
// when an outbox commit fails (the caller must restart reading from the
// checkpoint). It also runs pending writebacks and the delivery log's
// retention job.
func (d *Dispatcher) Run(ctx context.Context) error {
	if err := d.loadState(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("dispatch: load state: %w", err)
	}
	// A failed outbox commit stops Run as a cancel does: the events of a
	// quiet source's last transactions are not in the outbox, and the
	// reader may not call Enqueue (and see the error) for a long time, so
	// rowhook must exit for the restart to re-read them from the checkpoint.
	ctx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	go func() {
		select {
		case <-d.commitFailed:
			stopRun()
		case <-ctx.Done():
		}
	}()
	attemptCtx, cancelAttempts := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelAttempts()
	var attempts, pumps, background sync.WaitGroup
	recorderDone := make(chan struct{})
	go func() {
		defer close(recorderDone)
		d.recorder(context.WithoutCancel(ctx), ctx.Done())
	}()
	start := func(q *queue) {
		qctx, cancel := context.WithCancel(ctx)
		q.mu.Lock()
		q.cancel = cancel
		q.mu.Unlock()
		pumps.Add(1)
		go func() {
			defer pumps.Done()
			defer cancel()
			d.pump(qctx, q, attemptCtx, &attempts)
		}()
	}
	d.qmu.Lock()
	d.running = true
	for _, q := range d.queues {
		d.toStart = append(d.toStart, q)
	}
	select {
	case d.newQueue <- struct{}{}:
	default:
	}
	d.qmu.Unlock()
	for name := range d.endpoints {
		d.queue(queueKey{webhook: name})
	}
	d.smu.RLock()
	for id := range d.subs {
		d.queue(queueKey{SubscriptionWebhook, id})
	}
	d.smu.RUnlock()
	if d.wb != nil {
		background.Add(1)
		go func() {
			defer background.Done()
			d.writebackLoop(ctx)
		}()
	}
	background.Add(1)
	go func() {
		defer background.Done()
		d.cleanupLoop(ctx)
	}()
	background.Add(1)
	go func() {
		defer background.Done()
		d.outcomes.run(ctx, d.clock)
	}()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-d.newQueue:
			d.qmu.Lock()
			qs := d.toStart
			d.toStart = nil
			d.qmu.Unlock()
			for _, q := range qs {
				start(q)
			}
		}
	}
	d.qmu.Lock()
	d.running = false
	d.qmu.Unlock()
	pumps.Wait()
	inFlight := d.sending()
	drained := make(chan struct{})
	go func() {
		attempts.Wait()
		close(drained)
	}()
	left := 0
	select {
	case <-drained:
	case <-time.After(d.drain):
		left = d.sending()
		d.log.Warn("drain timeout: cancelling in-flight attempts; they stay pending and are sent again on restart", "timeout", d.drain, "cancelled", left)
		cancelAttempts()
		<-drained
	}
	d.drained.Store(&DrainReport{InFlight: inFlight, Finished: inFlight - left, LeftPending: left})
	close(d.results)
	<-recorderDone
	background.Wait()
	d.outcomes.flush(d.clock.Now())
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err := d.Flush(fctx)
	select {
	case <-d.commitFailed:
		if err == nil {
			err = d.commitErr
		}
		return fmt.Errorf("dispatch: stopped after the outbox could not be written: %w", err)
	default:
	}
	if err != nil {
		return fmt.Errorf("dispatch: final checkpoint flush: %w", err)
	}
	return nil
}

func (d *Dispatcher) cleanupLoop(ctx context.Context) {
	for {
		cutoff := d.clock.Now().Add(-d.cfg.State.Retention)
		n, err := d.store.Prune(ctx, cutoff)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			d.log.Error("delivery log clean-up failed", "error", err)
		case n > 0:
			d.log.Info("delivery log cleaned up", "deleted", n, "older_than", cutoff)
		}
		select {
		case <-ctx.Done():
			return
		case <-d.clock.After(d.cfg.State.CleanupInterval):
		}
	}
}
