package cdc_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rowhook/rowhook/cdc"
)

// connectRecorder records connections and transactions in order; its
// HandleConnect fails once fail is set.
type connectRecorder struct {
	mu   sync.Mutex
	log  []string
	fail error
}

func (h *connectRecorder) HandleConnect(context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.log = append(h.log, "connect")
	return h.fail
}

func (h *connectRecorder) HandleTransaction(_ context.Context, tx *cdc.Transaction) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(tx.Changes) > 0 {
		h.log = append(h.log, fmt.Sprintf("tx %v", tx.Changes[0].After["id"]))
	}
	return nil
}

func (h *connectRecorder) HandleIdle(context.Context, time.Time) error { return nil }

func (h *connectRecorder) events() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return strings.Join(h.log, ", ")
}

var _ cdc.ConnectHandler = (*connectRecorder)(nil)

// TestReader_ConnectHandler: a ConnectHandler hears of every
// (re)connection before anything read on it, and its error stops Run.
func TestReader_ConnectHandler(t *testing.T) {
	schema, db := srv.NewSchema(t)
	mustExec(t, db, "CREATE TABLE t (id INT PRIMARY KEY)")
	cfg := cdc.DefaultConfig()
	cfg.DSN = srv.URL()
	cfg.Include = []string{schema + ".*"}
	cfg.Heartbeat = time.Second
	cfg.MaxBackoff = 500 * time.Millisecond
	r, err := cdc.New(cfg, cdc.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	h := &connectRecorder{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	from := currentGTID(t, srv)
	go func() { done <- r.Run(ctx, from, h) }()
	wait := func(want string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for h.events() != want {
			if time.Now().After(deadline) {
				t.Fatalf("events %q, want %q", h.events(), want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	kill := func() {
		t.Helper()
		waitConnected(t, r)
		for _, id := range dumpThreads(t, srv.DB()) {
			srv.DB().Exec(fmt.Sprintf("KILL %d", id))
		}
	}

	waitConnected(t, r)
	mustExec(t, db, "INSERT INTO t VALUES (1)")
	wait("connect, tx 1")
	kill()
	mustExec(t, db, "INSERT INTO t VALUES (2)")
	wait("connect, tx 1, connect, tx 2")

	stop := errors.New("annotations gone")
	h.mu.Lock()
	h.fail = stop
	h.mu.Unlock()
	kill()
	mustExec(t, db, "INSERT INTO t VALUES (3)")
	select {
	case err := <-done:
		if !errors.Is(err, stop) {
			t.Fatalf("Run = %v, want the handler's error", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run goes on after HandleConnect failed")
	}
	if got := h.events(); got != "connect, tx 1, connect, tx 2, connect" {
		t.Errorf("events %q: something was handled after the failed check", got)
	}
}
