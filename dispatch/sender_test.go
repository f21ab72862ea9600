package dispatch_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rowhook/rowhook/dispatch"
	"github.com/rowhook/rowhook/dispatch/dispatchtest"
	"github.com/rowhook/rowhook/dispatch/send"
	"github.com/rowhook/rowhook/rules"
)

// permanentFault is a content type's rejection that says retrying is
// useless (as a SOAP client fault does).
type permanentFault struct{}

func (permanentFault) Error() string   { return "client fault: no such deal" }
func (permanentFault) Permanent() bool { return true }

// TestDispatcher_Sender drives the dispatcher through Deps.NewSender: what
// each outcome of Sender.Send (its documented contract) makes of the
// delivery, without HTTP.
func TestDispatcher_Sender(t *testing.T) {
	var flakyCalls atomic.Int32
	senders := map[string]*dispatchtest.Sender{
		"fault": {SendFunc: func(context.Context, send.Request) (send.Result, error) {
			return send.Result{Status: 500}, &send.RejectedError{Err: permanentFault{}}
		}},
		"transient": {SendFunc: func(context.Context, send.Request) (send.Result, error) {
			return send.Result{Status: 200}, &send.RejectedError{Err: errors.New("server busy")}
		}},
		"unsendable": {SendFunc: func(context.Context, send.Request) (send.Result, error) {
			return send.Result{}, &send.RequestError{Err: errors.New("no URL")}
		}},
		"flaky": {
			BuildFunc: func(ev *rules.Event, _ string) (string, send.Payload, error) {
				return "https://erp.example/deals/" + ev.ID, send.Payload{ContentType: "application/json", Body: []byte(`{}`)}, nil
			},
			SendFunc: func(_ context.Context, r send.Request) (send.Result, error) {
				if !strings.HasPrefix(r.URL, "https://erp.example/deals/") || string(r.Body) != `{}` {
					t.Errorf("sent %s %q, not what Build made", r.URL, r.Body)
				}
				if flakyCalls.Add(1) == 1 {
					return send.Result{}, errors.New("connection refused")
				}
				return send.Result{Status: 204}, nil
			},
		},
		"broken": {BuildFunc: func(*rules.Event, string) (string, send.Payload, error) {
			return "", send.Payload{}, errors.New("template {{ row.x }}: no value")
		}},
	}
	cfg := dispatch.Config{Webhooks: map[string]dispatch.WebhookConfig{}}
	for name := range senders {
		w := hook("https://unused.example/")
		w.Retry = fast()
		w.Retry.MaxAttempts = 3
		cfg.Webhooks[name] = w
	}
	h := start(t, cfg, dispatch.Deps{NewSender: func(name string, _ send.Config, _ send.Codec) (dispatch.Sender, error) {
		return senders[name], nil
	}})
	evs := map[string]rules.Event{}
	for name := range senders {
		evs[name] = event("E", name)
		h.enqueue(evs[name])
	}
	tests := []struct {
		webhook  string
		status   dispatch.Status
		attempts int
		errText  string
	}{
		{"fault", dispatch.StatusFailed, 1, "http 500: client fault"},
		{"transient", dispatch.StatusDead, 3, "http 200: server busy"},
		{"unsendable", dispatch.StatusFailed, 1, "no URL"},
		{"flaky", dispatch.StatusOK, 2, ""},
		{"broken", dispatch.StatusFailed, 0, "no value"},
	}
	for _, tt := range tests {
		t.Run(tt.webhook, func(t *testing.T) {
			d := h.waitStatus(evs[tt.webhook], tt.webhook, tt.status)
			if d.Attempts != tt.attempts {
				t.Errorf("attempts = %d, want %d", d.Attempts, tt.attempts)
			}
			if !strings.Contains(d.LastError, tt.errText) {
				t.Errorf("last error %q, want %q in it", d.LastError, tt.errText)
			}
		})
	}
}
