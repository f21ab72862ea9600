package dispatch_test

import (
	"context"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/dispatch"
)

// series returns every series of the registry as `name{label="value",…}` →
// value (counters, gauges; histograms by their sample count).
func series(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			sort.Strings(labels)
			v := m.GetCounter().GetValue() + m.GetGauge().GetValue() + float64(m.GetHistogram().GetSampleCount())
			out[mf.GetName()+"{"+strings.Join(labels, ",")+"}"] = v
		}
	}
	return out
}

// Every series whose labels are known at start (each webhook, each outcome)
// exists at 0 before the first delivery, so increase() sees the first dead
// letter as 0 → 1 rather than a series appearing at 1.
func TestDispatcher_SeriesStartAtZero(t *testing.T) {
	rc := newReceiver(t, func(int, *http.Request, []byte) (int, http.Header, string) { return 500, nil, "down" })
	failing := hook(rc.URL)
	failing.Retry.MaxAttempts = 1
	cfg := dispatch.Config{Webhooks: map[string]dispatch.WebhookConfig{"erp": failing, "crm": hook(rc.URL)}}
	cfg.Admin.Subscriptions.Enabled = true
	h := start(t, cfg, dispatch.Deps{})

	at0 := series(t, h.reg)
	var want []string
	for _, w := range []string{"erp", "crm", dispatch.SubscriptionWebhook} {
		want = append(want,
			"rowhook_dead_letters_total{webhook="+w+"}",
			"rowhook_delivery_retries_total{webhook="+w+"}",
			"rowhook_webhook_paused{webhook="+w+"}",
			"rowhook_oldest_pending_age_seconds{webhook="+w+"}",
			"rowhook_delivery_attempt_duration_seconds{webhook="+w+"}",
		)
		for _, o := range []string{"ok", "retry", "failed", "dead", "gone"} {
			want = append(want, "rowhook_deliveries_total{outcome="+o+",webhook="+w+"}")
		}
		for _, s := range []string{"pending", "failed", "dead"} {
			want = append(want, "rowhook_queue_depth{state="+s+",webhook="+w+"}")
		}
	}
	for _, s := range want {
		v, ok := at0[s]
		if !ok {
			t.Errorf("%s is absent at start, want it at 0", s)
		} else if v != 0 {
			t.Errorf("%s = %v at start, want 0", s, v)
		}
	}

	ev := event("E", "erp")
	h.enqueue(ev)
	h.waitStatus(ev, "erp", dispatch.StatusDead)
	after := series(t, h.reg)
	for s, v := range map[string]float64{
		"rowhook_dead_letters_total{webhook=erp}":                1,
		"rowhook_deliveries_total{outcome=dead,webhook=erp}":     1,
		"rowhook_queue_depth{state=dead,webhook=erp}":            1,
		"rowhook_queue_depth{state=pending,webhook=erp}":         0,
		"rowhook_oldest_pending_age_seconds{webhook=erp}":        0,
		"rowhook_dead_letters_total{webhook=crm}":                0,
		"rowhook_queue_depth{state=dead,webhook=crm}":            0,
		"rowhook_deliveries_total{outcome=dead,webhook=crm}":     0,
		"rowhook_delivery_attempt_duration_seconds{webhook=erp}": 1,
	} {
		if got, ok := after[s]; !ok || got != v {
			t.Errorf("after a dead letter: %s = %v (present %v), want %v", s, got, ok, v)
		}
	}
}

// gaugeValue reads a sample of a metric with one label from h's registry.
func gaugeValue(h *harness, name, label string) float64 {
	mfs, _ := h.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == label {
				return m.GetGauge().GetValue()
			}
		}
	}
	return -1
}

func TestDispatcher_Metrics(t *testing.T) {
	rc := newReceiver(t, func(n int, _ *http.Request, _ []byte) (int, http.Header, string) {
		if n == 1 {
			return 500, nil, ""
		}
		return 200, nil, ""
	})
	h := start(t, dispatch.Config{Webhooks: map[string]dispatch.WebhookConfig{"erp": hook(rc.URL)}}, dispatch.Deps{})
	ev := event("E", "erp")
	h.enqueue(ev)
	h.waitStatus(ev, "erp", dispatch.StatusOK)
	expected := `
# HELP rowhook_deliveries_total Delivery attempts by webhook and outcome (ok, retry, failed, dead, gone).
# TYPE rowhook_deliveries_total counter
rowhook_deliveries_total{outcome="dead",webhook="erp"} 0
rowhook_deliveries_total{outcome="failed",webhook="erp"} 0
rowhook_deliveries_total{outcome="gone",webhook="erp"} 0
rowhook_deliveries_total{outcome="ok",webhook="erp"} 1
rowhook_deliveries_total{outcome="retry",webhook="erp"} 1
# HELP rowhook_delivery_retries_total Failed attempts scheduled for another try.
# TYPE rowhook_delivery_retries_total counter
rowhook_delivery_retries_total{webhook="erp"} 1
# HELP rowhook_deliveries_enqueued_total Deliveries written to the outbox (duplicates from replays not counted).
# TYPE rowhook_deliveries_enqueued_total counter
rowhook_deliveries_enqueued_total 1
`
	if err := testutil.GatherAndCompare(h.reg, strings.NewReader(expected), "rowhook_deliveries_total", "rowhook_delivery_retries_total", "rowhook_deliveries_enqueued_total"); err != nil {
		t.Error(err)
	}
	// Queue gauges come from the store at scrape time.
	h.stop()
	ev2 := event("E", "erp")
	st := h.store
	now := time.Now().UTC()
	if _, err := st.Commit(context.Background(), cdc.Checkpoint{File: "b", Pos: 9}, []dispatch.NewDelivery{{
		ID: dispatch.DeliveryID(ev2.Timestamp, ev2.ID, "erp", ""), EventID: ev2.ID, Rule: "rule", Event: "E", Webhook: "erp", Key: "k",
		Method: "POST", URL: rc.URL, CreatedAt: now.Add(-90 * time.Second), NextAt: now, EventTime: now}}); err != nil {
		t.Fatal(err)
	}
	// pending 1, failed and dead at 0 (a known webhook), the oldest age.
	n, err := testutil.GatherAndCount(h.reg, "rowhook_queue_depth", "rowhook_oldest_pending_age_seconds")
	if err != nil || n != 4 {
		t.Fatalf("queue gauges: %d samples (%v)", n, err)
	}
	mfs, _ := h.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == "rowhook_oldest_pending_age_seconds" {
			if age := mf.GetMetric()[0].GetGauge().GetValue(); age < 90 || age > 600 {
				t.Errorf("oldest pending age %v, want about 90s", age)
			}
		}
		if mf.GetName() == "rowhook_queue_depth" {
			for _, m := range mf.GetMetric() {
				want := 0.0
				if m.GetLabel()[0].GetValue() == "pending" {
					want = 1
				}
				if m.GetGauge().GetValue() != want {
					t.Errorf("queue depth %v, want %v", m, want)
				}
			}
		}
	}
}
