package dispatch_test

import (
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

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
