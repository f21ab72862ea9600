package dispatch_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rowhook/rowhook/dispatch"
	"github.com/rowhook/rowhook/rules"
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
		ok[r.Header.Get(dispatch.HeaderWebhookID)]++
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
