package dispatch

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// AdminHandler serves the JSON admin API:
//
//	GET    /deliveries?webhook=&status=&since=&limit=&before=   newest first
//	GET    /deliveries/{id}                                      with its log
//	POST   /deliveries/{id}/redeliver
//	POST   /deliveries/redeliver?status=dead&since=24h&webhook=  bulk
//	GET    /subscriptions
//	POST   /subscriptions {"target_url": "...", "event": "..."} → 201
//	GET    /subscriptions/{id}
//	DELETE /subscriptions/{id}
//	GET    /webhooks                                             state of each webhook
//	POST   /webhooks/{name}/enable                               after a 410
//
// POST /subscriptions takes Zapier's REST-hook body as it is sent: the
// legacy duplicate "subscription_url" is ignored and "hookUrl" (the name
// Zapier's CLI examples use) is an alias of "target_url"; any other unknown
// field is refused. An event no rule produces is refused with 422 and the
// known events (Deps.Events).
//
// Every request needs "Authorization: Bearer <admin.token>" unless
// Deps.AdminOpen (a loopback-only listener). Mount it under a prefix with
// http.StripPrefix.
func (d *Dispatcher) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /deliveries", d.handleList)
	mux.HandleFunc("GET /deliveries/{id}", d.handleGet)
	mux.HandleFunc("POST /deliveries/{id}/redeliver", d.handleRedeliverOne)
	mux.HandleFunc("POST /deliveries/redeliver", d.handleRedeliverBulk)
	mux.HandleFunc("GET /subscriptions", d.handleSubscriptions)
	mux.HandleFunc("POST /subscriptions", d.handleSubscribe)
	mux.HandleFunc("GET /subscriptions/{id}", d.handleSubscription)
	mux.HandleFunc("DELETE /subscriptions/{id}", d.handleUnsubscribe)
	mux.HandleFunc("GET /webhooks", d.handleWebhooks)
	mux.HandleFunc("POST /webhooks/{name}/enable", d.handleEnable)
	return d.adminAuth(mux)
}

// Protect puts h behind the admin API's authentication, for other admin
// endpoints served next to it (the SOAP look-ups).
func (d *Dispatcher) Protect(h http.Handler) http.Handler { return d.adminAuth(h) }

func (d *Dispatcher) adminAuth(next http.Handler) http.Handler {
	token := d.cfg.Admin.Token
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !d.adminOpen {
			if token == "" {
				writeError(w, http.StatusForbidden, errors.New("admin API needs admin.token when the listener is not loopback-only"))
				return
			}
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="rowhook"`)
				writeError(w, http.StatusUnauthorized, errors.New("missing or wrong bearer token"))
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

func (d *Dispatcher) filterFromQuery(r *http.Request) (Filter, error) {
	q := r.URL.Query()
	f := Filter{Webhook: q.Get("webhook"), Subscription: q.Get("subscription"), Status: Status(q.Get("status"))}
	if f.Status != "" && !ValidStatus(f.Status) {
		return f, fmt.Errorf("status %q: want pending, ok, failed or dead", f.Status)
	}
	var err error
	if f.Since, err = ParseSince(q.Get("since"), d.clock.Now()); err != nil {
		return f, err
	}
	if s := q.Get("limit"); s != "" {
		if f.Limit, err = strconv.Atoi(s); err != nil || f.Limit < 1 || f.Limit > 1000 {
			return f, fmt.Errorf("limit %q: want 1 to 1000", s)
		}
	}
	if s := q.Get("before"); s != "" {
		if f.AfterSeq, err = strconv.ParseInt(s, 10, 64); err != nil {
			return f, fmt.Errorf("before %q: want a sequence number", s)
		}
	}
	return f, nil
}

func (d *Dispatcher) handleList(w http.ResponseWriter, r *http.Request) {
	f, err := d.filterFromQuery(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	ds, err := d.store.List(r.Context(), f)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	out := struct {
		Deliveries []DeliveryView `json:"deliveries"`
		Next       string         `json:"next,omitempty"`
	}{Deliveries: []DeliveryView{}}
	for _, dl := range ds {
		v := ViewDelivery(dl, nil, d.cfg.State.BodyLimit)
		v.Body, v.BodyBase64 = "", ""
		out.Deliveries = append(out.Deliveries, v)
	}
	limit := f.Limit
	if limit == 0 {
		limit = 100
	}
	if len(ds) == limit {
		out.Next = strconv.FormatInt(ds[len(ds)-1].Seq, 10)
	}
	writeJSON(w, http.StatusOK, out)
}

func (d *Dispatcher) handleGet(w http.ResponseWriter, r *http.Request) {
	dl, log, err := d.store.Get(r.Context(), r.PathValue("id"))
	if errors.Is(err, ErrNotFound) {
		writeError(w, http.StatusNotFound, err)
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, ViewDelivery(dl, log, d.cfg.State.BodyLimit))
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
		q.wake()
	}
	return done, nil
}

func truncList(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], fmt.Sprintf("… %d more", len(s)-n))
	}
	return s
}

func actorOf(r *http.Request) string { return "admin api from " + r.RemoteAddr }

func (d *Dispatcher) redeliverStatus(err error) int {
	switch {
	case errors.Is(err, ErrRedeliverDisabled):
		return http.StatusForbidden
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	}
	return http.StatusInternalServerError
}

func (d *Dispatcher) handleRedeliverOne(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	done, err := d.Redeliver(r.Context(), []string{id}, Filter{}, actorOf(r))
	if err != nil {
		writeError(w, d.redeliverStatus(err), err)
		return
	}
	if len(done) == 0 {
		writeError(w, http.StatusConflict, fmt.Errorf("delivery %s is already pending", id))
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"redelivered": done})
}

func (d *Dispatcher) handleRedeliverBulk(w http.ResponseWriter, r *http.Request) {
	f, err := d.filterFromQuery(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	var body struct {
		IDs []string `json:"ids"`
	}
	if r.ContentLength != 0 {
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&body); err != nil && !errors.Is(err, io.EOF) {
			writeError(w, http.StatusBadRequest, fmt.Errorf("body: %w", err))
			return
		}
	}
	if len(body.IDs) == 0 && f.Status == "" {
		writeError(w, http.StatusBadRequest, errors.New("give ids in the body or ?status= (failed, dead, ok)"))
		return
	}
	done, err := d.Redeliver(r.Context(), body.IDs, f, actorOf(r))
	if err != nil {
		writeError(w, d.redeliverStatus(err), err)
		return
	}
	if done == nil {
		done = []string{}
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"redelivered": done})
}

var errSubscriptionsDisabled = errors.New("subscriptions are disabled (admin.subscriptions.enabled)")

func (d *Dispatcher) handleSubscriptions(w http.ResponseWriter, r *http.Request) {
	if d.subEndpoint == nil {
		writeError(w, http.StatusNotFound, errSubscriptionsDisabled)
		return
	}
	subs, err := d.store.Subscriptions(r.Context())
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	if subs == nil {
		subs = []Subscription{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"subscriptions": subs})
}

func (d *Dispatcher) handleSubscription(w http.ResponseWriter, r *http.Request) {
	if d.subEndpoint == nil {
		writeError(w, http.StatusNotFound, errSubscriptionsDisabled)
		return
	}
	id := r.PathValue("id")
	subs, err := d.store.Subscriptions(r.Context())
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	for _, s := range subs {
		if s.ID == id {
			writeJSON(w, http.StatusOK, s)
			return
		}
	}
	writeError(w, http.StatusNotFound, fmt.Errorf("subscription %q: %w", id, ErrNotFound))
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
		return Subscription{}, errSubscriptionsDisabled
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
	d.log.Info("subscription added", "subscription", s.ID, "event", event, "target_url", newRedactor(WebhookConfig{}).url(targetURL))
	return s, nil
}

func (d *Dispatcher) handleSubscribe(w http.ResponseWriter, r *http.Request) {
	if d.subEndpoint == nil {
		writeError(w, http.StatusNotFound, errSubscriptionsDisabled)
		return
	}
	var body struct {
		TargetURL string `json:"target_url"`
		HookURL   string `json:"hookUrl"` // alias of target_url
		Event     string `json:"event"`
		// Zapier sends its legacy duplicate of target_url too: ignored.
		SubscriptionURL json.RawMessage `json:"subscription_url"`
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("body: want {\"target_url\": ..., \"event\": ...}: %w", err))
		return
	}
	target := body.TargetURL
	switch {
	case target == "":
		target = body.HookURL
	case body.HookURL != "" && body.HookURL != target:
		writeError(w, http.StatusBadRequest, errors.New("body: target_url and hookUrl differ; give one"))
		return
	}
	s, err := d.Subscribe(r.Context(), target, body.Event)
	var ue *UnknownEventError
	if errors.As(err, &ue) {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"error": err.Error(), "events": ue.Known})
		return
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	w.Header().Set("Location", "subscriptions/"+s.ID)
	writeJSON(w, http.StatusCreated, s)
}

func (d *Dispatcher) handleUnsubscribe(w http.ResponseWriter, r *http.Request) {
	if d.subEndpoint == nil {
		writeError(w, http.StatusNotFound, errSubscriptionsDisabled)
		return
	}
	id := r.PathValue("id")
	err := d.removeSubscription(r.Context(), id, "subscription deleted")
	if errors.Is(err, ErrNotFound) {
		writeError(w, http.StatusNotFound, err)
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	d.log.Info("subscription deleted", "subscription", id)
	w.WriteHeader(http.StatusNoContent)
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
}

// WebhookStates reports each configured webhook's state.
func (d *Dispatcher) WebhookStates() []WebhookState {
	var out []WebhookState
	for name := range d.endpoints {
		st := WebhookState{Name: name, State: "active", Circuit: CircuitClosed}
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

func (d *Dispatcher) handleWebhooks(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"webhooks": d.WebhookStates()})
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
	d.resetCircuit(q)
	q.mu.Unlock()
	d.m.paused.WithLabelValues(name).Set(0)
	d.log.Info("webhook enabled", "webhook", name)
	q.wake()
	return nil
}

func (d *Dispatcher) handleEnable(w http.ResponseWriter, r *http.Request) {
	err := d.Enable(r.Context(), r.PathValue("name"))
	if errors.Is(err, ErrNotFound) {
		writeError(w, http.StatusNotFound, err)
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
