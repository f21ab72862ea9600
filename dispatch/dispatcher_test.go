package dispatch_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/dispatch"
	"github.com/rowhook/rowhook/dispatch/sqlitestore"
	"github.com/rowhook/rowhook/rules"
)

// syncBuffer collects log output from many goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type harness struct {
	t      *testing.T
	d      *dispatch.Dispatcher
	store  *sqlitestore.Store
	logs   *syncBuffer
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan error
	path   string
}

// start builds a dispatcher over a fresh SQLite store and runs it until the
// test ends.
func start(t *testing.T, cfg dispatch.Config, deps dispatch.Deps) *harness {
	t.Helper()
	h := &harness{t: t, logs: &syncBuffer{}, reg: prometheus.NewRegistry(), path: filepath.Join(t.TempDir(), "state.db")}
	var err error
	h.store, err = sqlitestore.Open(h.path, sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	deps.Logger = slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	deps.Registerer = h.reg
	if deps.PollInterval == 0 {
		deps.PollInterval = 50 * time.Millisecond
	}
	h.d, err = dispatch.New(cfg, h.store, deps)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.done = make(chan error, 1)
	go func() { h.done <- h.d.Run(ctx) }()
	t.Cleanup(func() {
		h.stop()
		h.store.Close()
	})
	return h
}

func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("Run returned %v", err)
		}
	case <-time.After(20 * time.Second):
		h.t.Error("Run did not return after cancel")
	}
}

var seq int

func event(name string, webhooks ...string) rules.Event {
	seq++
	id := int64(seq)
	return rules.Event{
		ID: fmt.Sprintf("0-1-%d:0:rule", seq), Rule: "rule", Name: name, Webhooks: webhooks,
		Key: fmt.Sprintf("crm.vtiger_potential:%d", id), Timestamp: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC),
		Body: rules.Body{{Name: "id", Value: id}, {Name: "name", Value: "Deal " + fmt.Sprint(id)}},
		Change: &cdc.Change{Schema: "crm", Table: "vtiger_potential", Op: cdc.OpInsert,
			After: cdc.Row{"potentialid": id}, PK: cdc.Row{"potentialid": id}, PKColumns: []string{"potentialid"}},
	}
}

func (h *harness) enqueue(events ...rules.Event) {
	h.t.Helper()
	seq++
	cp := cdc.Checkpoint{Flavor: "mariadb", File: "bin.000001", Pos: uint32(seq)}
	if err := h.d.Enqueue(context.Background(), cp, events); err != nil {
		h.t.Fatal(err)
	}
	if err := h.d.Flush(context.Background()); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) delivery(ev rules.Event, webhook string) (dispatch.Delivery, []dispatch.Attempt) {
	h.t.Helper()
	d, log, err := h.store.Get(context.Background(), dispatch.DeliveryID(ev.Timestamp, ev.ID, webhook, ""))
	if err != nil {
		h.t.Fatal(err)
	}
	return d, log
}

// waitStatus waits until the delivery of ev to webhook has status want.
func (h *harness) waitStatus(ev rules.Event, webhook string, want dispatch.Status) dispatch.Delivery {
	h.t.Helper()
	var d dispatch.Delivery
	waitFor(h.t, fmt.Sprintf("delivery to %s %s", webhook, want), func() bool {
		d, _ = h.delivery(ev, webhook)
		return d.Status == want
	})
	return d
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// receiver is an httptest server recording requests; respond decides the
// answer to request n (from 1).
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	requests []recorded
	respond  func(n int, r *http.Request, body []byte) (int, http.Header, string)
}

type recorded struct {
	Method string
	URL    string
	Header http.Header
	Body   []byte
	At     time.Time
}

func newReceiver(t *testing.T, respond func(n int, r *http.Request, body []byte) (int, http.Header, string)) *receiver {
	rc := &receiver{respond: respond}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.requests = append(rc.requests, recorded{r.Method, r.URL.String(), r.Header.Clone(), body, time.Now()})
		n := len(rc.requests)
		rc.mu.Unlock()
		status, hdr, out := 200, http.Header(nil), `{"ok":true}`
		if rc.respond != nil {
			status, hdr, out = rc.respond(n, r, body)
		}
		for k, v := range hdr {
			w.Header()[k] = v
		}
		w.WriteHeader(status)
		io.WriteString(w, out)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) got() []recorded {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]recorded(nil), rc.requests...)
}

func (rc *receiver) count() int { return len(rc.got()) }

func fast() dispatch.RetryConfig {
	return dispatch.RetryConfig{MaxAttempts: 5, InitialInterval: 10 * time.Millisecond, MaxInterval: 40 * time.Millisecond}
}

func hook(url string) dispatch.WebhookConfig {
	return dispatch.WebhookConfig{URL: url, Retry: fast()}
}

func adminRequest(t *testing.T, h http.Handler, method, path, token, body string) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.RemoteAddr = "127.0.0.1:5000"
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var out map[string]any
	if rec.Body.Len() > 0 {
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("%s %s: not JSON: %s", method, path, rec.Body)
		}
	}
	return rec.Code, out
}

type (
	rulesEvent    = rules.Event
	cdcCheckpoint = cdc.Checkpoint
)

func field(name string, v any) rules.Field { return rules.Field{Name: name, Value: v} }

var (
	errTest    = errors.New("writeback test failure")
	errBadResp = errors.New("unexpected response")
	net0       = net.Dialer{Timeout: 5 * time.Second}
)

// reopen opens h's state file again after h stopped, as a restart would.
func reopen(h *harness) (*sqlitestore.Store, error) {
	h.store.Close()
	st, err := sqlitestore.Open(h.path, sqlitestore.Options{})
	if err != nil {
		return nil, err
	}
	h.store = st
	return st, nil
}

func TestDispatcher_StoreFailureIsSticky(t *testing.T) {
	st, err := sqlitestore.Open(filepath.Join(t.TempDir(), "state.db"), sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d, err := dispatch.New(dispatch.Config{Webhooks: map[string]dispatch.WebhookConfig{"erp": hook("http://127.0.0.1:1/")}}, st, dispatch.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := d.Enqueue(ctx, cdc.Checkpoint{File: "b", Pos: 1}, nil); err != nil {
		t.Fatal(err)
	}
	if err := d.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	st.Close() // the store breaks
	d.Enqueue(ctx, cdc.Checkpoint{File: "b", Pos: 2}, []rulesEvent{event("E", "erp")})
	if err := d.Flush(ctx); err == nil {
		t.Fatal("Flush succeeded on a closed store")
	}
	if err := d.Enqueue(ctx, cdc.Checkpoint{File: "b", Pos: 3}, nil); err == nil {
		t.Error("Enqueue after a failed commit succeeded: the reader would skip the lost transaction")
	}
}
