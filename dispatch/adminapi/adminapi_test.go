package adminapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
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
}

func (s service) AdminAccess() dispatch.AdminAccess { return s.access }
func (s service) Now() time.Time                    { return time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC) }
func (s service) Deliveries(context.Context, dispatch.Filter) ([]dispatch.Delivery, error) {
	return nil, s.err
}
func (s service) Delivery(context.Context, string) (dispatch.Delivery, []dispatch.Attempt, error) {
	return dispatch.Delivery{}, nil, s.err
}
func (s service) Redeliver(context.Context, []string, dispatch.Filter, string) ([]string, error) {
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
