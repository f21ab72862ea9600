package dispatch_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/dispatch"
	"github.com/rowhook/rowhook/dispatch/sqlitestore"
	"github.com/rowhook/rowhook/rules"
)

// countingStore is the real SQLite store, counting the reads of pending
// deliveries.
type countingStore struct {
	dispatch.Store
	pending, nextDue atomic.Int64
}

func (s *countingStore) Pending(ctx context.Context, q dispatch.PendingQuery) ([]dispatch.Delivery, error) {
	s.pending.Add(1)
	return s.Store.Pending(ctx, q)
}

func (s *countingStore) NextDue(ctx context.Context, webhook, sub string, after time.Time) (time.Time, bool, error) {
	s.nextDue.Add(1)
	return s.Store.NextDue(ctx, webhook, sub, after)
}

// TestDispatcher_CommitsHandOverNewDeliveries: a queue that has read
// everything due gets each new delivery from the commit that stored it,
// not by reading the store again (which cost a query per commit and, with
// attempts in flight, re-read them all). Every delivery still arrives
// exactly once; a retry is still made, at its time.
func TestDispatcher_CommitsHandOverNewDeliveries(t *testing.T) {
	var mu sync.Mutex
	got := map[string]int{}
	var failOnce sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("webhook-id")
		retry := false
		failOnce.Do(func() { retry = true })
		if retry {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		mu.Lock()
		got[id]++
		mu.Unlock()
	}))
	defer srv.Close()
	st, err := sqlitestore.Open(filepath.Join(t.TempDir(), "state.db"), sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cs := &countingStore{Store: st}
	w := dispatch.WebhookConfig{URL: srv.URL, Retry: dispatch.RetryConfig{MaxAttempts: 3, InitialInterval: 200 * time.Millisecond,
		MaxInterval: time.Second}}
	d, err := dispatch.New(dispatch.Config{Webhooks: map[string]dispatch.WebhookConfig{"erp": w}}, cs,
		dispatch.Deps{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Registerer: prometheus.NewRegistry(), PollInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	const n = 300
	var ids []string
	for i := range n {
		ev := event("NewOpportunity", "erp")
		ids = append(ids, dispatch.DeliveryID(ev.Timestamp, ev.ID, "erp", ""))
		cp := cdc.Checkpoint{Flavor: "mariadb", File: "bin.000001", Pos: uint32(1000 + i)}
		if err := d.Enqueue(ctx, cp, []rules.Event{ev}); err != nil {
			t.Fatal(err)
		}
		if i%10 == 0 {
			time.Sleep(2 * time.Millisecond) // commits of one and of several
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		arrived := len(got)
		mu.Unlock()
		if arrived == n || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, id := range ids {
		if got[id] != 1 {
			t.Errorf("delivery %s arrived %d times, want once", id, got[id])
		}
	}
	// The poll interval is an hour: the first fill reads the store, then
	// commits hand deliveries over; the retry (200 ms later) is sent at
	// its time, which takes one read. A read per commit would be ~300.
	if p := cs.pending.Load(); p > 20 {
		t.Errorf("%d reads of pending deliveries for %d commits, want a handful", p, n)
	}
	t.Logf("%d deliveries, %d Pending reads, %d NextDue reads", n, cs.pending.Load(), cs.nextDue.Load())
}

// TestDispatcher_RetryWhileOthersInFlight: a retry scheduled while its
// queue is still reading a backlog (more due deliveries than one read
// takes) is sent at its time, although the queue reads the store only
// when it must (the poll interval here is an hour). The read that makes
// the queue know every due delivery must also find the next one not yet
// due, past the due ones in flight, which hid it.
func TestDispatcher_RetryWhileOthersInFlight(t *testing.T) {
	var mu sync.Mutex
	got := map[string]int{}
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		mu.Lock()
		got[r.Header.Get("webhook-id")]++
		mu.Unlock()
	}))
	defer srv.Close()
	st, err := sqlitestore.Open(filepath.Join(t.TempDir(), "state.db"), sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	w := dispatch.WebhookConfig{URL: srv.URL, Concurrency: 4, Retry: dispatch.RetryConfig{MaxAttempts: 5,
		InitialInterval: 200 * time.Millisecond, MaxInterval: 200 * time.Millisecond}}
	d, err := dispatch.New(dispatch.Config{Webhooks: map[string]dispatch.WebhookConfig{"erp": w}}, st,
		dispatch.Deps{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Registerer: prometheus.NewRegistry(),
			PollInterval: time.Hour, Jitter: func() float64 { return 1 }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// A backlog of 1,500 in one commit, before Run: the queue reads it
	// 260 at a time.
	var evs []rules.Event
	var ids []string
	for range 1500 {
		ev := event("NewOpportunity", "erp")
		evs = append(evs, ev)
		ids = append(ids, dispatch.DeliveryID(ev.Timestamp, ev.ID, "erp", ""))
	}
	if err := d.Enqueue(ctx, cdc.Checkpoint{Flavor: "mariadb", File: "bin.000001", Pos: 9000}, evs); err != nil {
		t.Fatal(err)
	}
	if err := d.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	deadline := time.Now().Add(15 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n == len(ids) || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, id := range ids {
		if got[id] != 1 {
			t.Errorf("delivery %s arrived %d times in 15 s, want once (its retry was due 200 ms after the failure)", id, got[id])
		}
	}
}
