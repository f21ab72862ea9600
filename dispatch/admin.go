package dispatch

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/rowhook/rowhook/dispatch/send"
)

// The operations behind the admin API (package dispatch/adminapi serves
// them over HTTP; rowhook's commands call some directly).

// ErrSubscriptionsDisabled: a subscription call while
// admin.subscriptions.enabled is off.
var ErrSubscriptionsDisabled = errors.New("subscriptions are disabled (admin.subscriptions.enabled)")

// AdminAccess is how the admin API admits and renders requests.
type AdminAccess struct {
	// Token is admin.token: the bearer token every request needs unless
	// Open.
	Token string
	// Open is Deps.AdminOpen: the listener is bound to loopback.
	Open bool
	// BodyLimit is state.body_limit: how much of a body a view shows.
	BodyLimit int
	// Subscriptions is admin.subscriptions.enabled.
	Subscriptions bool
}

// AdminAccess returns the admin API's access settings.
func (d *Dispatcher) AdminAccess() AdminAccess {
	return AdminAccess{Token: d.cfg.Admin.Token, Open: d.adminOpen, BodyLimit: d.cfg.State.BodyLimit,
		Subscriptions: d.subEndpoint != nil}
}

// Now is the dispatcher's clock (Deps.Clock).
func (d *Dispatcher) Now() time.Time { return d.clock.Now() }

// Deliveries lists deliveries matching f, newest first.
func (d *Dispatcher) Deliveries(ctx context.Context, f Filter) ([]Delivery, error) {
	return d.store.List(ctx, f)
}

// Delivery returns one delivery and its log; ErrNotFound when unknown.
func (d *Dispatcher) Delivery(ctx context.Context, id string) (Delivery, []Attempt, error) {
	return d.store.Get(ctx, id)
}

// Redeliver makes deliveries pending again (ids, or all matching f when ids
// is empty; never every delivery: f needs a status), when the configuration
// allows re-runs. actor is logged with the re-run.
func (d *Dispatcher) Redeliver(ctx context.Context, ids []string, f Filter, actor string) ([]string, error) {
	if !d.cfg.Admin.AllowRedeliver {
		return nil, ErrRedeliverDisabled
	}
	if len(ids) == 0 && f.Status == "" {
		return nil, errors.New("redeliver: give delivery ids or a status (failed, dead, ok)")
	}
	done, err := d.store.Redeliver(ctx, ids, f, d.clock.Now(), actor)
	if err != nil {
		return nil, err
	}
	d.log.Info("deliveries re-run", "actor", actor, "count", len(done), "ids", truncList(done, 20))
	// Wake every queue: the re-run deliveries may belong to any.
	d.qmu.Lock()
	qs := make([]*queue, 0, len(d.queues))
	for _, q := range d.queues {
		qs = append(qs, q)
	}
	d.qmu.Unlock()
	for _, q := range qs {
		q.mu.Lock()
		q.unknown()
		q.mu.Unlock()
		q.wake()
	}
	return done, nil
}

// RedeliverNote is the delivery log's note on a manual re-run: who asked
// (the admin page or API and how it was admitted, or the CLI user), when
// (RFC 3339 in UTC, to the second; the admin page shows it in its own
// format), and the status it had. Stores write it with the re-run, so a
// re-run from any of the three reads the same in the log.
func RedeliverNote(actor string, was Status, at time.Time) string {
	return fmt.Sprintf("redelivered by %s at %s (was %s)", actor, at.UTC().Format(time.RFC3339), was)
}

// RerenderNote is the delivery log's note on a re-render (rowhook
// redeliver --rerender): who, when, the binlog transaction the request was
// built from again, and the status the delivery had.
func RerenderNote(actor, from string, was Status, at time.Time) string {
	return fmt.Sprintf("re-rendered by %s at %s from binlog %s (was %s)", actor, at.UTC().Format(time.RFC3339), from, was)
}

func truncList(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], fmt.Sprintf("… %d more", len(s)-n))
	}
	return s
}

// Subscriptions lists the REST-hook subscriptions;
// ErrSubscriptionsDisabled when they are off.
func (d *Dispatcher) Subscriptions(ctx context.Context) ([]Subscription, error) {
	if d.subEndpoint == nil {
		return nil, ErrSubscriptionsDisabled
	}
	return d.store.Subscriptions(ctx)
}

// UnknownEventError refuses a subscription to an event no rule produces.
type UnknownEventError struct {
	// Event is the name asked for.
	Event string
	// Known are the event names the rules produce, sorted.
	Known []string
}

func (e *UnknownEventError) Error() string {
	if len(e.Known) == 0 {
		return fmt.Sprintf("event %q: no rule produces it (no rule is configured; or subscribe to *)", e.Event)
	}
	return fmt.Sprintf("event %q: no rule produces it; known events: %s (or * for every event)", e.Event, strings.Join(e.Known, ", "))
}

// sortedEvents is names sorted without duplicates; nil stays nil (any
// event accepted).
func sortedEvents(names []string) []string {
	if names == nil {
		return nil
	}
	out := append([]string{}, names...)
	sort.Strings(out)
	return slices.Compact(out)
}

// Subscribe adds a subscription after the SSRF check.
func (d *Dispatcher) Subscribe(ctx context.Context, targetURL, event string) (Subscription, error) {
	if d.subEndpoint == nil {
		return Subscription{}, ErrSubscriptionsDisabled
	}
	if strings.TrimSpace(event) == "" {
		return Subscription{}, errors.New("event: missing (an event name, or * for every event)")
	}
	if d.events != nil && event != "*" {
		if _, ok := slices.BinarySearch(d.events, event); !ok {
			return Subscription{}, &UnknownEventError{Event: event, Known: d.events}
		}
	}
	if err := d.guard.CheckURL(ctx, targetURL, d.resolver); err != nil {
		return Subscription{}, err
	}
	s := Subscription{ID: newSubscriptionID(), URL: targetURL, Event: event, CreatedAt: d.clock.Now().UTC()}
	if err := d.store.AddSubscription(ctx, s); err != nil {
		return Subscription{}, err
	}
	d.smu.Lock()
	d.subs[s.ID] = s
	d.smu.Unlock()
	d.log.Info("subscription added", "subscription", s.ID, "event", event, "target_url", send.RedactURL(targetURL))
	return s, nil
}

// Unsubscribe deletes a subscription and fails its pending deliveries;
// ErrNotFound when unknown, ErrSubscriptionsDisabled when they are off.
func (d *Dispatcher) Unsubscribe(ctx context.Context, id string) error {
	if d.subEndpoint == nil {
		return ErrSubscriptionsDisabled
	}
	if err := d.removeSubscription(ctx, id, "subscription deleted"); err != nil {
		return err
	}
	d.log.Info("subscription deleted", "subscription", id)
	return nil
}

// WebhookState is a webhook's delivery state in GET /webhooks.
type WebhookState struct {
	Name         string     `json:"name"`
	State        string     `json:"state"` // active, paused, disabled
	Reason       string     `json:"reason,omitempty"`
	FailingSince *time.Time `json:"failing_since,omitempty"`
	PausedUntil  *time.Time `json:"paused_until,omitempty"`
	InFlight     int        `json:"in_flight"`
	// Circuit is the endpoint circuit: closed, open or half_open.
	Circuit string `json:"circuit"`
	// NextProbeAt is when an open circuit sends its next probe.
	NextProbeAt *time.Time `json:"next_probe_at,omitempty"`
	// Pending counts the webhook's pending deliveries, OldestPending is
	// when the oldest of them was queued (as the queue gauges count them).
	// Pending is -1 when the store could not be read (QueueError says why).
	Pending       int64      `json:"pending"`
	OldestPending *time.Time `json:"oldest_pending,omitempty"`
	QueueError    string     `json:"queue_error,omitempty"`
}

// WebhookStates reports each configured webhook's state, with its pending
// deliveries read from the store (as a metrics scrape does, bounded to 5 s:
// another process, rowhook redeliver, may have changed them).
func (d *Dispatcher) WebhookStates() []WebhookState {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pending := map[string]QueueStat{}
	stats, statsErr := d.store.Stats(ctx)
	for _, s := range stats {
		if s.Status == StatusPending {
			pending[s.Webhook] = s
		}
	}
	var out []WebhookState
	for name := range d.endpoints {
		st := WebhookState{Name: name, State: "active", Circuit: CircuitClosed, Pending: pending[name].Count}
		if t := pending[name].OldestPending; !t.IsZero() {
			st.OldestPending = &t
		}
		if statsErr != nil {
			st.Pending, st.QueueError = -1, fmt.Sprintf("read queue: %v", statsErr)
		}
		d.qmu.Lock()
		q := d.queues[queueKey{webhook: name}]
		d.qmu.Unlock()
		if q != nil {
			q.mu.Lock()
			st.InFlight = len(q.inflight)
			st.Circuit, st.FailingSince, st.NextProbeAt = q.cb.view()
			if q.cb.paused {
				st.State, st.PausedUntil = "paused", st.NextProbeAt
			}
			if q.disabled != "" {
				st.State, st.Reason = "disabled", q.disabled
			}
			q.mu.Unlock()
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Enable re-enables a webhook disabled by a 410.
func (d *Dispatcher) Enable(ctx context.Context, name string) error {
	if _, ok := d.endpoints[name]; !ok {
		return fmt.Errorf("webhook %q: %w", name, ErrNotFound)
	}
	if err := d.store.SetWebhookDisabled(ctx, name, "", d.clock.Now()); err != nil {
		return err
	}
	q := d.queue(queueKey{webhook: name})
	q.mu.Lock()
	q.disabled = ""
	// Its pending deliveries were failed when it was disabled.
	q.forget()
	d.resetCircuit(q)
	q.mu.Unlock()
	d.m.setWebhookState(name, stateRunning)
	d.log.Info("webhook enabled", "webhook", name)
	q.wake()
	return nil
}
