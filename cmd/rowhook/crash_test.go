package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rowhook/rowhook/internal/mariadbtest"
)

// buildRowhook compiles the rowhook binary once for subprocess tests.
func buildRowhook(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "rowhook")
	cmd := exec.Command("go", "build", "-race", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// countingReceiver records every delivery by the row id in its body, with
// the webhook-id it came with.
type countingReceiver struct {
	mu    sync.Mutex
	byRow map[int64][]string // row id → webhook-ids received
}

func (c *countingReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body struct {
		After struct {
			ID int64 `json:"id"`
		} `json:"after"`
	}
	b, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(b, &body); err != nil || body.After.ID == 0 {
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	c.byRow[body.After.ID] = append(c.byRow[body.After.ID], r.Header.Get("webhook-id"))
	c.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (c *countingReceiver) distinct() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.byRow)
}

// SIGKILL rowhook at random moments while rows stream in; after each kill
// it is restarted. Every row must be delivered, and a row delivered twice
// only with the same webhook-id (the idempotency key).
func TestRun_SurvivesSIGKILL(t *testing.T) {
	bin := buildRowhook(t)
	s, err := mariadbtest.Start(mariadbtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop() })
	schema, db := s.NewSchema(t)
	if _, err := db.Exec("CREATE TABLE orders (id BIGINT PRIMARY KEY, amount DECIMAL(10,2))"); err != nil {
		t.Fatal(err)
	}
	recv := &countingReceiver{byRow: map[int64][]string{}}
	hs := httptest.NewServer(recv)
	t.Cleanup(hs.Close)

	var start string
	if err := s.DB().QueryRow("SELECT @@gtid_binlog_pos").Scan(&start); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfgPath := writeConfig(t, dir, fmt.Sprintf(`
source:
  dsn: %s
  include: ['%s.*']
  start: 'gtid:%s'
  heartbeat: 1s
  max_backoff: 500ms
http:
  listen: 127.0.0.1:0
state:
  path: state.db
rules:
  - name: every-order
    table: %s.orders
    on: [insert]
    event: RowChanged
    webhooks: [sink]
webhooks:
  sink:
    url: %s/orders
    retry: { max_attempts: 20, initial_interval: 50ms, max_interval: 500ms }
`, s.URL(), schema, start, schema, hs.URL))

	var mu sync.Mutex
	var proc *exec.Cmd
	var logs strings.Builder
	startProc := func() {
		cmd := exec.Command(bin, "run", "--config", cfgPath)
		stderr, _ := cmd.StderrPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() {
			sc := bufio.NewScanner(stderr)
			for sc.Scan() {
				mu.Lock()
				logs.WriteString(sc.Text() + "\n")
				mu.Unlock()
			}
		}()
		proc = cmd
	}
	startProc()
	t.Cleanup(func() {
		if proc != nil && proc.Process != nil {
			proc.Process.Signal(syscall.SIGTERM)
			proc.Wait()
		}
	})

	const rows = 1500
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	writerDone := make(chan error, 1)
	go func() {
		for i := 1; i <= rows; i++ {
			var err error
			if i%50 == 0 {
				// Multi-row transactions too.
				_, err = db.ExecContext(ctx, "INSERT INTO orders VALUES (?, 1.00), (?, 2.00)", i, rows+i)
			} else {
				_, err = db.ExecContext(ctx, "INSERT INTO orders VALUES (?, 1.00)", i)
			}
			if err != nil {
				writerDone <- err
				return
			}
			if i%100 == 0 {
				time.Sleep(20 * time.Millisecond)
			}
		}
		writerDone <- nil
	}()
	want := rows + rows/50

	kills := 0
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	for kills < 5 {
		time.Sleep(time.Duration(200+rng.IntN(600)) * time.Millisecond)
		if err := proc.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		proc.Wait()
		kills++
		startProc()
	}
	if err := <-writerDone; err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(90 * time.Second)
	for recv.distinct() < want {
		if time.Now().After(deadline) {
			mu.Lock()
			t.Logf("rowhook logs:\n%s", logs.String())
			mu.Unlock()
			t.Fatalf("delivered %d distinct rows of %d after %d SIGKILLs", recv.distinct(), want, kills)
		}
		time.Sleep(100 * time.Millisecond)
	}
	recv.mu.Lock()
	defer recv.mu.Unlock()
	dups := 0
	for id, ids := range recv.byRow {
		for _, wid := range ids[1:] {
			dups++
			if wid != ids[0] {
				t.Errorf("row %d delivered with different webhook-ids %q and %q", id, ids[0], wid)
			}
		}
		if ids[0] == "" {
			t.Errorf("row %d delivered without webhook-id", id)
		}
	}
	t.Logf("%d rows delivered through %d SIGKILLs; %d redeliveries, all with the same webhook-id", want, kills, dups)
}
