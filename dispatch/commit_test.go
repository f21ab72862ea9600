package dispatch_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/dispatch"
	"github.com/rowhook/rowhook/dispatch/sqlitestore"
	"github.com/rowhook/rowhook/rules"
)

// heldStore is the real SQLite store whose first commit waits for release.
type heldStore struct {
	dispatch.Store
	started chan struct{} // closed when the first commit starts
	release chan struct{}
	first   bool
}

func (s *heldStore) Commit(ctx context.Context, cp cdc.Checkpoint, ds []dispatch.NewDelivery) (int, error) {
	if !s.first {
		s.first = true
		close(s.started)
		<-s.release
	}
	return s.Store.Commit(ctx, cp, ds)
}

// TestDispatcher_BackPressureOverlapsCommits: while the store writes one
// full batch (2,000 deliveries), the reader fills the next one, and only a
// second full batch waits; nothing is lost and the last checkpoint is
// stored with the last deliveries.
func TestDispatcher_BackPressureOverlapsCommits(t *testing.T) {
	st, err := sqlitestore.Open(filepath.Join(t.TempDir(), "state.db"), sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	hs := &heldStore{Store: st, started: make(chan struct{}), release: make(chan struct{})}
	released := false
	defer func() {
		if !released {
			close(hs.release)
		}
	}()
	d, err := dispatch.New(dispatch.Config{Webhooks: map[string]dispatch.WebhookConfig{"erp": {URL: "http://127.0.0.1:1/hook"}}}, hs,
		dispatch.Deps{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const full = 2000 // dispatch's maxPendingDeliveries
	batch := func(pos uint32) (cdc.Checkpoint, []rules.Event) {
		evs := make([]rules.Event, full)
		for i := range evs {
			evs[i] = event("NewOpportunity", "erp")
		}
		return cdc.Checkpoint{Flavor: "mariadb", File: "bin.000001", Pos: pos}, evs
	}
	enqueue := func(pos uint32) chan error {
		cp, evs := batch(pos)
		done := make(chan error, 1)
		go func() { done <- d.Enqueue(ctx, cp, evs) }()
		return done
	}

	first := enqueue(100)
	select {
	case <-hs.started:
	case <-time.After(10 * time.Second):
		t.Fatal("the first full batch was not taken by the committer")
	}
	select {
	case err := <-first:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Enqueue of a full batch waited for its commit to finish: the next batch cannot fill meanwhile")
	}
	second := enqueue(200)
	select {
	case err := <-second:
		t.Fatalf("a second full batch was accepted while the first was still being written (err %v): memory is not bounded", err)
	case <-time.After(300 * time.Millisecond):
	}
	close(hs.release)
	released = true
	if err := <-second; err != nil {
		t.Fatal(err)
	}
	if err := d.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	stats, err := st.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var pending int64
	for _, s := range stats {
		if s.Status == dispatch.StatusPending {
			pending += s.Count
		}
	}
	if pending != 2*full {
		t.Errorf("pending deliveries = %d, want %d", pending, 2*full)
	}
	cp, ok, err := st.Checkpoint(ctx)
	if err != nil || !ok || cp.Pos != 200 {
		t.Errorf("checkpoint = %+v (%v, %v), want pos 200", cp, ok, err)
	}
}

// TestDispatcher_CheckpointOnlyCommitsPaced: commits that only move the
// checkpoint (transactions no rule matched) are written at most every
// CheckpointEvery; a delivery or a Flush is not held back by that pause.
func TestDispatcher_CheckpointOnlyCommitsPaced(t *testing.T) {
	st, err := sqlitestore.Open(filepath.Join(t.TempDir(), "state.db"), sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	d, err := dispatch.New(dispatch.Config{Webhooks: map[string]dispatch.WebhookConfig{"erp": {URL: "http://127.0.0.1:1/hook"}}}, st,
		dispatch.Deps{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Registerer: prometheus.NewRegistry(), CheckpointEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cp := func(pos uint32) cdc.Checkpoint {
		return cdc.Checkpoint{Flavor: "mariadb", File: "bin.000001", Pos: pos}
	}
	stored := func() uint32 {
		c, _, err := st.Checkpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return c.Pos
	}
	waitStored := func(pos uint32, why string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for stored() != pos {
			if time.Now().After(deadline) {
				t.Fatalf("checkpoint %d not stored within 10s (have %d): %s", pos, stored(), why)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if err := d.Enqueue(ctx, cp(1), nil); err != nil {
		t.Fatal(err)
	}
	waitStored(1, "the first commit is not paced")
	for pos := uint32(2); pos <= 50; pos++ {
		if err := d.Enqueue(ctx, cp(pos), nil); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond)
	if got := stored(); got != 1 {
		t.Fatalf("checkpoint-only transactions committed at once (stored %d), want them paced", got)
	}
	if err := d.Enqueue(ctx, cp(51), []rules.Event{event("NewOpportunity", "erp")}); err != nil {
		t.Fatal(err)
	}
	waitStored(51, "a delivery waited for the checkpoint pace")
	if err := d.Enqueue(ctx, cp(52), nil); err != nil {
		t.Fatal(err)
	}
	flushed := make(chan error, 1)
	go func() { flushed <- d.Flush(ctx) }()
	select {
	case err := <-flushed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Flush waited for the checkpoint pace")
	}
	if got := stored(); got != 52 {
		t.Errorf("checkpoint after Flush = %d, want 52", got)
	}
}
