package dispatch

import (
	"strings"
	"testing"
	"time"

	"github.com/rowhook/rowhook/rules"
)

// TestBuild_SubscriptionsPerEvent: in one call, events of different names
// alternate; each gets the deliveries of its own subscriptions (and of
// "*"), in id order, after the configured webhooks', and a scheduled
// webhook's first slot.
func TestBuild_SubscriptionsPerEvent(t *testing.T) {
	cfg := Config{Webhooks: map[string]WebhookConfig{
		"erp":   {URL: "http://127.0.0.1:9/erp"},
		"daily": {URL: "http://127.0.0.1:9/daily", Mode: ModeScheduled, Schedule: "0 6 * * *"},
	}}
	cfg.Admin.Token = "tok"
	cfg.Admin.Subscriptions.Enabled = true
	cfg.Admin.Subscriptions.AllowedHosts = []string{"127.0.0.1"}
	d, err := New(cfg, nil, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []Subscription{{ID: "sub_b", Event: "A", URL: "http://127.0.0.1:9/b"}, {ID: "sub_a", Event: "A", URL: "http://127.0.0.1:9/a"},
		{ID: "sub_all", Event: "*", URL: "http://127.0.0.1:9/all"}, {ID: "sub_c", Event: "C", URL: "http://127.0.0.1:9/c"}} {
		d.subs[s.ID] = s
	}
	at := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	ev := func(id, name string, webhooks ...string) rules.Event {
		return rules.Event{ID: id, Rule: "r", Name: name, Webhooks: webhooks, Timestamp: at,
			Body: rules.Body{{Name: "id", Value: int64(1)}}}
	}
	ds, err := d.build(nil, []rules.Event{ev("e1", "A", "erp"), ev("e2", "B", "daily"), ev("e3", "A"), ev("e4", "C", "erp", "daily")})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, nd := range ds {
		got = append(got, nd.EventID+">"+nd.Webhook+"/"+nd.Subscription+" "+nd.URL)
		if nd.ID != DeliveryID(at, nd.EventID, nd.Webhook, nd.Subscription) || nd.Error != "" || string(nd.Body) != `{"id":1}` {
			t.Errorf("delivery %+v", nd)
		}
		if want := nd.CreatedAt; nd.Webhook == "daily" {
			if nd.NextAt.Hour() != 6 || !nd.NextAt.After(want) {
				t.Errorf("%s: next at %v, want 06:00 after %v", nd.EventID, nd.NextAt, want)
			}
		} else if !nd.NextAt.Equal(want) {
			t.Errorf("%s to %s: next at %v, want now %v", nd.EventID, nd.Webhook, nd.NextAt, want)
		}
	}
	want := []string{
		"e1>erp/ http://127.0.0.1:9/erp", "e1>" + SubscriptionWebhook + "/sub_a http://127.0.0.1:9/a",
		"e1>" + SubscriptionWebhook + "/sub_all http://127.0.0.1:9/all", "e1>" + SubscriptionWebhook + "/sub_b http://127.0.0.1:9/b",
		"e2>daily/ http://127.0.0.1:9/daily", "e2>" + SubscriptionWebhook + "/sub_all http://127.0.0.1:9/all",
		"e3>" + SubscriptionWebhook + "/sub_a http://127.0.0.1:9/a", "e3>" + SubscriptionWebhook + "/sub_all http://127.0.0.1:9/all",
		"e3>" + SubscriptionWebhook + "/sub_b http://127.0.0.1:9/b",
		"e4>erp/ http://127.0.0.1:9/erp", "e4>daily/ http://127.0.0.1:9/daily", "e4>" + SubscriptionWebhook + "/sub_all http://127.0.0.1:9/all",
		"e4>" + SubscriptionWebhook + "/sub_c http://127.0.0.1:9/c",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("deliveries:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
