package dispatch

import (
	"log/slog"
	"time"
)

// Endpoint circuit states: label values of rowhook_webhook_circuit_state
// and WebhookState.Circuit.
const (
	// CircuitClosed: deliveries are sent at the webhook's concurrency.
	CircuitClosed = "closed"
	// CircuitOpen: the endpoint failed circuit.failure_threshold times in a
	// row; its deliveries wait (keeping their attempts and next attempt
	// time) until the next probe is due.
	CircuitOpen = "open"
	// CircuitHalfOpen: one probe delivery is in flight; its success closes
	// the circuit, its failure opens it again for a doubled interval.
	CircuitHalfOpen = "half_open"
)

var circuitStates = []string{CircuitClosed, CircuitOpen, CircuitHalfOpen}

// circuit is the endpoint circuit of one queue (a webhook, or one
// subscription): each delivery retrying on its own made 9,400 attempts a
// second against an endpoint that was down under a large backlog. It is
// kept in memory only: a restart starts closed and opens again after
// failure_threshold failures. Guarded by the queue's mu.
type circuit struct {
	state string
	// failures counts retryable failures in a row while closed.
	failures int
	// probes counts failed probes since the circuit opened: the next
	// probe waits the retry backoff of attempt probes+1.
	probes int
	// probeAt is when an open circuit may send its next probe.
	probeAt time.Time
	// probe is the id of the probe in flight (half-open).
	probe string
	// failingSince is when the current run of failures began.
	failingSince time.Time
	// paused: open for delivery.pause_after, reported paused.
	paused bool
}

// circuitLog is the logger of q's state changes: one line per change, not
// per attempt.
func (d *Dispatcher) circuitLog(q *queue) *slog.Logger {
	if q.key.subscription != "" {
		return d.log.With("webhook", SubscriptionWebhook, "subscription", q.key.subscription)
	}
	return d.log.With("webhook", q.key.webhook)
}

// setCircuit moves q's circuit to state and its gauge with it. q.mu is held.
func (d *Dispatcher) setCircuit(q *queue, state string) {
	if q.cb.state == state {
		return
	}
	if !q.removed {
		label := metricLabel(q.key)
		d.m.circuit.WithLabelValues(label, q.cb.state).Dec()
		d.m.circuit.WithLabelValues(label, state).Inc()
	}
	q.cb.state = state
}

// probing notes that the delivery id is the probe of q's open circuit.
// q.mu is held.
func (d *Dispatcher) probing(q *queue, id string) {
	q.cb.probe = id
	d.setCircuit(q, CircuitHalfOpen)
	d.circuitLog(q).Info("endpoint circuit half-open: sending one probe", "delivery_id", id, "failed_probes", q.cb.probes)
}

// attemptOK closes q's circuit: the endpoint answered 2xx.
func (d *Dispatcher) attemptOK(q *queue) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.cb.state != CircuitClosed {
		d.circuitLog(q).Info("endpoint circuit closed: a delivery succeeded; held deliveries resume", "failing_since", q.cb.failingSince, "failed_probes", q.cb.probes)
	}
	if q.cb.paused && q.disabled == "" {
		d.m.setWebhookState(metricLabel(q.key), stateRunning)
	}
	d.setCircuit(q, CircuitClosed)
	q.cb = circuit{state: CircuitClosed}
}

// attemptFailed counts a retryable failure of delivery id: the
// failure_threshold-th in a row opens the circuit, a failed probe opens it
// again for twice as long (the webhook's retry backoff, at most
// delivery.pause_for, never less than the endpoint's Retry-After up to
// retry.max_interval). Failures of attempts that were already in flight
// when it opened change nothing.
func (d *Dispatcher) attemptFailed(q *queue, id string, now time.Time, retryAfter time.Duration, status int, errText string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.cb.failingSince.IsZero() {
		q.cb.failingSince = now
	}
	switch {
	case q.cb.state == CircuitClosed:
		q.cb.failures++
		if q.cb.failures < q.ep.cfg.Circuit.FailureThreshold {
			return
		}
		q.cb.probes = 0
		q.cb.probeAt = now.Add(d.probeWait(q, 1, retryAfter))
		d.setCircuit(q, CircuitOpen)
		d.circuitLog(q).Warn("endpoint circuit open: failing; its deliveries wait, one probe per interval",
			"failures", q.cb.failures, "status", status, "error", errText, "next_probe_at", q.cb.probeAt)
	case q.cb.state == CircuitHalfOpen && q.cb.probe == id:
		q.cb.probe = ""
		q.cb.probes++
		q.cb.probeAt = now.Add(d.probeWait(q, q.cb.probes+1, retryAfter))
		d.setCircuit(q, CircuitOpen)
		d.circuitLog(q).Info("endpoint circuit open again: the probe failed",
			"status", status, "error", errText, "failed_probes", q.cb.probes, "next_probe_at", q.cb.probeAt)
	default:
		return
	}
	if pa := d.cfg.Delivery.PauseAfter; pa >= 0 && !q.cb.paused && now.Sub(q.cb.failingSince) >= pa {
		q.cb.paused = true
		if q.disabled == "" {
			d.m.setWebhookState(metricLabel(q.key), statePaused)
		}
		d.circuitLog(q).Warn("endpoint paused: failing continuously", "failing_since", q.cb.failingSince, "next_probe_at", q.cb.probeAt)
	}
}

// probeWait is how long an open circuit waits before probe n.
func (d *Dispatcher) probeWait(q *queue, n int, retryAfter time.Duration) time.Duration {
	r := q.ep.cfg.Retry
	w := r.Backoff(n, 0, d.jitter())
	if pf := d.cfg.Delivery.PauseFor; pf > 0 && w > pf {
		w = pf
	}
	if ra := min(retryAfter, r.MaxInterval); ra > w {
		w = ra
	}
	return w
}

// resetCircuit closes q's circuit without a success (the webhook was
// re-enabled by the admin API). q.mu is held.
func (d *Dispatcher) resetCircuit(q *queue) {
	d.setCircuit(q, CircuitClosed)
	q.cb = circuit{state: CircuitClosed}
}

// view returns the state, failing-since and next-probe times for
// WebhookState.
func (c *circuit) view() (state string, failingSince, nextProbe *time.Time) {
	if !c.failingSince.IsZero() {
		t := c.failingSince
		failingSince = &t
	}
	if c.state == CircuitOpen {
		t := c.probeAt
		nextProbe = &t
	}
	return c.state, failingSince, nextProbe
}
