package dispatch_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rowhook/rowhook/dispatch"
	"github.com/rowhook/rowhook/dispatch/adminapi"
	"github.com/rowhook/rowhook/dispatch/dispatchtest"
	"github.com/rowhook/rowhook/dispatch/send"
	"github.com/rowhook/rowhook/rules"
	"github.com/rowhook/rowhook/writeback"
)

// logLines counts the lines of h's log at level info or above, and those
// whose message contains each of msgs.
func logLines(t *testing.T, logs string, msgs ...string) (total int, by map[string]int) {
	t.Helper()
	by = map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		if l.Level == "DEBUG" {
			continue
		}
		total++
		for _, m := range msgs {
			if strings.Contains(l.Msg, m) {
				by[m]++
			}
		}
	}
	return total, by
}

// TestDispatcher_CircuitBacklogEndpointDown is issue 13's scenario, scaled
// down 20 times in time: 2,000 deliveries pending for an endpoint answering
// 503 for 1.5s (30s), then 200. The endpoint must be probed, not hammered:
// the attempts are bounded by what the circuit allows in that window (the
// failure threshold, the attempts already in flight when it opened, and one
// probe per interval, initial_interval doubling), the log by one line per
// state change; every delivery then arrives exactly once.
func TestDispatcher_CircuitBacklogEndpointDown(t *testing.T) {
	const (
		pending     = 2000
		threshold   = 5 // delivery.circuit.failure_threshold's default
		concurrency = 16
		outage      = 1500 * time.Millisecond
	)
	retry := dispatch.RetryConfig{MaxAttempts: 10, InitialInterval: 100 * time.Millisecond, MaxInterval: 400 * time.Millisecond}
	var up atomic.Bool
	var mu sync.Mutex
	failed, ok := 0, map[string]int{}
	rc := newReceiver(t, func(_ int, r *http.Request, _ []byte) (int, http.Header, string) {
		mu.Lock()
		defer mu.Unlock()
		if !up.Load() {
			failed++
			return 503, nil, "down"
		}
		ok[r.Header.Get(send.HeaderWebhookID)]++
		return 200, nil, ""
	})
	w := hook(rc.URL)
	w.Retry, w.Concurrency = retry, concurrency
	h := start(t, dispatch.Config{Webhooks: map[string]dispatch.WebhookConfig{"erp": w}}, dispatch.Deps{Jitter: func() float64 { return 1 }})
	evs := make([]rules.Event, pending)
	for i := range evs {
		evs[i] = event("E", "erp")
	}
	began := time.Now()
	h.enqueue(evs...)
	time.Sleep(outage - time.Since(began))
	mu.Lock()
	up.Store(true)
	attempts := failed
	mu.Unlock()
	window := time.Since(began)
	logsDown := h.logs.String()

	// Probes start no sooner than initial_interval·(1+2+4+…) after the
	// circuit opened (jitter 1 gives the full backoff).
	probes, sum := 0, time.Duration(0)
	for d := retry.InitialInterval; ; d = min(2*d, retry.MaxInterval) {
		if sum += d; sum > window {
			break
		}
		probes++
	}
	allowed := threshold + concurrency - 1 + probes
	t.Logf("endpoint down %v: %d attempts (circuit allows %d: threshold %d + %d in flight + %d probes)", window.Round(time.Millisecond), attempts, allowed, threshold, concurrency-1, probes)
	if attempts > allowed || attempts > 300 {
		t.Errorf("%d attempts to an endpoint that is down with %d deliveries pending, want at most %d", attempts, pending, allowed)
	}
	lines, _ := logLines(t, logsDown)
	t.Logf("log lines (info and above) while down: %d", lines)
	if limit := 3 + 2*probes; lines > limit {
		t.Errorf("%d log lines while the endpoint was down, want at most %d (one per circuit state change)", lines, limit)
	}

	recovered := time.Now()
	waitLong(t, 90*time.Second, "every delivery to arrive", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(ok) >= pending
	})
	t.Logf("all %d delivered %v after the endpoint recovered", pending, time.Since(recovered).Round(time.Millisecond))
	time.Sleep(100 * time.Millisecond) // room for a duplicate to show
	mu.Lock()
	for id, n := range ok {
		if n != 1 {
			t.Errorf("%s delivered %d times", id, n)
		}
	}
	mu.Unlock()
	// Deliveries held by the open circuit kept their attempts: only those
	// tried while it was down show more than one.
	waitFor(t, "nothing pending", func() bool {
		ds, err := h.store.Pending(context.Background(), dispatch.PendingQuery{Webhook: "erp", Limit: 1})
		return err == nil && len(ds) == 0
	})
	more := 0
	for _, ev := range evs {
		d, _ := h.delivery(ev, "erp")
		if d.Status != dispatch.StatusOK {
			t.Fatalf("%s: %s", d.ID, d.Status)
		}
		if d.Attempts > 1 {
			more++
		}
	}
	if more > attempts {
		t.Errorf("%d deliveries spent more than one attempt, but only %d attempts failed", more, attempts)
	}
}

// waitLong is waitFor with its own deadline.
func waitLong(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// circuitGauge reads rowhook_webhook_circuit_state{webhook,state}.
func circuitGauge(h *harness, webhook, state string) float64 {
	mfs, _ := h.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "rowhook_webhook_circuit_state" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			if l["webhook"] == webhook && l["state"] == state {
				return m.GetGauge().GetValue()
			}
		}
	}
	return -1
}

// TestDispatcher_CircuitProbes walks the circuit through its states on a
// manual clock: open after failure_threshold failures, one probe per
// interval (initial_interval doubling, at most pause_for, at least the
// probe's Retry-After up to max_interval), paused after pause_after, closed
// by the first success; the held deliveries keep their attempts and then
// all go out.
func TestDispatcher_CircuitProbes(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	clock := dispatchtest.NewClock(t0)
	var answer atomic.Value
	answer.Store([]any{503, http.Header(nil)})
	rc := newReceiver(t, func(int, *http.Request, []byte) (int, http.Header, string) {
		a := answer.Load().([]any)
		return a[0].(int), a[1].(http.Header), ""
	})
	w := hook(rc.URL)
	w.Retry = dispatch.RetryConfig{MaxAttempts: 100, InitialInterval: time.Minute, MaxInterval: 4 * time.Minute}
	w.Concurrency = 1
	w.Circuit.FailureThreshold = 3
	cfg := dispatch.Config{Webhooks: map[string]dispatch.WebhookConfig{"erp": w}}
	cfg.Delivery.PauseAfter, cfg.Delivery.PauseFor = 5*time.Minute, 3*time.Minute
	// The fake clock's jumps would close summary intervals: this test
	// counts the circuit's own lines.
	cfg.Log.DeliverySuccess = dispatch.SuccessNone
	h := start(t, cfg, dispatch.Deps{Clock: clock, Jitter: func() float64 { return 1 }, AdminOpen: true})
	if g := circuitGauge(h, "erp", dispatch.CircuitClosed); g != 1 {
		t.Fatalf("closed gauge at start = %v, want 1", g)
	}
	var evs []rules.Event
	for i := 0; i < 6; i++ {
		evs = append(evs, event("E", "erp"))
	}
	h.enqueue(evs...)
	state := func() dispatch.WebhookState { return h.d.WebhookStates()[0] }
	waitFor(t, "circuit open", func() bool { return state().Circuit == dispatch.CircuitOpen })
	time.Sleep(100 * time.Millisecond)
	if n := rc.count(); n != 3 {
		t.Fatalf("%d attempts before the circuit opened, want 3 (failure_threshold)", n)
	}
	if st := state(); st.NextProbeAt == nil || !st.NextProbeAt.Equal(t0.Add(time.Minute)) || st.State != "active" {
		t.Fatalf("open circuit: %+v, want the next probe at +1m", st)
	}
	if circuitGauge(h, "erp", dispatch.CircuitOpen) != 1 || circuitGauge(h, "erp", dispatch.CircuitClosed) != 0 {
		t.Error("circuit gauge does not say open")
	}
	if code, body := adminRequest(t, adminapi.New(h.d), "GET", "/webhooks", "", ""); code != 200 ||
		!strings.Contains(mustJSON(body), `"circuit":"open"`) || !strings.Contains(mustJSON(body), `"next_probe_at":"2026-11-23T10:01:00Z"`) {
		t.Errorf("GET /webhooks = %d %v", code, body)
	}
	clock.Advance(59 * time.Second) // the failed deliveries' retries are not due, the others are held
	time.Sleep(100 * time.Millisecond)
	if n := rc.count(); n != 3 {
		t.Fatalf("%d attempts before the first probe was due", n)
	}
	// probe n waits initial_interval·2ⁿ⁻¹: +1m, then +2m, then 3m (4m capped
	// by pause_for); a Retry-After of 10m on the last makes it 4m
	// (max_interval).
	probeAt := t0.Add(time.Minute)
	for i, gap := range []time.Duration{2 * time.Minute, 3 * time.Minute, 4 * time.Minute} {
		if i == 2 {
			answer.Store([]any{503, http.Header{"Retry-After": {"600"}}})
		}
		clock.Set(probeAt)
		waitFor(t, "probe", func() bool { return rc.count() == 4+i })
		probeAt = probeAt.Add(gap)
		waitFor(t, "open again", func() bool {
			st := state()
			return st.Circuit == dispatch.CircuitOpen && st.NextProbeAt != nil && st.NextProbeAt.Equal(probeAt)
		})
		clock.Set(probeAt.Add(-time.Second))
		time.Sleep(50 * time.Millisecond)
		if n := rc.count(); n != 4+i {
			t.Fatalf("probe %d: %d attempts, want one probe per interval", i+1, n)
		}
	}
	// Failing since t0, open at t0+6m: reported paused (pause_after 5m).
	if st := state(); st.State != "paused" || gaugeValue(h, "rowhook_webhook_paused", "erp") != 1 {
		t.Errorf("after failing for 6m: %+v, paused gauge %v", st, gaugeValue(h, "rowhook_webhook_paused", "erp"))
	}
	held := 0
	for _, ev := range evs {
		if d, _ := h.delivery(ev, "erp"); d.Attempts == 0 {
			held++
		}
	}
	if held != 6-3-3 {
		t.Errorf("%d deliveries never attempted, want 0 (3 failed, 3 probes)", held)
	}
	answer.Store([]any{200, http.Header(nil)})
	clock.Set(probeAt)
	for _, ev := range evs {
		h.waitStatus(ev, "erp", dispatch.StatusOK)
	}
	if st := state(); st.Circuit != dispatch.CircuitClosed || st.State != "active" || st.FailingSince != nil {
		t.Errorf("after recovery: %+v", st)
	}
	if circuitGauge(h, "erp", dispatch.CircuitClosed) != 1 || circuitGauge(h, "erp", dispatch.CircuitOpen) != 0 || circuitGauge(h, "erp", dispatch.CircuitHalfOpen) != 0 || gaugeValue(h, "rowhook_webhook_paused", "erp") != 0 {
		t.Error("gauges after recovery do not say closed")
	}
	if n := rc.count(); n != 6+1+5 {
		t.Errorf("%d requests, want 12 (6 failures, the probe that succeeded, 5 held)", n)
	}
	total, by := logLines(t, h.logs.String(), "circuit open:", "circuit open again", "half-open", "circuit closed", "endpoint paused", "Retry-After capped")
	want := map[string]int{"circuit open:": 1, "circuit open again": 3, "half-open": 4, "circuit closed": 1, "endpoint paused": 1, "Retry-After capped": 1}
	for m, n := range want {
		if by[m] != n {
			t.Errorf("%d log lines %q, want %d", by[m], m, n)
		}
	}
	if total != 11 {
		t.Errorf("%d log lines at info and above, want 11 (one per state change, and the capped Retry-After):\n%s", total, h.logs.String())
	}
}

// TestDispatcher_RetryAfterCeiling: a receiver asking for years (seconds
// or a date in 2099) gets the next attempt at most retry.max_interval
// later, and the log says it was capped.
func TestDispatcher_RetryAfterCeiling(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	for name, ra := range map[string]string{
		"seconds": "315360000",
		"date":    "Thu, 01 Jan 2099 00:00:00 GMT",
	} {
		t.Run(name, func(t *testing.T) {
			clock := dispatchtest.NewClock(t0)
			rc := newReceiver(t, func(n int, _ *http.Request, _ []byte) (int, http.Header, string) {
				if n == 1 {
					return 503, http.Header{"Retry-After": {ra}}, "maintenance"
				}
				return 200, nil, ""
			})
			w := hook(rc.URL)
			w.Retry = dispatch.RetryConfig{MaxAttempts: 3, InitialInterval: time.Second, MaxInterval: 10 * time.Minute}
			h := start(t, dispatch.Config{Webhooks: map[string]dispatch.WebhookConfig{"erp": w}}, dispatch.Deps{Clock: clock, Jitter: func() float64 { return 1 }})
			ev := event("E", "erp")
			h.enqueue(ev)
			waitFor(t, "first attempt recorded", func() bool { d, _ := h.delivery(ev, "erp"); return d.Attempts == 1 })
			d, _ := h.delivery(ev, "erp")
			if d.Status != dispatch.StatusPending || !d.NextAt.Equal(t0.Add(10*time.Minute)) {
				t.Fatalf("after Retry-After %s: status %s next_at %v, want pending at +10m (max_interval)", ra, d.Status, d.NextAt)
			}
			if _, by := logLines(t, h.logs.String(), "Retry-After capped"); by["Retry-After capped"] != 1 {
				t.Errorf("capping not logged:\n%s", h.logs.String())
			}
			clock.Advance(10 * time.Minute)
			h.waitStatus(ev, "erp", dispatch.StatusOK)
		})
	}
}

// TestDispatcher_WritebackRetryPolicy: a writeback failing transiently is
// tried Deps.WritebackRetry.MaxAttempts times (rowhook passes
// writeback.max_attempts), waiting its backoff doubling up to its cap, not
// delivery.writeback's; a value the column cannot take
// (writeback.ConversionError) is recorded failed after one try.
func TestDispatcher_WritebackRetryPolicy(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name  string
		err   error
		tries []time.Duration // when Apply runs, from the first try
	}{
		{"transient", errTest, []time.Duration{0, time.Minute, time.Minute + 90*time.Second}},
		{"conversion", &writeback.ConversionError{Table: "crm.vtiger_potentialscf", Column: "cf_erp_id", Value: "E-99999999999", Type: "varchar(8)", Reason: "13 characters, the column holds 8"}, []time.Duration{0}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clock := dispatchtest.NewClock(t0)
			rc := newReceiver(t, nil)
			var mu sync.Mutex
			var at []time.Time
			wb := &dispatchtest.Writebacker{
				NeedsFunc: func(string) bool { return true },
				ApplyFunc: func(context.Context, string, dispatch.StoredEvent, dispatch.Response) error {
					mu.Lock()
					defer mu.Unlock()
					at = append(at, clock.Now())
					return tt.err
				},
			}
			tries := func() []time.Time { mu.Lock(); defer mu.Unlock(); return append([]time.Time(nil), at...) }
			cfg := dispatch.Config{Webhooks: map[string]dispatch.WebhookConfig{"erp": hook(rc.URL)}}
			cfg.Delivery.Writeback = dispatch.RetryConfig{MaxAttempts: 10, InitialInterval: time.Second, MaxInterval: time.Second}
			h := start(t, cfg, dispatch.Deps{Clock: clock, Jitter: func() float64 { return 1 }, Writeback: wb,
				WritebackRetry: dispatch.RetryConfig{MaxAttempts: 3, InitialInterval: time.Minute, MaxInterval: 90 * time.Second}})
			ev := event("E", "erp")
			h.enqueue(ev)
			for i, off := range tt.tries {
				clock.Set(t0.Add(off))
				waitFor(t, fmt.Sprintf("writeback try %d", i+1), func() bool { return len(tries()) == i+1 })
				if i+1 < len(tt.tries) {
					// Not sooner than its backoff.
					clock.Set(t0.Add(tt.tries[i+1] - time.Second))
					time.Sleep(50 * time.Millisecond)
					if n := len(tries()); n != i+1 {
						t.Fatalf("try %d came before its backoff (%d tries at %v)", i+2, n, clock.Now())
					}
				}
			}
			waitFor(t, "writeback failed", func() bool { d, _ := h.delivery(ev, "erp"); return d.Writeback == dispatch.WritebackFailed })
			clock.Advance(time.Hour)
			time.Sleep(100 * time.Millisecond)
			if n := len(tries()); n != len(tt.tries) {
				t.Errorf("%d writeback tries, want %d", n, len(tt.tries))
			}
			if d, _ := h.delivery(ev, "erp"); !strings.Contains(d.WritebackError, tt.err.Error()) || d.Status != dispatch.StatusOK || rc.count() != 1 {
				t.Errorf("delivery %s, writeback error %q, %d requests", d.Status, d.WritebackError, rc.count())
			}
		})
	}
}

// TestDispatcher_CircuitPerSubscription: each subscription target has its
// own circuit: one that is down is held after the threshold while another
// subscribed to the same event gets everything; the subscription series of
// the gauge counts subscriptions per state.
func TestDispatcher_CircuitPerSubscription(t *testing.T) {
	rc := newReceiver(t, func(_ int, r *http.Request, _ []byte) (int, http.Header, string) {
		if r.URL.Path == "/down" {
			return 503, nil, ""
		}
		return 200, nil, ""
	})
	cfg := dispatch.Config{}
	cfg.Admin.Token = "tok"
	cfg.Admin.Subscriptions.Enabled = true
	cfg.Admin.Subscriptions.AllowedHosts = []string{"127.0.0.1"}
	cfg.Delivery.Retry = dispatch.RetryConfig{MaxAttempts: 100, InitialInterval: time.Hour, MaxInterval: time.Hour}
	cfg.Delivery.Concurrency = 2
	cfg.Delivery.Circuit.FailureThreshold = 3
	h := start(t, cfg, dispatch.Deps{})
	admin := adminapi.New(h.d)
	subs := map[string]string{}
	for _, path := range []string{"/down", "/up"} {
		code, body := adminRequest(t, admin, "POST", "/subscriptions", "tok", `{"target_url":"`+rc.URL+path+`","event":"E"}`)
		if code != 201 {
			t.Fatalf("subscribe %s = %d %v", path, code, body)
		}
		subs[path] = body["id"].(string)
	}
	var evs []rules.Event
	for i := 0; i < 20; i++ {
		evs = append(evs, event("E"))
	}
	h.enqueue(evs...)
	for _, ev := range evs {
		id := dispatch.DeliveryID(ev.Timestamp, ev.ID, dispatch.SubscriptionWebhook, subs["/up"])
		waitFor(t, "delivery to /up", func() bool {
			d, _, err := h.store.Get(context.Background(), id)
			return err == nil && d.Status == dispatch.StatusOK
		})
	}
	waitFor(t, "the /down subscription's circuit open", func() bool {
		return circuitGauge(h, dispatch.SubscriptionWebhook, dispatch.CircuitOpen) == 1
	})
	time.Sleep(100 * time.Millisecond)
	down := 0
	for _, r := range rc.got() {
		if r.URL == "/down" {
			down++
		}
	}
	if down > 3+2-1 {
		t.Errorf("%d attempts to the subscription that is down, want at most 4 (threshold 3, 1 more in flight)", down)
	}
	if g := circuitGauge(h, dispatch.SubscriptionWebhook, dispatch.CircuitClosed); g != 1 {
		t.Errorf("subscriptions closed = %v, want 1", g)
	}
	if code, _ := adminRequest(t, admin, "DELETE", "/subscriptions/"+subs["/down"], "tok", ""); code != 204 {
		t.Fatalf("unsubscribe = %d", code)
	}
	if o, c := circuitGauge(h, dispatch.SubscriptionWebhook, dispatch.CircuitOpen), circuitGauge(h, dispatch.SubscriptionWebhook, dispatch.CircuitClosed); o != 0 || c != 1 {
		t.Errorf("after removing the open one: open %v, closed %v; want 0, 1", o, c)
	}
}

// TestDispatcher_CircuitAfterRestart: the circuit lives in memory, so a
// restart starts closed; with the endpoint still down it opens again after
// the threshold instead of trying the whole backlog once more.
func TestDispatcher_CircuitAfterRestart(t *testing.T) {
	rc := newReceiver(t, func(int, *http.Request, []byte) (int, http.Header, string) { return 503, nil, "" })
	w := hook(rc.URL)
	w.Retry = dispatch.RetryConfig{MaxAttempts: 100, InitialInterval: time.Hour, MaxInterval: time.Hour}
	w.Concurrency, w.Circuit.FailureThreshold = 2, 3
	cfg := dispatch.Config{Webhooks: map[string]dispatch.WebhookConfig{"erp": w}}
	h := start(t, cfg, dispatch.Deps{})
	var evs []rules.Event
	for i := 0; i < 50; i++ {
		evs = append(evs, event("E", "erp"))
	}
	h.enqueue(evs...)
	waitFor(t, "circuit open", func() bool { return h.d.WebhookStates()[0].Circuit == dispatch.CircuitOpen })
	time.Sleep(100 * time.Millisecond)
	first := rc.count()
	h.stop()
	st, err := reopen(h)
	if err != nil {
		t.Fatal(err)
	}
	d2, err := dispatch.New(cfg, st, dispatch.Deps{PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if s := d2.WebhookStates()[0]; s.Circuit != dispatch.CircuitClosed {
		t.Errorf("after restart: circuit %s, want closed", s.Circuit)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d2.Run(ctx) }()
	waitFor(t, "circuit open again", func() bool { return d2.WebhookStates()[0].Circuit == dispatch.CircuitOpen })
	time.Sleep(100 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	second := rc.count() - first
	t.Logf("attempts with 50 pending and the endpoint down: %d before the restart, %d after", first, second)
	for i, n := range []int{first, second} {
		if n > 3+2-1 {
			t.Errorf("run %d: %d attempts, want at most 4 (threshold 3, 1 more in flight)", i+1, n)
		}
	}
}
