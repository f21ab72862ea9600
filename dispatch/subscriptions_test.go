package dispatch_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/rowhook/rowhook/dispatch"
	"github.com/rowhook/rowhook/dispatch/adminapi"
)

// REST hooks as Zapier sends them: its legacy subscription_url beside
// target_url, the hookUrl name of its CLI examples, an event the rules must
// produce, and a subscription read back by id.
func TestDispatcher_SubscriptionsZapier(t *testing.T) {
	rc := newReceiver(t, nil)
	cfg := dispatch.Config{}
	cfg.Admin.Token = "tok"
	cfg.Admin.Subscriptions.Enabled = true
	cfg.Admin.Subscriptions.AllowedHosts = []string{"127.0.0.1"}
	h := start(t, cfg, dispatch.Deps{Events: []string{"NewOpportunity", "ContactCreated", "NewOpportunity"}})
	admin := adminapi.New(h.d)

	zapier := fmt.Sprintf(`{"subscription_url": "%[1]s/hooks/standard/1/abc", "target_url": "%[1]s/hooks/standard/1/abc", "event": "NewOpportunity"}`, rc.URL)
	code, body := adminRequest(t, admin, "POST", "/subscriptions", "tok", zapier)
	if code != 201 || body["target_url"] != rc.URL+"/hooks/standard/1/abc" || body["event"] != "NewOpportunity" {
		t.Fatalf("Zapier's body = %d %v, want 201 with the target_url", code, body)
	}
	zapID, _ := body["id"].(string)

	code, body = adminRequest(t, admin, "POST", "/subscriptions", "tok", `{"hookUrl": "`+rc.URL+`/zap", "event": "ContactCreated"}`)
	if code != 201 || body["target_url"] != rc.URL+"/zap" {
		t.Fatalf("hookUrl = %d %v, want 201 with target_url %s/zap", code, body, rc.URL)
	}
	hookID, _ := body["id"].(string)

	for _, tc := range []struct {
		name, body string
		code       int
		want       string
	}{
		{"target_url and hookUrl differ", `{"target_url": "` + rc.URL + `/a", "hookUrl": "` + rc.URL + `/b", "event": "ContactCreated"}`, 400, "differ"},
		{"another unknown field", `{"target_url": "` + rc.URL + `/a", "event": "ContactCreated", "evnet": "x"}`, 400, "unknown field"},
		{"no target", `{"event": "ContactCreated"}`, 400, ""},
		{"event no rule produces", `{"target_url": "` + rc.URL + `/a", "event": "new_contact"}`, 422, "new_contact"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := adminRequest(t, admin, "POST", "/subscriptions", "tok", tc.body)
			if code != tc.code || !strings.Contains(mustJSON(body), tc.want) {
				t.Errorf("= %d %v, want %d naming %s", code, body, tc.code, tc.want)
			}
		})
	}
	code, body = adminRequest(t, admin, "POST", "/subscriptions", "tok", `{"target_url": "`+rc.URL+`/a", "event": "new_contact"}`)
	if got := mustJSON(body["events"]); got != `["ContactCreated","NewOpportunity"]` {
		t.Errorf("unknown event: events = %s, want the known events sorted", got)
	}
	if msg, _ := body["error"].(string); !strings.Contains(msg, "ContactCreated, NewOpportunity") {
		t.Errorf("unknown event: error %q does not name the known events", msg)
	}
	if code, body := adminRequest(t, admin, "POST", "/subscriptions", "tok", `{"target_url": "`+rc.URL+`/all", "event": "*"}`); code != 201 {
		t.Errorf("event * = %d %v, want 201", code, body)
	}

	// Read back by id; only with the token.
	code, body = adminRequest(t, admin, "GET", "/subscriptions/"+zapID, "tok", "")
	if code != 200 || body["id"] != zapID || body["event"] != "NewOpportunity" || body["target_url"] != rc.URL+"/hooks/standard/1/abc" || body["created_at"] == nil {
		t.Errorf("GET /subscriptions/%s = %d %v", zapID, code, body)
	}
	if code, _ := adminRequest(t, admin, "GET", "/subscriptions/"+zapID, "", ""); code != 401 {
		t.Errorf("GET /subscriptions/{id} without the token = %d, want 401", code)
	}
	if code, body := adminRequest(t, admin, "GET", "/subscriptions/sub_nope", "tok", ""); code != 404 || !strings.Contains(mustJSON(body), "sub_nope") {
		t.Errorf("GET an unknown subscription = %d %v, want 404 naming it", code, body)
	}

	// The hookUrl subscription delivers to that URL.
	ev := event("ContactCreated")
	h.enqueue(ev)
	waitFor(t, "delivery to the hookUrl", func() bool {
		for _, r := range rc.got() {
			if r.URL == "/zap" {
				return true
			}
		}
		return false
	})
	if code, _ := adminRequest(t, admin, "DELETE", "/subscriptions/"+hookID, "tok", ""); code != 204 {
		t.Errorf("DELETE = %d, want 204", code)
	}
	if code, _ := adminRequest(t, admin, "GET", "/subscriptions/"+hookID, "tok", ""); code != 404 {
		t.Errorf("GET a deleted subscription = %d, want 404", code)
	}
}

// Without Deps.Events (a dispatcher used on its own) any event name is
// accepted, as before.
func TestDispatcher_SubscribeWithoutEvents(t *testing.T) {
	rc := newReceiver(t, nil)
	cfg := dispatch.Config{}
	cfg.Admin.Subscriptions.Enabled = true
	cfg.Admin.Subscriptions.AllowedHosts = []string{"127.0.0.1"}
	h := start(t, cfg, dispatch.Deps{AdminOpen: true})
	if code, body := adminRequest(t, adminapi.New(h.d), "POST", "/subscriptions", "", `{"target_url": "`+rc.URL+`/a", "event": "Anything"}`); code != 201 {
		t.Errorf("= %d %v, want 201", code, body)
	}
	// An empty list (no rules) refuses every name but *.
	h.stop()
	h = start(t, cfg, dispatch.Deps{AdminOpen: true, Events: []string{}})
	code, body := adminRequest(t, adminapi.New(h.d), "POST", "/subscriptions", "", `{"target_url": "`+rc.URL+`/a", "event": "Anything"}`)
	if code != 422 || mustJSON(body["events"]) != `[]` {
		t.Errorf("no rules: = %d %v, want 422 with events []", code, body)
	}
}
