package cdc_test

import (
	"context"
	"database/sql"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rowhook/rowhook/cdc"
)

// The reader handles events on go-mysql's reading goroutine. A handler's
// error must still stop Run with that very error (not a wrapped or
// retried one), and a Run cancelled while its handler blocks must return
// once the handler gives up, without a reconnect.
func TestReader_HandlerErrorStopsRunUnwrapped(t *testing.T) {
	r, db, from := newTableReader(t, nil, cdc.Deps{})
	errFull := errors.New("outbox full")
	var calls atomic.Int32
	done := make(chan error, 1)
	go func() {
		done <- r.Run(context.Background(), from, cdc.HandlerFunc(func(context.Context, *cdc.Transaction) error {
			calls.Add(1)
			return errFull
		}))
	}()
	mustExec(t, db, "INSERT INTO t VALUES (1)", "INSERT INTO t VALUES (2)")
	select {
	case err := <-done:
		if err != errFull {
			t.Fatalf("Run returned %v (%T), want the handler's error itself", err, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not stop on the handler's error")
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("handler called %d times, want 1: the error must stop the stream, not be retried", n)
	}
}

func TestReader_CancelWhileHandlerBlocks(t *testing.T) {
	r, db, from := newTableReader(t, nil, cdc.Deps{})
	ctx, cancel := context.WithCancel(context.Background())
	entered := make(chan struct{}, 1)
	var calls atomic.Int32
	done := make(chan error, 1)
	go func() {
		done <- r.Run(ctx, from, cdc.HandlerFunc(func(ctx context.Context, tx *cdc.Transaction) error {
			calls.Add(1)
			entered <- struct{}{}
			<-ctx.Done() // back-pressure that only the shutdown ends
			return ctx.Err()
		}))
	}()
	mustExec(t, db, "INSERT INTO t VALUES (1)", "INSERT INTO t VALUES (2)")
	select {
	case <-entered:
	case <-time.After(30 * time.Second):
		t.Fatal("the handler was never called")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run returned %v after cancel, want nil", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return within 15s of cancel while its handler blocked")
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("handler called %d times, want 1 (the blocked transaction, nothing after the cancel)", n)
	}
	if p := r.Position(); p.GTIDSet != from.GTIDSet {
		t.Errorf("position moved to %s past a transaction the handler never accepted (from %s)", p, from)
	}
}

// newTableReader makes a schema with one table t, and a reader of it
// (settings changed by mod when not nil) that would start from now; the
// reader is closed at the end of the test.
func newTableReader(t *testing.T, mod func(*cdc.Config), deps cdc.Deps) (*cdc.Reader, *sql.DB, cdc.Checkpoint) {
	t.Helper()
	schema, db := srv.NewSchema(t)
	mustExec(t, db, "CREATE TABLE t (id INT PRIMARY KEY)")
	from := currentGTID(t, srv)
	cfg := cdc.DefaultConfig()
	cfg.DSN = srv.URL()
	cfg.Include = []string{schema + ".*"}
	cfg.Heartbeat = time.Second
	cfg.MaxBackoff = 200 * time.Millisecond
	if mod != nil {
		mod(&cfg)
	}
	r, err := cdc.New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, db, from
}
