package adminapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rowhook/rowhook/dispatch"
	"github.com/rowhook/rowhook/dispatch/adminapi"
)

// service is an adminapi.Service answering every call with err (the
// dispatcher's own behaviour is tested in package dispatch, through this
// API over a real store).
type service struct {
	access dispatch.AdminAccess
	err    error
	// seen, when set, records the filter and actor of the last call.
	seen *seen
}

type seen struct {
	filter dispatch.Filter
	actor  string
}

func (s service) AdminAccess() dispatch.AdminAccess { return s.access }
func (s service) Now() time.Time                    { return time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC) }
func (s service) Deliveries(_ context.Context, f dispatch.Filter) ([]dispatch.Delivery, error) {
	if s.seen != nil {
		s.seen.filter = f
	}
	return nil, s.err
}
func (s service) Delivery(context.Context, string) (dispatch.Delivery, []dispatch.Attempt, error) {
	return dispatch.Delivery{}, nil, s.err
}
func (s service) Redeliver(_ context.Context, _ []string, f dispatch.Filter, actor string) ([]string, error) {
	if s.seen != nil {
		s.seen.filter, s.seen.actor = f, actor
	}
	return nil, s.err
}
func (s service) Subscriptions(context.Context) ([]dispatch.Subscription, error) { return nil, s.err }
func (s service) Subscribe(context.Context, string, string) (dispatch.Subscription, error) {
	return dispatch.Subscription{}, s.err
}
func (s service) Unsubscribe(context.Context, string) error { return s.err }
func (s service) WebhookStates() []dispatch.WebhookState    { return nil }
func (s service) Enable(context.Context, string) error      { return s.err }

var _ adminapi.Service = service{}

// TestNew_ErrorStatuses: each error the Service documents maps to its
// status on every route that can return it.
func TestNew_ErrorStatuses(t *testing.T) {
	open := dispatch.AdminAccess{Open: true, Subscriptions: true}
	tests := []struct {
		name         string
		svc          service
		method, path string
		body         string
		want         int
	}{
		{"unknown delivery", service{access: open, err: dispatch.ErrNotFound}, "GET", "/deliveries/d_1", "", 404},
		{"redeliver off", service{access: open, err: dispatch.ErrRedeliverDisabled}, "POST", "/deliveries/d_1/redeliver", "", 403},
		{"redeliver unknown", service{access: open, err: dispatch.ErrNotFound}, "POST", "/deliveries/redeliver?status=dead", "", 404},
		{"subscriptions off", service{access: dispatch.AdminAccess{Open: true}}, "GET", "/subscriptions", "", 404},
		{"subscriptions off, bad body", service{access: dispatch.AdminAccess{Open: true}}, "POST", "/subscriptions", "{", 404},
		{"unknown event", service{access: open, err: &dispatch.UnknownEventError{Event: "X", Known: []string{"Y"}}}, "POST", "/subscriptions", `{"target_url":"https://a/","event":"X"}`, 422},
		{"unknown subscription", service{access: open, err: dispatch.ErrNotFound}, "DELETE", "/subscriptions/sub_1", "", 404},
		{"unknown webhook", service{access: open, err: dispatch.ErrNotFound}, "POST", "/webhooks/nope/enable", "", 404},
		{"no token off loopback", service{access: dispatch.AdminAccess{}}, "GET", "/webhooks", "", 403},
		{"wrong token", service{access: dispatch.AdminAccess{Token: "t0ken"}}, "GET", "/webhooks", "", 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
			req.Header.Set("Authorization", "Bearer nope")
			adminapi.New(tt.svc).ServeHTTP(rec, req)
			if rec.Code != tt.want {
				t.Errorf("%s %s = %d %s, want %d", tt.method, tt.path, rec.Code, rec.Body, tt.want)
			}
		})
	}
	// Protect guards other handlers the same way.
	h := adminapi.Protect(service{access: dispatch.AdminAccess{Token: "t0ken"}})(http.NotFoundHandler())
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/soap/lookup", nil)
	req.Header.Set("Authorization", "Bearer t0ken")
	h.ServeHTTP(rec, req)
	if rec.Code != 404 {
		t.Errorf("Protect with the right token = %d, want the handler's 404", rec.Code)
	}
}

// TestNew_Filters: the delivery list and the bulk re-run read the same
// query: an absolute time range and the searches by record key, event id and
// delivery id; bad values are refused with what was wrong.
func TestNew_Filters(t *testing.T) {
	now := service{}.Now()
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		query string
		want  dispatch.Filter
		err   string
	}{
		{"since=2026-12-01T08:00:00Z&until=2026-12-02T08:00:00%2B01:00", dispatch.Filter{Since: at("2026-12-01T08:00:00Z"), Until: at("2026-12-02T07:00:00Z")}, ""},
		{"since=2h&until=1h", dispatch.Filter{Since: now.Add(-2 * time.Hour), Until: now.Add(-time.Hour)}, ""},
		{"key=crm.vtiger_potential:101&event_id=0-1-5:0&id=msg_1&q=+crm.t:1+&webhook=erp&status=dead",
			dispatch.Filter{Key: "crm.vtiger_potential:101", EventID: "0-1-5:0", ID: "msg_1", Search: "crm.t:1", Webhook: "erp", Status: dispatch.StatusDead}, ""},
		{"until=yesterday", dispatch.Filter{}, `until "yesterday": want a duration (1h, 24h) or an RFC 3339 time`},
		{"since=1h&until=2h", dispatch.Filter{}, "until 2026-12-03T07:00:00Z is not after since 2026-12-03T08:00:00Z"},
	}
	for _, tt := range tests {
		for _, route := range []struct{ method, path string }{{"GET", "/deliveries?"}, {"POST", "/deliveries/redeliver?status=dead&"}} {
			t.Run(route.method+" "+tt.query, func(t *testing.T) {
				got := &seen{}
				rec := httptest.NewRecorder()
				adminapi.New(service{access: dispatch.AdminAccess{Open: true}, seen: got}).ServeHTTP(rec, httptest.NewRequest(route.method, route.path+tt.query, nil))
				if tt.err != "" {
					var body struct{ Error string }
					_ = json.Unmarshal(rec.Body.Bytes(), &body)
					if rec.Code != 400 || body.Error != tt.err {
						t.Errorf("= %d %s, want 400 with %q", rec.Code, rec.Body, tt.err)
					}
					return
				}
				want := tt.want
				if route.method == "POST" && want.Status == "" {
					want.Status = dispatch.StatusDead
				}
				if rec.Code >= 300 || !reflect.DeepEqual(got.filter, want) {
					t.Errorf("= %d %s, filter %+v, want %+v", rec.Code, rec.Body, got.filter, want)
				}
			})
		}
	}
}

// TestNew_RedeliverActor: the delivery log names who asked for a re-run
// (the admin page or another client), how it was admitted and from where,
// never the token.
func TestNew_RedeliverActor(t *testing.T) {
	tests := []struct {
		name   string
		access dispatch.AdminAccess
		page   bool
		want   string
	}{
		{"page with the token", dispatch.AdminAccess{Token: "s3cret-t0ken"}, true, "admin page (token-authenticated, from 10.0.0.5)"},
		{"client with the token", dispatch.AdminAccess{Token: "s3cret-t0ken"}, false, "admin API (token-authenticated, from 10.0.0.5)"},
		{"page on loopback", dispatch.AdminAccess{Open: true}, true, "admin page (loopback listener, no token, from 10.0.0.5)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := &seen{}
			req := httptest.NewRequest("POST", "/deliveries/msg_1/redeliver", nil)
			req.RemoteAddr = "10.0.0.5:41234"
			req.Header.Set("Authorization", "Bearer s3cret-t0ken")
			if tt.page {
				req.Header.Set(adminapi.PageClientHeader, "admin-page")
			}
			adminapi.New(service{access: tt.access, seen: got}).ServeHTTP(httptest.NewRecorder(), req)
			if got.actor != tt.want {
				t.Errorf("actor = %q, want %q", got.actor, tt.want)
			}
		})
	}
}
