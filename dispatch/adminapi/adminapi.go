// Package adminapi serves the dispatcher's JSON admin API: the delivery
// log, re-runs, REST-hook subscriptions and webhook states. It holds no
// state of its own: every request is one call on a Service (the
// *dispatch.Dispatcher).
package adminapi

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rowhook/rowhook/dispatch"
)

// Accessor says how the admin API admits requests.
type Accessor interface {
	// AdminAccess returns the bearer token, whether the listener is
	// loopback-only (no token needed), the body limit of views and
	// whether subscriptions are enabled.
	AdminAccess() dispatch.AdminAccess
}

// Service is what the admin API calls; *dispatch.Dispatcher implements it.
// Errors are mapped to statuses with errors.Is and errors.As:
// dispatch.ErrNotFound 404, dispatch.ErrSubscriptionsDisabled 404,
// dispatch.ErrRedeliverDisabled 403, *dispatch.UnknownEventError 422.
type Service interface {
	Accessor
	// Now is the clock relative times (?since=24h) are read against.
	Now() time.Time
	// Deliveries lists deliveries matching f, newest first.
	Deliveries(ctx context.Context, f dispatch.Filter) ([]dispatch.Delivery, error)
	// Delivery returns one delivery with its log.
	Delivery(ctx context.Context, id string) (dispatch.Delivery, []dispatch.Attempt, error)
	// Redeliver makes deliveries pending again and returns their ids.
	Redeliver(ctx context.Context, ids []string, f dispatch.Filter, actor string) ([]string, error)
	// Subscriptions lists the subscriptions.
	Subscriptions(ctx context.Context) ([]dispatch.Subscription, error)
	// Subscribe adds a subscription to event at targetURL.
	Subscribe(ctx context.Context, targetURL, event string) (dispatch.Subscription, error)
	// Unsubscribe deletes a subscription.
	Unsubscribe(ctx context.Context, id string) error
	// WebhookStates reports each configured webhook's state.
	WebhookStates() []dispatch.WebhookState
	// Enable re-enables a webhook disabled by a 410.
	Enable(ctx context.Context, name string) error
}

var _ Service = (*dispatch.Dispatcher)(nil)

// New returns the admin API of svc:
//
//	GET    /deliveries?webhook=&status=&since=&until=&limit=&before=   newest first
//	       &key=&event_id=&id=&q=                                 searches
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
// since and until are a duration back from now or an RFC 3339 time; until
// is exclusive. key is a record key (schema.table:pk, or a prefix ending in
// *), event_id an event id, id a delivery id, and q any of the three. The
// bulk re-run takes the same filters.
//
// POST /subscriptions takes Zapier's REST-hook body as it is sent: the
// legacy duplicate "subscription_url" is ignored and "hookUrl" (the name
// Zapier's CLI examples use) is an alias of "target_url"; any other unknown
// field is refused. An event no rule produces is refused with 422 and the
// known events (dispatch.Deps.Events).
//
// Every request needs "Authorization: Bearer <admin.token>" unless the
// access is open (dispatch.Deps.AdminOpen: a loopback-only listener). Mount
// it under a prefix with http.StripPrefix.
func New(svc Service) http.Handler {
	a := &api{svc: svc}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /deliveries", a.handleList)
	mux.HandleFunc("GET /deliveries/{id}", a.handleGet)
	mux.HandleFunc("POST /deliveries/{id}/redeliver", a.handleRedeliverOne)
	mux.HandleFunc("POST /deliveries/redeliver", a.handleRedeliverBulk)
	mux.HandleFunc("GET /subscriptions", a.handleSubscriptions)
	mux.HandleFunc("POST /subscriptions", a.handleSubscribe)
	mux.HandleFunc("GET /subscriptions/{id}", a.handleSubscription)
	mux.HandleFunc("DELETE /subscriptions/{id}", a.handleUnsubscribe)
	mux.HandleFunc("GET /webhooks", a.handleWebhooks)
	mux.HandleFunc("POST /webhooks/{name}/enable", a.handleEnable)
	return Protect(svc)(mux)
}

// Protect returns the admin API's authentication as middleware, for other
// admin endpoints served next to it (the SOAP look-ups, the admin page's
// data).
func Protect(acc Accessor) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		access := acc.AdminAccess()
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !access.Open {
				if access.Token == "" {
					writeError(w, http.StatusForbidden, errors.New("admin API needs admin.token when the listener is not loopback-only"))
					return
				}
				got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
				if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(access.Token)) != 1 {
					w.Header().Set("WWW-Authenticate", `Bearer realm="rowhook"`)
					writeError(w, http.StatusUnauthorized, errors.New("missing or wrong bearer token"))
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}

type api struct{ svc Service }

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

func (a *api) filterFromQuery(r *http.Request) (dispatch.Filter, error) {
	q := r.URL.Query()
	f := dispatch.Filter{Webhook: q.Get("webhook"), Subscription: q.Get("subscription"), Status: dispatch.Status(q.Get("status")),
		Key: q.Get("key"), EventID: q.Get("event_id"), ID: q.Get("id"), Search: strings.TrimSpace(q.Get("q"))}
	if f.Status != "" && !dispatch.ValidStatus(f.Status) {
		return f, fmt.Errorf("status %q: want pending, ok, failed or dead", f.Status)
	}
	var err error
	now := a.svc.Now()
	if f.Since, err = dispatch.ParseSince(q.Get("since"), now); err != nil {
		return f, err
	}
	if f.Until, err = dispatch.ParseUntil(q.Get("until"), now); err != nil {
		return f, err
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since) {
		return f, fmt.Errorf("until %s is not after since %s", f.Until.Format(time.RFC3339), f.Since.Format(time.RFC3339))
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

func (a *api) handleList(w http.ResponseWriter, r *http.Request) {
	f, err := a.filterFromQuery(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	ds, err := a.svc.Deliveries(r.Context(), f)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	out := struct {
		Deliveries []dispatch.DeliveryView `json:"deliveries"`
		Next       string                  `json:"next,omitempty"`
	}{Deliveries: []dispatch.DeliveryView{}}
	limit := a.svc.AdminAccess().BodyLimit
	for _, dl := range ds {
		v := dispatch.ViewDelivery(dl, nil, limit)
		v.Body, v.BodyBase64 = "", ""
		out.Deliveries = append(out.Deliveries, v)
	}
	n := f.Limit
	if n == 0 {
		n = 100
	}
	if len(ds) == n {
		out.Next = strconv.FormatInt(ds[len(ds)-1].Seq, 10)
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *api) handleGet(w http.ResponseWriter, r *http.Request) {
	dl, log, err := a.svc.Delivery(r.Context(), r.PathValue("id"))
	if errors.Is(err, dispatch.ErrNotFound) {
		writeError(w, http.StatusNotFound, err)
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, dispatch.ViewDelivery(dl, log, a.svc.AdminAccess().BodyLimit))
}

// PageClientHeader is the header the admin page sends with a re-run
// (value "admin-page") so that the delivery log says the page asked, not
// some other API client. It names the client only; the admission (token or
// loopback) is what Protect checked.
const PageClientHeader = "X-Rowhook-Client"

// actorOf says who asked for a re-run, for the delivery log: the admin page
// or another API client, how it was admitted, and from which address. Never
// the token itself.
func (a *api) actorOf(r *http.Request) string {
	who := "admin API"
	if r.Header.Get(PageClientHeader) == "admin-page" {
		who = "admin page"
	}
	how := "token-authenticated"
	if a.svc.AdminAccess().Open {
		how = "loopback listener, no token"
	}
	from := r.RemoteAddr
	if host, _, err := net.SplitHostPort(from); err == nil {
		from = host
	}
	return fmt.Sprintf("%s (%s, from %s)", who, how, from)
}

func redeliverStatus(err error) int {
	switch {
	case errors.Is(err, dispatch.ErrRedeliverDisabled):
		return http.StatusForbidden
	case errors.Is(err, dispatch.ErrNotFound):
		return http.StatusNotFound
	}
	return http.StatusInternalServerError
}

func (a *api) handleRedeliverOne(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	done, err := a.svc.Redeliver(r.Context(), []string{id}, dispatch.Filter{}, a.actorOf(r))
	if err != nil {
		writeError(w, redeliverStatus(err), err)
		return
	}
	if len(done) == 0 {
		writeError(w, http.StatusConflict, fmt.Errorf("delivery %s is already pending", id))
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"redelivered": done})
}

func (a *api) handleRedeliverBulk(w http.ResponseWriter, r *http.Request) {
	f, err := a.filterFromQuery(r)
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
	done, err := a.svc.Redeliver(r.Context(), body.IDs, f, a.actorOf(r))
	if err != nil {
		writeError(w, redeliverStatus(err), err)
		return
	}
	if done == nil {
		done = []string{}
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"redelivered": done})
}

// subscriptionsOff answers 404 when subscriptions are disabled, before
// the request is looked at.
func (a *api) subscriptionsOff(w http.ResponseWriter) bool {
	if a.svc.AdminAccess().Subscriptions {
		return false
	}
	writeError(w, http.StatusNotFound, dispatch.ErrSubscriptionsDisabled)
	return true
}

// subscriptionError answers a failed subscription call.
func subscriptionError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, dispatch.ErrSubscriptionsDisabled), errors.Is(err, dispatch.ErrNotFound):
		writeError(w, http.StatusNotFound, err)
	default:
		writeError(w, http.StatusInternalServerError, err)
	}
}

func (a *api) handleSubscriptions(w http.ResponseWriter, r *http.Request) {
	if a.subscriptionsOff(w) {
		return
	}
	subs, err := a.svc.Subscriptions(r.Context())
	if err != nil {
		subscriptionError(w, err)
		return
	}
	if subs == nil {
		subs = []dispatch.Subscription{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"subscriptions": subs})
}

func (a *api) handleSubscription(w http.ResponseWriter, r *http.Request) {
	if a.subscriptionsOff(w) {
		return
	}
	id := r.PathValue("id")
	subs, err := a.svc.Subscriptions(r.Context())
	if err != nil {
		subscriptionError(w, err)
		return
	}
	for _, s := range subs {
		if s.ID == id {
			writeJSON(w, http.StatusOK, s)
			return
		}
	}
	writeError(w, http.StatusNotFound, fmt.Errorf("subscription %q: %w", id, dispatch.ErrNotFound))
}

func (a *api) handleSubscribe(w http.ResponseWriter, r *http.Request) {
	if a.subscriptionsOff(w) {
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
	s, err := a.svc.Subscribe(r.Context(), target, body.Event)
	var ue *dispatch.UnknownEventError
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

func (a *api) handleUnsubscribe(w http.ResponseWriter, r *http.Request) {
	if a.subscriptionsOff(w) {
		return
	}
	if err := a.svc.Unsubscribe(r.Context(), r.PathValue("id")); err != nil {
		subscriptionError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *api) handleWebhooks(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"webhooks": a.svc.WebhookStates()})
}

func (a *api) handleEnable(w http.ResponseWriter, r *http.Request) {
	err := a.svc.Enable(r.Context(), r.PathValue("name"))
	if errors.Is(err, dispatch.ErrNotFound) {
		writeError(w, http.StatusNotFound, err)
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
