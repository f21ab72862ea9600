package dispatch_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/dispatch"
	"github.com/rowhook/rowhook/dispatch/sqlitestore"
	"github.com/rowhook/rowhook/rules"
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

// waitSeries gathers reg until ok accepts its series: the queue gauges are
// read from the store in the background, a scrape serves the last read.
func waitSeries(t *testing.T, reg *prometheus.Registry, ok func(map[string]float64) bool) map[string]float64 {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s := series(t, reg)
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("series not as expected after 30s: %v", s)
		}
		time.Sleep(5 * time.Millisecond)
	}
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

	at0 := waitSeries(t, h.reg, func(s map[string]float64) bool { _, ok := s["rowhook_queue_depth{webhook=erp}"]; return ok })
	var want []string
	for _, w := range []string{"erp", "crm", dispatch.SubscriptionWebhook} {
		want = append(want,
			"rowhook_dead_letters_total{webhook="+w+"}",
			"rowhook_delivery_retries_total{webhook="+w+"}",
			"rowhook_webhook_state{state=paused,webhook="+w+"}",
			"rowhook_webhook_state{state=disabled,webhook="+w+"}",
			"rowhook_delivery_latency_seconds{webhook="+w+"}",
			"rowhook_oldest_pending_age_seconds{webhook="+w+"}",
			"rowhook_delivery_attempt_duration_seconds{webhook="+w+"}",
		)
		for _, c := range []string{"2xx", "3xx", "4xx", "5xx", "rejected", "timeout", "network", "request"} {
			want = append(want, "rowhook_delivery_attempts_total{class="+c+",webhook="+w+"}")
		}
		want = append(want, "rowhook_queue_depth{webhook="+w+"}")
		for _, s := range []string{"failed", "dead"} {
			want = append(want, "rowhook_dead_letter_queue_depth{status="+s+",webhook="+w+"}")
		}
	}
	for _, w := range []string{"erp", "crm", dispatch.SubscriptionWebhook} {
		if v := at0["rowhook_webhook_state{state=running,webhook="+w+"}"]; v != 1 {
			t.Errorf("rowhook_webhook_state{state=running,webhook=%s} = %v at start, want 1", w, v)
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
	after := waitSeries(t, h.reg, func(s map[string]float64) bool {
		return s["rowhook_dead_letter_queue_depth{status=dead,webhook=erp}"] == 1
	})
	for s, v := range map[string]float64{
		"rowhook_webhook_state{state=running,webhook=erp}":         1,
		"rowhook_dead_letters_total{webhook=erp}":                  1,
		"rowhook_delivery_attempts_total{class=5xx,webhook=erp}":   1,
		"rowhook_delivery_latency_seconds{webhook=erp}":            0,
		"rowhook_dead_letter_queue_depth{status=dead,webhook=erp}": 1,
		"rowhook_queue_depth{webhook=erp}":                         0,
		"rowhook_oldest_pending_age_seconds{webhook=erp}":          0,
		"rowhook_dead_letters_total{webhook=crm}":                  0,
		"rowhook_dead_letter_queue_depth{status=dead,webhook=crm}": 0,
		"rowhook_delivery_attempts_total{class=5xx,webhook=crm}":   0,
		"rowhook_delivery_attempt_duration_seconds{webhook=erp}":   1,
	} {
		if got, ok := after[s]; !ok || got != v {
			t.Errorf("after a dead letter: %s = %v (present %v), want %v", s, got, ok, v)
		}
	}
}

// webhookStateIs reports whether rowhook_webhook_state is 1 for webhook's
// state and 0 for the others.
func webhookStateIs(h *harness, webhook, state string) bool {
	s := series(h.t, h.reg)
	for _, st := range []string{"running", "paused", "disabled"} {
		want := 0.0
		if st == state {
			want = 1
		}
		if v, ok := s["rowhook_webhook_state{state="+st+",webhook="+webhook+"}"]; !ok || v != want {
			return false
		}
	}
	return true
}

// Each attempt counts under the class of what came back, from real
// receivers (timeouts and the rest: TestAttemptClass); the successful one is observed in the end-to-end latency from
// the event's commit time.
func TestDispatcher_AttemptClasses(t *testing.T) {
	answer := func(status int) string {
		rc := newReceiver(t, func(int, *http.Request, []byte) (int, http.Header, string) { return status, nil, "" })
		return rc.URL
	}
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	webhooks := map[string]dispatch.WebhookConfig{}
	want := map[string]string{}
	for name, tc := range map[string]struct {
		url   string
		class string
	}{
		"ok": {answer(200), "2xx"}, "moved": {answer(302), "3xx"}, "missing": {answer(404), "4xx"},
		"down": {answer(503), "5xx"}, "closed": {closed.URL, "network"},
	} {
		w := hook(tc.url)
		w.Retry.MaxAttempts = 1
		webhooks[name] = w
		want[name] = tc.class
	}
	h := start(t, dispatch.Config{Webhooks: webhooks}, dispatch.Deps{})
	ev := event("E", "ok", "moved", "missing", "down", "closed")
	ev.Timestamp = time.Now().Add(-time.Hour)
	h.enqueue(ev)
	h.waitStatus(ev, "ok", dispatch.StatusOK)
	for name := range want {
		waitFor(t, "an attempt to "+name, func() bool {
			d, _ := h.delivery(ev, name)
			return d.Status != dispatch.StatusPending && d.Status != ""
		})
	}
	got := series(t, h.reg)
	for name, class := range want {
		for _, c := range []string{"2xx", "3xx", "4xx", "5xx", "rejected", "timeout", "network", "request"} {
			n := 0.0
			if c == class {
				n = 1
			}
			if k := "rowhook_delivery_attempts_total{class=" + c + ",webhook=" + name + "}"; got[k] != n {
				t.Errorf("%s = %v, want %v", k, got[k], n)
			}
		}
	}
	if n := got["rowhook_delivery_latency_seconds{webhook=ok}"]; n != 1 {
		t.Errorf("rowhook_delivery_latency_seconds{webhook=ok} has %v samples, want 1", n)
	}
	if n := got["rowhook_delivery_latency_seconds{webhook=down}"]; n != 0 {
		t.Errorf("rowhook_delivery_latency_seconds{webhook=down} has %v samples, want 0 (observed on success only)", n)
	}
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "rowhook_delivery_latency_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == "ok" {
				// One hour old at enqueue: between 3600 s and the next bucket.
				if sum := m.GetHistogram().GetSampleSum(); sum < 3600 || sum > 4*3600 {
					t.Errorf("latency of a delivery of an event committed an hour ago = %vs", sum)
				}
			}
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
# HELP rowhook_delivery_attempts_total Delivery attempts by webhook and class of answer: 2xx, 3xx, 4xx, 5xx, rejected (a 2xx the response check refused), timeout, network (no answer), request (not sent).
# TYPE rowhook_delivery_attempts_total counter
rowhook_delivery_attempts_total{class="2xx",webhook="erp"} 1
rowhook_delivery_attempts_total{class="3xx",webhook="erp"} 0
rowhook_delivery_attempts_total{class="4xx",webhook="erp"} 0
rowhook_delivery_attempts_total{class="5xx",webhook="erp"} 1
rowhook_delivery_attempts_total{class="network",webhook="erp"} 0
rowhook_delivery_attempts_total{class="rejected",webhook="erp"} 0
rowhook_delivery_attempts_total{class="request",webhook="erp"} 0
rowhook_delivery_attempts_total{class="timeout",webhook="erp"} 0
# HELP rowhook_delivery_retries_total Failed attempts scheduled for another try.
# TYPE rowhook_delivery_retries_total counter
rowhook_delivery_retries_total{webhook="erp"} 1
# HELP rowhook_deliveries_enqueued_total Deliveries written to the outbox (duplicates from replays not counted).
# TYPE rowhook_deliveries_enqueued_total counter
rowhook_deliveries_enqueued_total 1
`
	if err := testutil.GatherAndCompare(h.reg, strings.NewReader(expected), "rowhook_delivery_attempts_total", "rowhook_delivery_retries_total", "rowhook_deliveries_enqueued_total"); err != nil {
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
	got := waitSeries(t, h.reg, func(s map[string]float64) bool { return s["rowhook_queue_depth{webhook=erp}"] == 1 })
	if age := got["rowhook_oldest_pending_age_seconds{webhook=erp}"]; age < 90 || age > 600 {
		t.Errorf("oldest pending age %v, want about 90s", age)
	}
	for _, k := range []string{"rowhook_dead_letter_queue_depth{status=dead,webhook=erp}", "rowhook_dead_letter_queue_depth{status=failed,webhook=erp}"} {
		if v, ok := got[k]; !ok || v != 0 {
			t.Errorf("%s = %v (present %v), want 0", k, v, ok)
		}
	}
	if age, ok := got["rowhook_queue_stats_age_seconds{}"]; !ok || age < 0 || age > 600 {
		t.Errorf("rowhook_queue_stats_age_seconds = %v (present %v)", age, ok)
	}
}

// slowStats is the real store with a Stats that waits until release is
// closed, as a store counting a million pending deliveries does for seconds.
type slowStats struct {
	dispatch.Store
	release chan struct{}
	calls   atomic.Int32
}

func (s *slowStats) Stats(ctx context.Context) ([]dispatch.QueueStat, error) {
	s.calls.Add(1)
	select {
	case <-s.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return s.Store.Stats(ctx)
}

// A scrape while the store's queue stats are slow answers 200 with every
// other family and the stats' age, and starts no second read; once the read
// ends the queue gauges are served.
func TestDispatcher_ScrapeWithSlowStats(t *testing.T) {
	rc := newReceiver(t, func(int, *http.Request, []byte) (int, http.Header, string) { return 200, nil, "" })
	st, err := sqlitestore.Open(filepath.Join(t.TempDir(), "state.db"), sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	slow := &slowStats{Store: st, release: make(chan struct{})}
	reg := prometheus.NewRegistry()
	d, err := dispatch.New(dispatch.Config{Webhooks: map[string]dispatch.WebhookConfig{"erp": hook(rc.URL)}}, slow,
		dispatch.Deps{Registerer: reg, PollInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	ev := event("E", "erp")
	if err := d.Enqueue(ctx, cdc.Checkpoint{File: "bin.000001", Pos: 4}, []rules.Event{ev}); err != nil {
		t.Fatal(err)
	}
	if err := d.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	scrape := func() string {
		resp, err := http.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("scrape: HTTP %d: %s", resp.StatusCode, body)
		}
		return string(body)
	}
	for i := 0; i < 3; i++ {
		body := scrape()
		for _, want := range []string{"rowhook_deliveries_enqueued_total 1", "rowhook_queue_stats_age_seconds ", `rowhook_delivery_retries_total{webhook="erp"} 0`} {
			if !strings.Contains(body, want) {
				t.Errorf("scrape %d with the stats read blocked: no %q in\n%s", i, want, body)
			}
		}
		if strings.Contains(body, "rowhook_queue_depth{") {
			t.Errorf("scrape %d: rowhook_queue_depth served before any read of the store", i)
		}
	}
	if n := slow.calls.Load(); n != 1 {
		t.Errorf("%d stats reads started by three scrapes while the first was running, want 1", n)
	}
	close(slow.release)
	waitSeries(t, reg, func(s map[string]float64) bool { _, ok := s["rowhook_queue_depth{webhook=erp}"]; return ok })
}
