package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/internal/mariadbtest"
	"github.com/rowhook/rowhook/internal/pipeline"
)

// The binlog rowhook needs is purged while it is down: it refuses to start
// with an error naming the recovery, `rowhook position` says the checkpoint
// is not resumable, `--set current` stores a new one, and rowhook resumes
// there: rows written after the new position are delivered, the skipped
// ones are not, and nothing already delivered is sent again.
func TestPosition_RecoveryAfterPurge(t *testing.T) {
	s := mariadbtest.New(t, mariadbtest.Options{})
	schema, db := s.NewSchema(t)
	if _, err := db.Exec("CREATE TABLE deals (id INT PRIMARY KEY, name VARCHAR(40))"); err != nil {
		t.Fatal(err)
	}
	var got atomic.Int64
	seen := make(chan string, 100)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Add(1)
		seen <- r.Header.Get("webhook-id")
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(recv.Close)
	var start string
	s.DB().QueryRow("SELECT @@gtid_binlog_pos").Scan(&start)
	dir := t.TempDir()
	cfgPath := writeConfig(t, dir, fmt.Sprintf(`
source:
  dsn: %s
  include: ['%s.*']
  start: 'gtid:%s'
  heartbeat: 1s
http:
  listen: 127.0.0.1:0
state:
  path: state.db
rules:
  - name: deal
    table: %s.deals
    on: [insert]
    event: RowChanged
    webhooks: [recv]
webhooks:
  recv:
    url: %s
`, s.URL(), schema, start, schema, recv.URL))
	cfg, _, err := pipeline.Load(context.Background(), cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	runFor := func(until func() bool) error {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		p, err := startPipeline(ctx, cfg, dir, slog.New(slog.NewTextHandler(tLogWriter{t}, nil)))
		if err != nil {
			return err
		}
		deadline := time.Now().Add(30 * time.Second)
		for !until() {
			if time.Now().After(deadline) {
				cancel()
				p.Wait()
				t.Fatal("timed out")
			}
			select {
			case <-p.Done():
				return p.Wait()
			case <-time.After(20 * time.Millisecond):
			}
		}
		cancel()
		return p.Wait()
	}

	// Run 1: one row delivered, checkpoint stored.
	s.Exec(t, "INSERT INTO "+schema+".deals VALUES (1, 'one')")
	if err := runFor(func() bool { return got.Load() == 1 }); err != nil {
		t.Fatal(err)
	}
	firstID := <-seen

	// Down: more rows, then their binlog is rotated away and purged.
	s.Exec(t, "INSERT INTO "+schema+".deals VALUES (2, 'lost')")
	s.Exec(t, "FLUSH BINARY LOGS")
	var cur string
	var pos int64
	if err := s.DB().QueryRow("SHOW MASTER STATUS").Scan(&cur, &pos, new(string), new(string)); err != nil {
		t.Fatal(err)
	}
	// The stopped rowhook's dump thread may linger a moment, and MariaDB
	// does not purge a file a dump thread still reads: retry until gone.
	for deadline := time.Now().Add(10 * time.Second); ; {
		s.Exec(t, "PURGE BINARY LOGS TO '"+cur+"'")
		var oldest string
		if err := s.DB().QueryRow("SHOW BINARY LOGS").Scan(&oldest, new(int64)); err != nil {
			t.Fatal(err)
		}
		if oldest == cur {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("binlogs before %s were not purged (oldest %s)", cur, oldest)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// rowhook refuses to start and names the way out.
	err = runFor(func() bool { return false })
	if !errors.Is(err, cdc.ErrPurged) {
		t.Fatalf("run after purge: %v, want a purged-binlog error", err)
	}
	stdout, stderr, code := runCommand(t, "position", "--config", cfgPath)
	if code == 0 || !strings.Contains(stdout, "NOT resumable") || !strings.Contains(stderr, "rowhook position --config") {
		t.Fatalf("position: exit %d\n%s%s", code, stdout, stderr)
	}

	// Recovery: a new position, then rows written after it are delivered.
	stdout, stderr, code = runCommand(t, "position", "--config", cfgPath, "--set", "current")
	if code != 0 || !strings.Contains(stdout, "new checkpoint: file:"+cur) {
		t.Fatalf("position --set current: exit %d\n%s%s", code, stdout, stderr)
	}
	if stdout, stderr, code = runCommand(t, "position", "--config", cfgPath); code != 0 || !strings.Contains(stdout, "resumable") {
		t.Fatalf("position after --set: exit %d\n%s%s", code, stdout, stderr)
	}
	s.Exec(t, "INSERT INTO "+schema+".deals VALUES (3, 'after')")
	if err := runFor(func() bool { return got.Load() >= 2 }); err != nil {
		t.Fatal(err)
	}
	if n := got.Load(); n != 2 {
		t.Errorf("receiver got %d deliveries, want 2 (row 1 before the purge, row 3 after the new position)", n)
	}
	if id := <-seen; id == firstID {
		t.Errorf("second delivery reused the first one's id %q", id)
	}
}

type tLogWriter struct{ t *testing.T }

func (w tLogWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}
