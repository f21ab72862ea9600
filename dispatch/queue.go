package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// queueKey names a delivery queue: a configured webhook, or one
// subscription. Each queue has its own pump and worker budget, so a slow
// endpoint never holds up another.
type queueKey struct {
	webhook      string
	subscription string
}

func (k queueKey) String() string {
	if k.subscription != "" {
		return k.webhook + "/" + k.subscription
	}
	return k.webhook
}

// queue is the in-memory state of one queue: attempts in flight (still
// pending in the store until their result is recorded), and the pause.
type queue struct {
	key    queueKey
	ep     *endpoint
	wakeCh chan struct{}
	// work hands a delivery to start to an idle attempt goroutine
	// (attempter); unbuffered: only one waiting for it takes it.
	work chan *Delivery

	mu       sync.Mutex
	inflight map[string]bool
	// sending counts attempts on the wire; it bounds concurrency, while
	// inflight also holds attempts waiting for their result to be stored.
	sending int
	// released remembers when attempts finished, by fill pass: a pass
	// that read the store before an attempt's result was recorded must
	// not start that delivery again.
	released map[string]uint64
	pass     uint64
	// ready holds due deliveries read ahead (unordered queues), and
	// readyIDs their ids: a read-ahead reads them again (still pending).
	ready    []Delivery
	readyIDs map[string]bool
	// readyArr is q.ready's array from its start (fill takes rows from
	// q.ready's front; appendReady moves them back to the start).
	readyArr []Delivery
	// fetching is set while a read-ahead runs; fetchPass is the pass it
	// started at (results released since then are stale in its rows).
	fetching  bool
	fetchPass uint64
	// known is set while q.ready and q.inflight hold every pending
	// delivery of the queue due before knownUntil: a read from the start
	// of the due rows reached their end with nothing added to the store
	// meanwhile that was not also handed to q.ready (push). While known,
	// fill reads nothing from the store; commits push their new
	// deliveries. gen counts what makes the store hold due rows the queue
	// has not seen (a commit that could not push, a re-run): a read that
	// began at another gen proves nothing. Unordered queues only.
	known      bool
	knownUntil time.Time
	gen        uint64
	// afterAt and afterSeq are where the rows read so far end, in due
	// order: a read-ahead reads on from there instead of reading again
	// what is in flight or ready. Zero afterSeq: read from the start (the
	// last read reached the end of the due rows).
	afterAt  time.Time
	afterSeq int64
	// scan is how many rows a per-record queue's next pass reads (0: the
	// least, orderedLimit).
	scan int
	// pumping is set while the queue's pump runs: attempt goroutines
	// start ready rows themselves only then (next).
	pumping bool
	// cb is the endpoint circuit (circuit.go).
	cb       circuit
	removed  bool // a subscription deleted: its gauges are no longer kept
	disabled string
	cancel   context.CancelFunc
}

// queue returns the queue for k, creating it (and asking Run to start its
// pump) on first use.
func (d *Dispatcher) queue(k queueKey) *queue {
	d.qmu.Lock()
	defer d.qmu.Unlock()
	if q, ok := d.queues[k]; ok {
		return q
	}
	ep := d.endpoints[k.webhook]
	if k.subscription != "" {
		ep = d.subEndpoint
	}
	if ep == nil {
		return nil
	}
	q := &queue{key: k, ep: ep, wakeCh: make(chan struct{}, 1), work: make(chan *Delivery), inflight: map[string]bool{}, released: map[string]uint64{}, readyIDs: map[string]bool{}}
	q.cb.state = CircuitClosed
	if k.subscription != "" {
		// Configured webhooks start with closed at 1 (newMetrics); the
		// subscription series counts subscriptions per state.
		d.m.circuit.WithLabelValues(SubscriptionWebhook, CircuitClosed).Inc()
	}
	d.queues[k] = q
	if d.running {
		d.toStart = append(d.toStart, q)
		select {
		case d.newQueue <- struct{}{}:
		default:
		}
	}
	return q
}

// runningQueue returns the queue for k, creating it when Run is running;
// nil before Run starts (Run reads every queue from the store) or for a
// webhook that no longer exists.
func (d *Dispatcher) runningQueue(k queueKey) *queue {
	d.qmu.Lock()
	q, ok := d.queues[k]
	running := d.running
	d.qmu.Unlock()
	if ok {
		return q
	}
	if !running {
		return nil
	}
	return d.queue(k)
}

// committed hands the deliveries of a store commit to their queues (push)
// and wakes them. all tells that the store inserted every one of ds: when
// it skipped some (duplicates, once markers), which ones is not known, and
// the queues read the store instead.
func (d *Dispatcher) committed(ds []NewDelivery, all bool) {
	now := d.clock.Now()
	var keys []queueKey
	byKey := map[queueKey][]int{}
	for i := range ds {
		k := queueKey{ds[i].Webhook, ds[i].Subscription}
		idx, seen := byKey[k]
		if !seen {
			keys = append(keys, k)
		}
		byKey[k] = append(idx, i)
	}
	for _, k := range keys {
		q := d.runningQueue(k)
		if q == nil {
			continue
		}
		if all {
			q.push(ds, byKey[k], now)
		} else {
			q.mu.Lock()
			q.unknown()
			q.mu.Unlock()
		}
		q.wake()
	}
}

func (q *queue) wake() {
	select {
	case q.wakeCh <- struct{}{}:
	default:
	}
}

// unknown notes that the store may hold due deliveries q has not seen:
// the next fill reads them. q.mu is held.
func (q *queue) unknown() {
	q.known = false
	q.gen++
}

// forget drops what q holds in memory besides its attempts in flight (its
// ready rows may have changed in the store: a webhook disabled, its
// pending deliveries failed) and reads again. q.mu is held.
func (q *queue) forget() {
	q.unknown()
	clear(q.ready)
	q.ready = q.readyArr[:0]
	clear(q.readyIDs)
}

// maxPushed bounds the deliveries a commit hands to a queue's ready list:
// past it (an endpoint slower than the binlog) the queue reads them from
// the store as it goes, so memory stays bounded whatever the backlog.
const maxPushed = 2 * prefetch

// push hands the deliveries ds[idx] a commit just stored to q, when q
// knows every other due delivery (known): the pump starts them without
// reading the store. Deliveries due later only move knownUntil; those
// stored as failed (their request could not be built) are not sent.
// Otherwise, or when q would hold too many, q reads the store at its next
// fill. Nothing is copied for a queue that cannot take them (catching up
// to a scheduled webhook hands over nothing).
func (q *queue) push(ds []NewDelivery, idx []int, now time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.ep.cfg.Ordering == OrderingPerRecord {
		return
	}
	if !q.known {
		q.unknown()
		return
	}
	due := 0
	for _, i := range idx {
		nd := &ds[i]
		switch {
		case nd.Error != "":
		case nd.NextAt.After(now):
			if nd.NextAt.Before(q.knownUntil) {
				q.knownUntil = nd.NextAt
			}
		default:
			due++
		}
	}
	if len(q.ready)+due > maxPushed {
		q.unknown()
		return
	}
	for _, i := range idx {
		nd := &ds[i]
		if nd.Error != "" || nd.NextAt.After(now) || q.inflight[nd.ID] || q.readyIDs[nd.ID] {
			continue
		}
		q.appendReady(Delivery{NewDelivery: *nd, Status: StatusPending, UpdatedAt: nd.CreatedAt})
		q.readyIDs[nd.ID] = true
	}
}

// due notes that the store holds a pending delivery of q due at next that
// q does not hold (an attempt to retry, or the earliest the store reports),
// or, with a zero next, one due now (an attempt whose result was not
// stored): q reads the store by then.
func (q *queue) due(next time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	switch {
	case next.IsZero() || !q.known:
		// Not known, or a read under way: the read that makes the queue
		// known must begin after this, so that it sees the row.
		q.unknown()
	case next.Before(q.knownUntil):
		q.knownUntil = next
	}
}

func (q *queue) doneSending() {
	q.mu.Lock()
	q.sending--
	q.mu.Unlock()
	q.wake()
}

// next is the attempt goroutine's way to its queue's next delivery once
// its attempt freed its slot (the slot is still counted in q.sending,
// without waking the pump): while the pump runs, the queue is unordered,
// its circuit closed and it is not disabled, the first ready row nobody
// is sending starts at once, on this goroutine (the pump would have
// started it next, after two goroutine hand-offs). Otherwise, or with no
// ready row, the slot is freed and the pump woken, as doneSending does;
// nil then. When the ready rows run low, the read-ahead starts here as
// fill would start it.
func (d *Dispatcher) next(qctx context.Context, q *queue, attempts *sync.WaitGroup) *Delivery {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.pumping && qctx.Err() == nil && q.disabled == "" && q.cb.state == CircuitClosed && q.ep.cfg.Ordering != OrderingPerRecord &&
		q.sending <= q.ep.cfg.Concurrency {
		for len(q.ready) > 0 {
			row := q.ready[0]
			q.ready[0] = Delivery{}
			q.ready = q.ready[1:]
			delete(q.readyIDs, row.ID)
			if q.inflight[row.ID] {
				continue
			}
			q.inflight[row.ID] = true
			if len(q.ready) > 0 && len(q.ready) <= readAhead && !q.fetching && !q.known {
				d.readAhead(qctx, q, d.clock.Now(), len(q.inflight)+len(q.ready)+prefetch, attempts)
			}
			return &row
		}
	}
	q.sending--
	q.wake()
	return nil
}

func (q *queue) release(id string) {
	q.mu.Lock()
	delete(q.inflight, id)
	q.released[id] = q.pass
	if q.cb.probe == id {
		// The probe ended without telling whether the endpoint is up (a
		// permanent 4xx, or cut short): the next one may start at once.
		q.cb.probe = ""
		q.cb.probeAt = time.Time{}
	}
	q.mu.Unlock()
	q.wake()
}

// orderedScan is how many pending deliveries a per-record queue looks at
// per pass, at most.
const orderedScan = 2000

// orderedLimit is how many pending deliveries a per-record queue reads in
// a pass: those in flight (still pending in the store) and twice the free
// slots, plus headroom, or scan when a pass found that too few. Each pass
// reads whole rows: reading orderedScan of them to start a few attempts
// made a per-record queue over a MySQL state store deliver ~100/s from a
// backlog (rowhook bench --state mysql).
func orderedLimit(scan, inflight, capacity int) int {
	return min(orderedScan, max(scan, inflight+2*capacity+16))
}

// pump starts attempts for due deliveries of q until ctx is cancelled.
func (d *Dispatcher) pump(ctx context.Context, q *queue, attemptCtx context.Context, attempts *sync.WaitGroup) {
	q.mu.Lock()
	q.pumping = true
	q.mu.Unlock()
	defer func() {
		q.mu.Lock()
		q.pumping = false
		q.mu.Unlock()
	}()
	for {
		// fill measures its wait from the time it read; sleep until that
		// instant, not for that long from now (the clock may have moved).
		until := d.fill(ctx, q, attemptCtx, attempts)
		select {
		case <-ctx.Done():
			return
		case <-q.wakeCh:
		case <-d.clock.After(until.Sub(d.clock.Now())):
		}
	}
}

// fill starts as many attempts as q's budget allows and returns when to
// look again.
func (d *Dispatcher) fill(ctx context.Context, q *queue, attemptCtx context.Context, attempts *sync.WaitGroup) time.Time {
	now := d.clock.Now()
	return now.Add(d.fillAt(ctx, q, now, attemptCtx, attempts))
}

func (d *Dispatcher) fillAt(ctx context.Context, q *queue, now time.Time, attemptCtx context.Context, attempts *sync.WaitGroup) time.Duration {
	wait := d.poll
	ep := q.ep
	q.mu.Lock()
	if q.disabled != "" {
		q.mu.Unlock()
		return wait
	}
	budget := ep.cfg.Concurrency
	if q.cb.state != CircuitClosed {
		// Open: nothing is claimed until the probe is due, then one
		// delivery at a time, the probe (half-open: it is in flight).
		if q.cb.probe != "" {
			q.mu.Unlock()
			return wait
		}
		if now.Before(q.cb.probeAt) {
			until := q.cb.probeAt.Sub(now)
			q.mu.Unlock()
			return until
		}
		budget = 1
	}
	capacity := budget - q.sending
	inflight := len(q.inflight)
	scan := q.scan
	q.pass++
	pass := q.pass
	keep := pass
	if q.fetching {
		// The read-ahead under way needs what was released since it began.
		keep = q.fetchPass
	}
	for id, p := range q.released {
		if p < keep {
			delete(q.released, id)
		}
	}
	ordered := ep.cfg.Ordering == OrderingPerRecord
	if !ordered && len(q.ready) == 0 && q.fetching {
		// The read-ahead brings the next rows and wakes the pump.
		q.mu.Unlock()
		return wait
	}
	q.mu.Unlock()
	if capacity <= 0 {
		return wait
	}
	q.mu.Lock()
	known := q.known && now.Before(q.knownUntil)
	if !ordered && known {
		if w := q.knownUntil.Sub(now); w < wait {
			wait = w
		}
	}
	needQuery := ordered || (len(q.ready) == 0 && !known)
	gen := q.gen
	q.mu.Unlock()
	var rows []Delivery
	var pq PendingQuery
	readLimit := 0
	becameKnown := false
	if needQuery {
		pq = PendingQuery{Webhook: q.key.webhook, Subscription: q.key.subscription}
		if ordered {
			pq.Limit = orderedLimit(scan, inflight, capacity)
			readLimit = pq.Limit
		} else {
			pq.DueBy = now
			pq.Limit = inflight + capacity + prefetch
		}
		var err error
		if rows, err = d.store.Pending(ctx, pq); err != nil {
			if ctx.Err() == nil {
				d.m.storeErrors.Inc()
				d.log.Error("read pending deliveries", "webhook", ep.name, "error", err)
			}
			return wait
		}
	}
	start := func(row Delivery) {
		if q.cb.state != CircuitClosed {
			d.probing(q, row.ID)
		}
		capacity--
		q.sending++
		q.inflight[row.ID] = true
		// An attempt goroutine that finished its last attempt takes it;
		// else a new one starts.
		select {
		case q.work <- &row:
		default:
			attempterStarts.Add(1)
			attempts.Add(1)
			go d.attempter(ctx, attemptCtx, q, &row, attempts)
		}
	}
	// The circuit may have opened since capacity was computed: an open
	// circuit lets only its probe through.
	canStart := func() bool {
		return q.cb.state == CircuitClosed || (q.cb.probe == "" && !now.Before(q.cb.probeAt))
	}
	stale := func(id string) bool {
		p, ok := q.released[id]
		return ok && p >= pass
	}
	q.mu.Lock()
	if ordered {
		blocked := map[string]bool{}
		for i := range rows {
			row := rows[i]
			if blocked[row.Key] {
				continue
			}
			blocked[row.Key] = true
			if q.inflight[row.ID] || stale(row.ID) {
				continue
			}
			if row.NextAt.After(now) {
				if w := row.NextAt.Sub(now); w < wait {
					wait = w
				}
				continue
			}
			if capacity == 0 || !canStart() {
				break
			}
			start(row)
		}
		// Too few rows to fill the free slots: read more at once (the
		// rows read are a prefix of the queue, so their decisions stand).
		// Enough: read less next time.
		if capacity > 0 && len(rows) == readLimit && readLimit < orderedScan && canStart() {
			q.scan = 2 * readLimit
			q.wake()
		} else if capacity == 0 {
			q.scan = scan / 2
		}
	} else {
		if needQuery {
			q.readTo(rows, pq.Limit)
			// Keep the due rows nobody is sending: later passes start
			// them without reading the store again.
			q.addReady(rows, pass)
			becameKnown = q.readAll(rows, pq.Limit, gen, now, d.poll)
		}
		for capacity > 0 && len(q.ready) > 0 && canStart() {
			row := q.ready[0]
			q.ready[0] = Delivery{}
			q.ready = q.ready[1:]
			delete(q.readyIDs, row.ID)
			if !q.inflight[row.ID] {
				start(row)
			}
		}
		if len(q.ready) > 0 && len(q.ready) <= readAhead && !q.fetching && !q.known {
			d.readAhead(ctx, q, now, len(q.inflight)+len(q.ready)+prefetch, attempts)
		}
	}
	more := len(q.ready) > 0
	q.mu.Unlock()
	// When a read has just made the queue known, it must also know when
	// the next delivery not yet due (a retry, a scheduled one) comes.
	if !ordered && needQuery && (becameKnown || (!more && capacity > 0)) {
		next, ok, err := d.store.NextDue(ctx, q.key.webhook, q.key.subscription, now)
		switch {
		case err != nil:
			q.due(time.Time{})
		case ok:
			if w := next.Sub(now); w < wait {
				wait = w
			}
			q.due(next)
		}
	}
	return wait
}

// prefetch is how many due deliveries an unordered queue reads ahead.
const prefetch = 256

// readAhead is the low-water mark of an unordered queue's ready list: below
// it the next rows are read in the background, so that the pump keeps the
// connections busy instead of waiting for the store.
const readAhead = prefetch / 2

// readTo notes where a read of due rows with limit ended. q.mu is held.
func (q *queue) readTo(rows []Delivery, limit int) {
	if len(rows) < limit || len(rows) == 0 {
		q.afterAt, q.afterSeq = time.Time{}, 0
		return
	}
	last := rows[len(rows)-1]
	q.afterAt, q.afterSeq = last.NextAt, last.Seq
}

// readAll sets q.known when a read of the due rows from their start
// (rows, with limit) reached their end and nothing was added to the store
// since gen that q has not seen: q then knows every due delivery until the
// poll interval has passed (fill then asks the store when the next one
// not yet due comes). It reports whether it did. q.mu is held.
func (q *queue) readAll(rows []Delivery, limit int, gen uint64, now time.Time, poll time.Duration) bool {
	if len(rows) < limit && q.gen == gen {
		q.known, q.knownUntil = true, now.Add(poll)
		return true
	}
	return false
}

// addReady appends to q.ready the rows of a read made at pass that nobody
// is sending, holding, or finished since the read began. q.mu is held.
func (q *queue) addReady(rows []Delivery, pass uint64) {
	for _, row := range rows {
		if p, ok := q.released[row.ID]; (ok && p >= pass) || q.inflight[row.ID] || q.readyIDs[row.ID] {
			continue
		}
		q.appendReady(row)
		q.readyIDs[row.ID] = true
	}
}

// appendReady appends row to q.ready. When q.ready has reached the end of
// its array and fill has taken at least as many rows from its front as it
// holds, they move back to the array's start first: the array is reused
// instead of a larger one allocated (and the list copied) every few
// hundred rows. q.mu is held.
func (q *queue) appendReady(row Delivery) {
	if n := len(q.ready); n == cap(q.ready) && n < cap(q.readyArr)/2 {
		copy(q.readyArr, q.ready)
		clear(q.readyArr[n:])
		q.ready = q.readyArr[:n]
	}
	q.ready = append(q.ready, row)
	if cap(q.ready) > cap(q.readyArr) {
		q.readyArr = q.ready[:cap(q.ready)]
	}
}

// readAhead reads the next due rows of q in the background and adds those
// nobody is sending or holding to q.ready. q.mu is held by the caller.
func (d *Dispatcher) readAhead(ctx context.Context, q *queue, now time.Time, limit int, wg *sync.WaitGroup) {
	q.pass++
	q.fetching, q.fetchPass = true, q.pass
	pass := q.pass
	pq := PendingQuery{Webhook: q.key.webhook, Subscription: q.key.subscription, DueBy: now, Limit: limit}
	if q.afterSeq != 0 {
		// Rows due before the position that were not read (enqueued with
		// an earlier due time meanwhile) are read once a read reaches the
		// end of the due rows and the next one starts over.
		pq.AfterNextAt, pq.AfterSeq, pq.Limit = q.afterAt, q.afterSeq, prefetch
	}
	// Run waits for it as for attempts: it must not outlive the store.
	wg.Add(1)
	go func() {
		defer wg.Done()
		rows, err := d.store.Pending(ctx, pq)
		q.mu.Lock()
		defer q.wake()
		defer q.mu.Unlock()
		q.fetching = false
		if err != nil {
			if ctx.Err() == nil {
				d.m.storeErrors.Inc()
				d.log.Error("read pending deliveries", "webhook", q.ep.name, "error", err)
			}
			return
		}
		q.readTo(rows, pq.Limit)
		q.addReady(rows, pass)
	}()
}

// attempterIdle is how long an attempt goroutine waits for the next
// attempt of its queue before it ends.
const attempterIdle = 5 * time.Second

// attempterStarts counts the attempt goroutines started (for tests).
var attempterStarts atomic.Int64

// attempter makes attempts of q, row first, then those fill hands it
// (q.work) while it waits, until it has waited attempterIdle for one or
// the pump stops (qctx). One goroutine makes attempt after attempt: a new
// goroutine per attempt grew its stack again for each (net/http's calls
// are deep), 2% of the CPU of a delivery. It counts in wg while it runs,
// so Run's drain waits for it as for the attempt it makes.
func (d *Dispatcher) attempter(qctx, attemptCtx context.Context, q *queue, row *Delivery, wg *sync.WaitGroup) {
	defer wg.Done()
	var idle *time.Timer
	for {
		if d.send(attemptCtx, q, row) {
			if row = d.next(qctx, q, wg); row != nil {
				continue
			}
		}
		row = nil
		if idle == nil {
			idle = time.NewTimer(attempterIdle)
			defer idle.Stop()
		} else {
			idle.Reset(attempterIdle)
		}
		select {
		case row = <-q.work:
		case <-idle.C:
			return
		case <-qctx.Done():
			return
		}
	}
}

// recordReq is an attempt's result for the recorder, and what recorded
// needs to finish the attempt once it is stored.
type recordReq struct {
	res  Result
	q    *queue
	id   string
	gone bool
	log  lazyLog
}

// recordReqs are recordReqs to reuse (recorded puts them back).
var recordReqs = sync.Pool{New: func() any { return new(recordReq) }}

// send makes one attempt of row and records its result.
func (d *Dispatcher) send(ctx context.Context, q *queue, row *Delivery) (keptSlot bool) {
	ep := q.ep
	if ep.limiter != nil {
		if err := ep.limiter.Wait(ctx); err != nil {
			q.doneSending()
			q.release(row.ID)
			return false
		}
	}
	n := row.Attempts + 1
	a, resp, err := d.attempt(ctx, ep, row, n)
	if err != nil && ctx.Err() != nil {
		// Shutdown cut the attempt short: it stays pending, to be sent
		// again (same webhook-id) after the restart.
		q.doneSending()
		q.release(row.ID)
		return false
	}
	now := d.clock.Now()
	label := metricLabel(q.key)
	d.m.attemptDur.WithLabelValues(label).Observe(a.Duration.Seconds())
	d.m.attempted(label, a, err, row.EventTime, now)
	r := recordReqs.Get().(*recordReq)
	r.q, r.id = q, row.ID
	r.log = lazyLog{base: d.log, id: row.ID, webhook: label, attempt: n, subscription: q.key.subscription}
	log := &r.log
	res := &r.res
	res.Attempt, res.Attempts = a, n
	res.Attempt.DeliverySeq = row.Seq
	ae, retry := retryable(err)
	var after time.Duration
	if ae != nil && retry {
		after = ae.RetryAfter
		if ep.cfg.Retry.CapsRetryAfter(after) {
			log.Info("Retry-After capped at retry.max_interval", "status", a.Status, "retry_after", after, "max_interval", ep.cfg.Retry.MaxInterval)
		}
	}
	switch {
	case err == nil:
		res.Status = StatusOK
		if d.wb != nil && d.wb.Needs(row.Rule) && resp != nil {
			res.Writeback = resp
		}
		d.attemptOK(q)
	case ae != nil && ae.Gone:
		r.gone = true
		res.Status = StatusFailed
		d.m.deadLetters.WithLabelValues(label).Inc()
	case retry && n < ep.cfg.Retry.MaxAttempts:
		res.Status = StatusPending
		res.NextAt = now.Add(ep.cfg.Retry.Backoff(n, after, d.jitter()))
		d.m.retries.WithLabelValues(label).Inc()
		d.attemptFailed(q, row.ID, now, after, a.Status, a.Error)
		// Debug: a failing endpoint logs its circuit's state changes, not
		// each attempt (the delivery log has them all).
		log.Debug("attempt failed; will retry", "status", a.Status, "error", a.Error, "next_at", res.NextAt)
	case retry:
		res.Status = StatusDead
		d.m.deadLetters.WithLabelValues(label).Inc()
		d.attemptFailed(q, row.ID, now, after, a.Status, a.Error)
		log.Warn("delivery dead after its last attempt", "status", a.Status, "error", a.Error, "attempts", n)
	default:
		res.Status = StatusFailed
		d.m.deadLetters.WithLabelValues(label).Inc()
		log.Warn("delivery failed permanently", "status", a.Status, "error", a.Error)
	}
	d.outcomes.record(label, res.Status, a.Duration, log, a.Status) // log.delivery_success
	// The slot is free once the circuit has counted the outcome (no
	// attempt starts past an open circuit), but before the result is
	// stored: the next attempt may start while this one waits for the
	// recorder's next batch. The delivery stays in flight until the
	// recorder has stored its result (recorded); this goroutine goes on
	// to the next attempt meanwhile, in the slot it keeps (next).
	d.results <- r
	return true
}

// recorded finishes an attempt once the recorder has stored its result
// (err nil) or failed to: what the result means for the queue, then the
// delivery leaves the in-flight set. It runs on the recorder's goroutine.
func (d *Dispatcher) recorded(r *recordReq, err error) {
	q, res := r.q, &r.res
	switch {
	case err != nil:
		// The recorder logged the batch's error once; one line per
		// delivery would be hundreds a second.
		r.log.Debug("attempt not recorded; the delivery stays pending", "error", err)
		q.due(time.Time{})
	default:
		if res.Status == StatusPending {
			q.due(res.NextAt)
		}
		if res.Writeback != nil {
			select {
			case d.wbWake <- struct{}{}:
			default:
			}
		}
		if r.gone {
			// Before the delivery leaves the in-flight set, as when the
			// attempt's goroutine waited for its result: no attempt
			// starts meanwhile past a webhook being disabled.
			d.gone(q, &r.log)
		}
	}
	q.release(r.id)
	*r = recordReq{}
	recordReqs.Put(r)
}

// lazyLog is a logger with a delivery's attributes, built on first use:
// most attempts succeed and log nothing at the default level, and
// slog.Logger.With formats its attributes at once.
type lazyLog struct {
	base *slog.Logger
	args []any
	// A delivery's attributes, put before args on first use (when id is
	// set): delivery_id, webhook, attempt, then subscription if any.
	id, webhook, subscription string
	attempt                   int
	l                         *slog.Logger
}

func (z *lazyLog) get() *slog.Logger {
	if z.l == nil {
		args := z.args
		if z.id != "" {
			args = []any{"delivery_id", z.id, "webhook", z.webhook, "attempt", z.attempt}
			if z.subscription != "" {
				args = append(args, "subscription", z.subscription)
			}
			args = append(args, z.args...)
		}
		z.l = z.base.With(args...)
	}
	return z.l
}

func (z *lazyLog) Debug(msg string, args ...any) {
	if z.base.Enabled(context.Background(), slog.LevelDebug) {
		z.get().Debug(msg, args...)
	}
}
func (z *lazyLog) Info(msg string, args ...any)  { z.get().Info(msg, args...) }
func (z *lazyLog) Warn(msg string, args ...any)  { z.get().Warn(msg, args...) }
func (z *lazyLog) Error(msg string, args ...any) { z.get().Error(msg, args...) }

func metricLabel(k queueKey) string {
	if k.subscription != "" {
		return SubscriptionWebhook
	}
	return k.webhook
}

// recordLinger is how long the recorder collects results after the first
// before writing them in one transaction. The attempts are already on the
// wire or done: the wait only delays when their deliveries leave the
// in-flight set, and it turns one transaction per result into one per
// batch. Most of a batch's cost is per page it writes to the WAL (each
// B-tree it changes), so fewer, larger batches cost less per result
// (BenchmarkStore_Record: 52 µs of CPU per result in batches of 8, 33 in
// batches of 32, 23 in batches of 128; 3 ms instead of 1 ms took the
// recorder from 20-21 to 11-17 µs per delivery in rowhook bench's
// deliver measure, docs/benchmarks.md).
const recordLinger = 3 * time.Millisecond

// recordLingerOrdered bounds the wait of a batch holding a result of a
// per-record queue (ordering: per_record): the record's next delivery
// starts only once this one's result is stored.
const recordLingerOrdered = time.Millisecond

// recorder writes attempt results in batches (one transaction for all the
// results waiting), retrying a failing store until it recovers, or, once
// stop is closed (shutdown), no longer: a result that is not recorded
// leaves its delivery pending, and it is sent again (same webhook-id) after
// a restart. Retrying there would hold the process for up to 30s per batch
// when the state file cannot be written (full disk). After each batch it
// finishes the batch's attempts (recorded), in order.
func (d *Dispatcher) recorder(ctx context.Context, stop <-chan struct{}) {
	batch := make([]*recordReq, 0, 1024)
	rs := make([]Result, 0, 1024)
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	ordered := func(r *recordReq) bool { return r.q.ep.cfg.Ordering == OrderingPerRecord }
	for first := range d.results {
		batch = append(batch[:0], first)
		began := time.Now()
		short := ordered(first)
		if short {
			linger.Reset(recordLingerOrdered)
		} else {
			linger.Reset(recordLinger)
		}
	more:
		for len(batch) < cap(batch) {
			select {
			case r, ok := <-d.results:
				if !ok {
					break more
				}
				batch = append(batch, r)
				if !short && ordered(r) {
					short = true
					left := recordLingerOrdered - time.Since(began)
					if left <= 0 {
						break more
					}
					linger.Reset(left)
				}
			case <-linger.C:
				break more
			}
		}
		linger.Stop()
		rs = rs[:0]
		for _, r := range batch {
			rs = append(rs, r.res)
		}
		var err error
	retry:
		for try := 0; ; try++ {
			if err = d.store.Record(ctx, rs); err == nil || try >= 30 {
				break
			}
			d.m.storeErrors.Inc()
			select {
			case <-stop:
				d.log.Error("record attempts; not retried at shutdown, the deliveries stay pending", "error", err, "results", len(rs))
				break retry
			default:
			}
			d.log.Error("record attempts; retrying", "error", err)
			select {
			case <-stop:
			case <-time.After(time.Second):
			}
		}
		for _, r := range batch {
			d.recorded(r, err)
		}
	}
}

// gone handles a 410: a subscription is removed (its pending deliveries
// fail), a configured webhook is disabled until re-enabled by the admin API.
func (d *Dispatcher) gone(q *queue, log interface {
	Info(string, ...any)
	Error(string, ...any)
}) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	now := d.clock.Now()
	if q.key.subscription != "" {
		if err := d.removeSubscription(ctx, q.key.subscription, "subscription removed: the target answered 410 Gone"); err != nil && !errors.Is(err, ErrNotFound) {
			log.Error("remove subscription after 410", "error", err)
			return
		}
		log.Info("subscription removed: the target answered 410 Gone")
		return
	}
	reason := fmt.Sprintf("410 Gone at %s", now.UTC().Format(time.RFC3339))
	if err := d.store.SetWebhookDisabled(ctx, q.key.webhook, reason, now); err != nil {
		log.Error("disable webhook after 410", "error", err)
	}
	q.mu.Lock()
	q.disabled = reason
	q.mu.Unlock()
	d.m.setWebhookState(q.key.webhook, stateDisabled)
	log.Error("webhook disabled: the endpoint answered 410 Gone; its deliveries are held until POST /webhooks/{name}/enable")
}

func (d *Dispatcher) removeSubscription(ctx context.Context, id, reason string) error {
	if err := d.store.DeleteSubscription(ctx, id); err != nil {
		return err
	}
	d.smu.Lock()
	delete(d.subs, id)
	d.smu.Unlock()
	if _, err := d.store.Fail(ctx, SubscriptionWebhook, id, reason, d.clock.Now()); err != nil {
		return err
	}
	k := queueKey{SubscriptionWebhook, id}
	d.qmu.Lock()
	q := d.queues[k]
	delete(d.queues, k)
	d.qmu.Unlock()
	if q != nil {
		q.mu.Lock()
		if q.cancel != nil {
			q.cancel()
		}
		d.m.circuit.WithLabelValues(SubscriptionWebhook, q.cb.state).Dec()
		q.removed = true
		q.mu.Unlock()
	}
	return nil
}

// writebackLoop applies pending writebacks, retrying each with backoff up
// to its policy's max_attempts (Deps.WritebackRetry: writeback.max_attempts,
// backoff, max_backoff), then recording it failed. An error that says it is
// permanent (a value that does not fit its column) is recorded failed at
// once: the same response fails the same way.
func (d *Dispatcher) writebackLoop(ctx context.Context) {
	policy := d.wbRetry
	tries := map[string]int{}
	next := map[string]time.Time{}
	for {
		wait := d.poll
		rows, err := d.store.Writebacks(ctx, 100)
		if err != nil && ctx.Err() == nil {
			d.log.Error("read pending writebacks", "error", err)
		}
		for i := range rows {
			row := &rows[i]
			now := d.clock.Now()
			if t, ok := next[row.ID]; ok && now.Before(t) {
				if w := t.Sub(now); w < wait {
					wait = w
				}
				continue
			}
			ev, err := storedEvent(row)
			if err == nil {
				resp := Response{}
				if row.Response != nil {
					resp = *row.Response
				}
				err = d.wb.Apply(ctx, row.ID, ev, resp)
			}
			if ctx.Err() != nil {
				return
			}
			log := d.log.With("delivery_id", row.ID, "rule", row.Rule)
			now = d.clock.Now()
			if err == nil {
				delete(tries, row.ID)
				delete(next, row.ID)
				if ferr := d.store.FinishWriteback(ctx, row.ID, WritebackDone, "", now); ferr != nil {
					log.Error("record writeback", "error", ferr)
				}
				continue
			}
			tries[row.ID]++
			n := tries[row.ID]
			status := WritebackPending
			var p interface{ Permanent() bool }
			permanent := errors.As(err, &p) && p.Permanent()
			if permanent || n >= policy.MaxAttempts {
				status = WritebackFailed
				delete(tries, row.ID)
				delete(next, row.ID)
				log.Error("writeback failed; the delivery itself succeeded and is not sent again", "error", err, "tries", n, "permanent", permanent)
			} else {
				t := now.Add(policy.Backoff(n, 0, d.jitter()))
				next[row.ID] = t
				if w := t.Sub(now); w < wait {
					wait = w
				}
				log.Warn("writeback failed; will retry", "error", err, "tries", n, "next_at", t)
			}
			if ferr := d.store.FinishWriteback(ctx, row.ID, status, err.Error(), now); ferr != nil {
				log.Error("record writeback", "error", ferr)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-d.wbWake:
		case <-d.clock.After(wait):
		}
	}
}
