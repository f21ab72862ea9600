package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rowhook/rowhook/internal/mariadbtest"
	"github.com/rowhook/rowhook/internal/pipeline"
)

// state.driver: mysql on a primary + replica pair, in the layout that is
// easiest to get wrong: rowhook reads the replica and keeps its state on the
// primary, so every state commit replicates into the very binlog it reads.
// Deliveries work, a restart resumes from the MySQL checkpoint without
// sending anything twice, the delivery log is readable with the CLI, the
// idle pipeline does not chase its own state commits, and state on the
// source itself is refused.
func TestRun_MySQLStateOnPrimary(t *testing.T) {
	pair := mariadbtest.NewPair(t, mariadbtest.Options{})
	t.Cleanup(pair.Stop)
	ctx := context.Background()
	pair.Primary.Exec(t, "CREATE DATABASE crm")
	pair.Primary.Exec(t, "CREATE TABLE crm.deals (id INT PRIMARY KEY, name VARCHAR(40))")
	pair.Primary.Exec(t, "CREATE DATABASE rowhook_state")
	if err := pair.WaitSync(ctx); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	got := map[string]int{} // webhook-id → count
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got[r.Header.Get("webhook-id")]++
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(recv.Close)
	count := func() (distinct, total int) {
		mu.Lock()
		defer mu.Unlock()
		for _, n := range got {
			distinct++
			total += n
		}
		return
	}
	var start string
	pair.Replica.DB().QueryRow("SELECT @@gtid_binlog_pos").Scan(&start)
	cfgText := fmt.Sprintf(`
source:
  dsn: %s
  include: ['crm.*']
  start: 'gtid:%s'
  heartbeat: 1s
http:
  listen: 127.0.0.1:0
state:
  driver: mysql
  dsn: mysql://root@127.0.0.1:%d/rowhook_state
rules:
  - name: deal
    table: crm.deals
    on: [insert]
    event: RowChanged
    webhooks: [recv]
webhooks:
  recv:
    url: %s
`, pair.Replica.URL(), start, pair.Primary.Port, recv.URL)
	dir := t.TempDir()
	cfgPath := writeConfig(t, dir, cfgText)
	cfg, _, err := pipeline.Load(context.Background(), cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	run := func(until func() bool) {
		t.Helper()
		rctx, cancel := context.WithCancel(ctx)
		defer cancel()
		p, err := startPipeline(rctx, cfg, dir, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for !until() && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		cancel()
		if err := p.Wait(); err != nil {
			t.Fatalf("pipeline: %v", err)
		}
	}
	primaryGTIDSeq := func() int64 {
		var pos string
		pair.Primary.DB().QueryRow("SELECT @@gtid_binlog_pos").Scan(&pos)
		var d, s, n int64
		fmt.Sscanf(pos, "%d-%d-%d", &d, &s, &n)
		return n
	}

	pair.Primary.Exec(t, "INSERT INTO crm.deals VALUES (1, 'one'), (2, 'two')")
	var idleCommits int64
	run(func() bool {
		if d, _ := count(); d < 2 {
			return false
		}
		// Delivered; now idle for 3s: the state commits replicating back
		// must not keep the pipeline committing.
		before := primaryGTIDSeq()
		time.Sleep(3 * time.Second)
		idleCommits = primaryGTIDSeq() - before
		return true
	})
	if idleCommits > 8 {
		t.Errorf("%d transactions on the primary in 3 idle seconds: rowhook chases its own state commits through the replica", idleCommits)
	}

	// Restart on the same MySQL state: only the new row is sent.
	pair.Primary.Exec(t, "INSERT INTO crm.deals VALUES (3, 'three')")
	run(func() bool { d, _ := count(); return d >= 3 })
	time.Sleep(300 * time.Millisecond)
	if d, total := count(); d != 3 || total != 3 {
		t.Errorf("receiver: %d distinct deliveries, %d requests; want 3 and 3", d, total)
	}
	out, errOut, code := runCommand(t, "deliveries", "list", "--config", cfgPath)
	if code != 0 || strings.Count(out, " recv ") != 3 {
		t.Errorf("deliveries list from the MySQL state: exit %d\n%s%s", code, out, errOut)
	}
	out, errOut, code = runCommand(t, "position", "--config", cfgPath)
	if code != 0 || !strings.Contains(out, "rowhook_state") {
		t.Errorf("position from the MySQL state: exit %d\n%s%s", code, out, errOut)
	}

	// The state on the server rowhook reads is refused.
	bad := strings.Replace(cfgText, fmt.Sprintf("127.0.0.1:%d/rowhook_state", pair.Primary.Port), fmt.Sprintf("127.0.0.1:%d/rowhook_state", pair.Replica.Port), 1)
	badCfg, _, err := pipeline.Load(context.Background(), writeConfig(t, t.TempDir(), bad))
	if err != nil {
		t.Fatal(err)
	}
	_, err = startPipeline(ctx, badCfg, filepath.Dir(cfgPath), slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "is the source rowhook reads") {
		t.Errorf("state on the source: %v", err)
	}
}
