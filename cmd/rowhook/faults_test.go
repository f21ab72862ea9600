package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rowhook/rowhook/internal/mariadbtest"
)

// The faults users hit, each against a real rowhook process (built with
// -race), a private MariaDB and real HTTP receivers. The subtests share the
// binary and the server (each has its own schema); the server restart test
// restarts that server.
func TestRun_Faults(t *testing.T) {
	bin := buildRowhook(t)
	s := mariadbtest.New(t, mariadbtest.Options{})
	for _, tc := range []struct {
		name string
		run  func(*testing.T, *faultEnv)
	}{
		{"MariaDBRestartedMidStream", testFaultMariaDBRestart},
		{"BinlogConnectionKilled", testFaultBinlogKilled},
		{"ReceiverDownThenBack", testFaultReceiverDown},
		{"SlowReceiverDoesNotHoldUpFastOne", testFaultSlowReceiver},
		{"StateDirectoryReadOnly", testFaultStateReadOnly},
		{"StateDiskFull", testFaultStateDiskFull},
		{"StateLockedByAnotherProcess", testFaultStateLocked},
		{"AlterTableMidStream", testFaultAlterTable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.run(t, newFaultEnv(t, s, bin))
		})
	}
}

// faultEnv is one fault test's world: a schema with an orders table, a
// config directory, and the rowhook process.
type faultEnv struct {
	t         *testing.T
	s         *mariadbtest.Server
	bin       string
	schema    string
	db        *sql.DB
	start     string // GTID position before the test's first change
	dir       string
	cfgPath   string
	statePath string
	listen    string
	logs      *syncWriter
	proc      *rowhookProc
}

func newFaultEnv(t *testing.T, s *mariadbtest.Server, bin string) *faultEnv {
	e := &faultEnv{t: t, s: s, bin: bin, dir: t.TempDir(), listen: freeAddr(t), logs: &syncWriter{}}
	e.schema, e.db = s.NewSchema(t)
	if _, err := e.db.Exec("CREATE TABLE orders (id BIGINT PRIMARY KEY, version INT NOT NULL DEFAULT 1, amount DECIMAL(10,2))"); err != nil {
		t.Fatal(err)
	}
	if err := s.DB().QueryRow("SELECT @@gtid_binlog_pos").Scan(&e.start); err != nil {
		t.Fatal(err)
	}
	e.statePath = filepath.Join(e.dir, "state", "state.db")
	if err := os.Mkdir(filepath.Dir(e.statePath), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if e.proc != nil && e.proc.running() {
			e.proc.kill()
		}
		if t.Failed() {
			t.Logf("rowhook logs:\n%s", e.logs.String())
		}
	})
	return e
}

// config writes the configuration: the source block, then rest (rules,
// webhooks, delivery).
func (e *faultEnv) config(rest string) {
	e.cfgPath = writeConfig(e.t, e.dir, fmt.Sprintf(`
source:
  dsn: %s
  include: ['%s.*']
  start: 'gtid:%s'
  heartbeat: 1s
  read_timeout: 5s
  max_backoff: 500ms
http:
  listen: %s
state:
  path: state/state.db
`, e.s.URL(), e.schema, e.start, e.listen)+strings.ReplaceAll(rest, "SCHEMA", e.schema))
}

// orderRule is a rule sending every insert (and update) on orders to the
// named webhooks.
func orderRule(webhooks ...string) string {
	return fmt.Sprintf(`
rules:
  - name: every-order
    table: SCHEMA.orders
    on: [insert, update]
    event: RowChanged
    webhooks: [%s]
`, strings.Join(webhooks, ", "))
}

func (e *faultEnv) run() {
	e.proc = startRowhook(e.t, e.bin, e.cfgPath, e.logs)
	waitReady(e.t, e.listen)
}

// insert inserts rows from..to (version 1) in multi-row statements of 10.
func (e *faultEnv) insert(from, to int) {
	e.t.Helper()
	if err := insertOrders(context.Background(), e.db, from, to); err != nil {
		e.t.Fatal(err)
	}
}

func insertOrders(ctx context.Context, db *sql.DB, from, to int) error {
	for i := from; i <= to; i += 10 {
		var vals []string
		for id := i; id <= min(i+9, to); id++ {
			vals = append(vals, fmt.Sprintf("(%d, %d.00)", id, id%1000))
		}
		if _, err := db.ExecContext(ctx, "INSERT INTO orders (id, amount) VALUES "+strings.Join(vals, ",")); err != nil {
			return fmt.Errorf("insert orders %d..: %w", i, err)
		}
	}
	return nil
}

// wantInserts is the (row, version 1) pairs of rows from..to.
func wantInserts(from, to int) map[[2]int64]bool {
	want := map[[2]int64]bool{}
	for id := from; id <= to; id++ {
		want[[2]int64{int64(id), 1}] = true
	}
	return want
}

// waitDelivered waits until recv has n distinct changes.
func (e *faultEnv) waitDelivered(recv *testReceiver, n int, within time.Duration) {
	e.t.Helper()
	deadline := time.Now().Add(within)
	for recv.distinctVersions() < n {
		if time.Now().After(deadline) {
			e.t.Fatalf("delivered %d distinct changes of %d within %s", recv.distinctVersions(), n, within)
		}
		if !e.proc.running() {
			e.t.Fatalf("rowhook exited (%v) with %d of %d changes delivered", e.proc.err, recv.distinctVersions(), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stopAndCheckState stops rowhook cleanly and checks the state file: SQLite
// finds it intact, and every delivery in it is done (status ok).
func (e *faultEnv) stopAndCheckState() {
	e.t.Helper()
	if err := e.proc.stop(); err != nil {
		e.t.Errorf("rowhook stop: %v", err)
	}
	statuses, integrity := stateSummary(e.t, e.statePath)
	if integrity != "ok" {
		e.t.Errorf("state file %s: integrity_check says %q", e.statePath, integrity)
	}
	for st, n := range statuses {
		if st != "ok" {
			e.t.Errorf("%d deliveries are %s, want all ok", n, st)
		}
	}
}

// stateSummary opens the state file read-only and returns the deliveries
// by status and SQLite's integrity check.
func stateSummary(t *testing.T, path string) (map[string]int, string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var integrity string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&integrity); err != nil {
		t.Fatalf("integrity_check of %s: %v", path, err)
	}
	out := map[string]int{}
	for _, d := range outbox(t, path) {
		out[string(d.Status)]++
	}
	return out, integrity
}

// readyz returns /readyz's status code and body (0 when nothing answers).
func readyz(addr string) (int, string) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// MariaDB is killed and restarted on the same port while rows stream in and
// rowhook reads them: rowhook reports not ready while the source is gone,
// reconnects, resumes, and delivers every row, twice only with the same
// webhook-id.
func testFaultMariaDBRestart(t *testing.T, e *faultEnv) {
	recv := &testReceiver{}
	hs := httptest.NewServer(recv)
	t.Cleanup(hs.Close)
	e.config(orderRule("sink") + fmt.Sprintf(`
webhooks:
  sink:
    url: %s/orders
    retry: { max_attempts: 50, initial_interval: 50ms, max_interval: 500ms }
`, hs.URL))
	e.run()

	const rows = 1500
	writerDone := make(chan error, 1)
	go func() {
		// 10 rows per statement, about 1,500 rows a second; a statement
		// cut off by the kill is retried with INSERT IGNORE (it may have
		// committed) once the server is back.
		for i := 1; i <= rows; i += 10 {
			var vals []string
			for id := i; id <= min(i+9, rows); id++ {
				vals = append(vals, fmt.Sprintf("(%d, 1.00)", id))
			}
			q := "INSERT IGNORE INTO orders (id, amount) VALUES " + strings.Join(vals, ",")
			deadline := time.Now().Add(90 * time.Second)
			for {
				_, err := e.db.Exec(q)
				if err == nil {
					break
				}
				if time.Now().After(deadline) {
					writerDone <- err
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
			time.Sleep(7 * time.Millisecond)
		}
		writerDone <- nil
	}()
	time.Sleep(700 * time.Millisecond)
	e.s.Kill()
	killedAt := time.Now()
	var code int
	var body string
	waitFor(t, 15*time.Second, "readyz reporting the lost binlog stream", func() bool {
		code, body = readyz(e.listen)
		return code == http.StatusServiceUnavailable && strings.Contains(body, "binlog")
	})
	time.Sleep(time.Second)
	if err := e.s.Restart(); err != nil {
		t.Fatal(err)
	}
	down := time.Since(killedAt)
	if err := <-writerDone; err != nil {
		t.Fatal(err)
	}
	e.waitDelivered(recv, rows, 90*time.Second)
	waitFor(t, 15*time.Second, "readyz after the restart", func() bool { c, _ := readyz(e.listen); return c == http.StatusOK })
	if !strings.Contains(e.logs.String(), "binlog connection lost; reconnecting") {
		t.Errorf("no reconnect logged")
	}
	e.stopAndCheckState()
	dups := recv.check(t, wantInserts(1, rows))
	t.Logf("MariaDB down %s; /readyz said %d %q meanwhile; %d rows delivered, %d redeliveries with the same webhook-id",
		down.Round(time.Millisecond), code, strings.TrimSpace(body), rows, dups)
}

// binlogDumpThreads lists the ids of the server's Binlog Dump threads.
func binlogDumpThreads(t *testing.T, db *sql.DB) []int64 {
	t.Helper()
	rows, err := db.Query("SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

// The server kills rowhook's binlog connection (KILL of its Binlog Dump
// thread) again and again while rows stream in: each time rowhook
// reconnects after the last complete transaction; every row is delivered.
func testFaultBinlogKilled(t *testing.T, e *faultEnv) {
	recv := &testReceiver{}
	hs := httptest.NewServer(recv)
	t.Cleanup(hs.Close)
	e.config(orderRule("sink") + fmt.Sprintf(`
webhooks:
  sink:
    url: %s/orders
    retry: { max_attempts: 50, initial_interval: 50ms, max_interval: 500ms }
`, hs.URL))
	e.run()

	const rows, kills = 1500, 6
	writerDone := make(chan error, 1)
	go func() {
		for i := 1; i <= rows; i += 50 {
			if err := insertOrders(context.Background(), e.db, i, min(i+49, rows)); err != nil {
				writerDone <- err
				return
			}
			time.Sleep(30 * time.Millisecond)
		}
		writerDone <- nil
	}()
	for k := 0; k < kills; k++ {
		var ids []int64
		waitFor(t, 15*time.Second, "a binlog dump thread", func() bool { ids = binlogDumpThreads(t, e.s.DB()); return len(ids) == 1 })
		if _, err := e.s.DB().Exec(fmt.Sprintf("KILL %d", ids[0])); err != nil {
			t.Fatalf("kill binlog dump thread %d: %v", ids[0], err)
		}
		waitFor(t, 15*time.Second, "a new binlog dump thread", func() bool {
			now := binlogDumpThreads(t, e.s.DB())
			return len(now) == 1 && now[0] != ids[0]
		})
		time.Sleep(150 * time.Millisecond)
	}
	if err := <-writerDone; err != nil {
		t.Fatal(err)
	}
	e.waitDelivered(recv, rows, 60*time.Second)
	if n := strings.Count(e.logs.String(), "binlog connection lost; reconnecting"); n < kills {
		t.Errorf("%d reconnects logged after %d kills", n, kills)
	}
	e.stopAndCheckState()
	dups := recv.check(t, wantInserts(1, rows))
	t.Logf("%d binlog dump threads killed; %d rows delivered, %d redeliveries with the same webhook-id", kills, rows, dups)
}

// switchableServer is a real HTTP server that can be taken down (its port
// refuses connections) and brought back on the same address.
type switchableServer struct {
	addr string
	h    http.Handler
	mu   sync.Mutex
	srv  *http.Server
}

func (s *switchableServer) up(t *testing.T) {
	t.Helper()
	var l net.Listener
	var err error
	waitFor(t, 10*time.Second, "listen on "+s.addr, func() bool {
		l, err = net.Listen("tcp", s.addr)
		return err == nil
	})
	srv := &http.Server{Handler: s.h}
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
	go srv.Serve(l)
}

func (s *switchableServer) down() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		s.srv.Close()
		s.srv = nil
	}
}

// webhookState returns the webhook's state from GET /webhooks.
func webhookState(t *testing.T, listen, name string) string {
	t.Helper()
	var out struct {
		Webhooks []struct {
			Name  string `json:"name"`
			State string `json:"state"`
		} `json:"webhooks"`
	}
	if err := json.Unmarshal([]byte(httpGet(t, "http://"+listen+"/webhooks")), &out); err != nil {
		t.Fatalf("GET /webhooks: %v", err)
	}
	for _, w := range out.Webhooks {
		if w.Name == name {
			return w.State
		}
	}
	return ""
}

// The receiver refuses connections for a while (8s here, 3 minutes with
// ROWHOOK_FAULTS=long): the endpoint's circuit opens after a few failures,
// it is probed (at most every pause_for) and reported paused after
// delivery.pause_after (GET /webhooks, the rowhook_webhook_state metric),
// and once the receiver is back everything is delivered and the endpoint
// active again.
func testFaultReceiverDown(t *testing.T, e *faultEnv) {
	downFor := 8 * time.Second
	if longFaults() {
		downFor = 3 * time.Minute
	}
	recv := &testReceiver{}
	rs := &switchableServer{addr: freeAddr(t), h: recv}
	rs.up(t)
	t.Cleanup(rs.down)
	e.config(orderRule("sink") + fmt.Sprintf(`
delivery:
  pause_after: 2s
  pause_for: 1s
webhooks:
  sink:
    url: http://%s/orders
    retry: { max_attempts: 1000, initial_interval: 100ms, max_interval: 1s }
`, rs.addr))
	e.run()
	e.insert(1, 100)
	e.waitDelivered(recv, 100, 30*time.Second)

	rs.down()
	wentDown := time.Now()
	e.insert(101, 300)
	waitFor(t, 20*time.Second, "webhook sink reported paused", func() bool { return webhookState(t, e.listen, "sink") == "paused" })
	pausedAfter := time.Since(wentDown)
	if m := httpGet(t, "http://"+e.listen+"/metrics"); !strings.Contains(m, `rowhook_webhook_state{state="paused",webhook="sink"} 1`) ||
		!strings.Contains(m, `rowhook_webhook_circuit_state{state="closed",webhook="sink"} 0`) {
		t.Errorf("/metrics does not show sink paused with its circuit not closed")
	}
	time.Sleep(time.Until(wentDown.Add(downFor)))
	if n := recv.distinctVersions(); n != 100 {
		t.Fatalf("%d changes arrived while the receiver was down", n-100)
	}
	if !e.proc.running() {
		t.Fatalf("rowhook exited while the receiver was down: %v", e.proc.err)
	}
	rs.up(t)
	back := time.Now()
	e.waitDelivered(recv, 300, 60*time.Second)
	caughtUp := time.Since(back)
	waitFor(t, 10*time.Second, "webhook sink active again", func() bool { return webhookState(t, e.listen, "sink") == "active" })
	if m := httpGet(t, "http://"+e.listen+"/metrics"); !strings.Contains(m, `rowhook_webhook_circuit_state{state="closed",webhook="sink"} 1`) {
		t.Errorf("/metrics does not show sink's circuit closed again")
	}
	if !strings.Contains(e.logs.String(), "endpoint paused: failing continuously") || !strings.Contains(e.logs.String(), "endpoint circuit closed") {
		t.Errorf("pause and resume not logged")
	}
	e.stopAndCheckState()
	dups := recv.check(t, wantInserts(1, 300))
	t.Logf("receiver down %s: paused after %s; all 300 delivered %s after it came back; %d redeliveries with the same webhook-id",
		downFor, pausedAfter.Round(100*time.Millisecond), caughtUp.Round(10*time.Millisecond), dups)
}

// One receiver takes seconds per call while another answers at once: the
// fast webhook's deliveries are not held up behind the slow one's.
func testFaultSlowReceiver(t *testing.T, e *faultEnv) {
	const slowCall = 3 * time.Second
	var slowMu sync.Mutex
	slowDone := 0
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		select {
		case <-time.After(slowCall):
		case <-r.Context().Done():
		}
		slowMu.Lock()
		slowDone++
		slowMu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(slow.Close)
	var fastMu sync.Mutex
	arrived := map[int64]time.Time{}
	fast := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			After struct {
				ID int64 `json:"id"`
			} `json:"after"`
		}
		b, _ := io.ReadAll(r.Body)
		json.Unmarshal(b, &body)
		fastMu.Lock()
		if _, ok := arrived[body.After.ID]; !ok {
			arrived[body.After.ID] = time.Now()
		}
		fastMu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(fast.Close)
	e.config(orderRule("slow", "fast") + fmt.Sprintf(`
webhooks:
  slow:
    url: %s/orders
    timeout: 30s
  fast:
    url: %s/orders
`, slow.URL, fast.URL))
	e.run()

	const rows = 40
	committed := map[int64]time.Time{}
	for i := 1; i <= rows; i += 10 {
		e.insert(i, i+9)
		now := time.Now()
		for id := i; id <= i+9; id++ {
			committed[int64(id)] = now
		}
		time.Sleep(200 * time.Millisecond)
	}
	waitFor(t, 30*time.Second, "all rows at the fast receiver", func() bool {
		fastMu.Lock()
		defer fastMu.Unlock()
		return len(arrived) == rows
	})
	slowMu.Lock()
	slowAtThatTime := slowDone
	slowMu.Unlock()
	var lat []time.Duration
	fastMu.Lock()
	for id, at := range arrived {
		lat = append(lat, at.Sub(committed[id]))
	}
	fastMu.Unlock()
	slices.Sort(lat)
	if slowAtThatTime >= rows/2 {
		t.Errorf("the slow receiver had answered %d of %d calls when the fast one had all: the test did not make it slow", slowAtThatTime, rows)
	}
	// Held up behind the slow webhook, a fast delivery would wait at least
	// one slow call.
	if max := lat[len(lat)-1]; max >= slowCall {
		t.Errorf("fast webhook latency up to %s: held up behind the slow one (%s per call)", max, slowCall)
	}
	t.Logf("fast webhook: %d deliveries, latency from commit p50 %s, max %s, while the slow one (%s per call) had answered %d",
		rows, lat[len(lat)/2].Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond), slowCall, slowAtThatTime)
}

// makeReadOnly makes dir unwritable even for root (chattr +i) and returns
// the undo. As another user chmod is enough.
func makeReadOnly(t *testing.T, dir string) func() {
	t.Helper()
	if os.Geteuid() != 0 {
		if err := os.Chmod(dir, 0o555); err != nil {
			t.Fatal(err)
		}
		return func() { os.Chmod(dir, 0o755) }
	}
	if out, err := exec.Command("chattr", "+i", dir).CombinedOutput(); err != nil {
		t.Fatalf("chattr +i %s (root ignores file modes, so the test makes the directory immutable): %v %s", dir, err, out)
	}
	undo := func() { exec.Command("chattr", "-i", dir).Run() }
	t.Cleanup(undo)
	return undo
}

// The state directory is read-only at start-up: rowhook stops at once with
// an error naming the state file, and starts normally (nothing lost) once
// the directory is writable again. Then the directory turns read-only under
// a running rowhook: /readyz reports it, naming the state directory.
func testFaultStateReadOnly(t *testing.T, e *faultEnv) {
	recv := &testReceiver{}
	hs := httptest.NewServer(recv)
	t.Cleanup(hs.Close)
	e.config(orderRule("sink") + fmt.Sprintf(`
webhooks:
  sink:
    url: %s/orders
`, hs.URL))
	e.insert(1, 50)
	undo := makeReadOnly(t, filepath.Dir(e.statePath))
	e.proc = startRowhook(t, e.bin, e.cfgPath, e.logs)
	select {
	case <-e.proc.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("rowhook still running with a read-only state directory")
	}
	var ee *exec.ExitError
	if !errors.As(e.proc.err, &ee) || ee.ExitCode() == 0 {
		t.Errorf("rowhook exit: %v, want a failure status", e.proc.err)
	}
	out := e.logs.String()
	if !strings.Contains(out, e.statePath) {
		t.Errorf("the error does not name the state file %s:\n%s", e.statePath, out)
	}
	if n := recv.distinctVersions(); n != 0 {
		t.Errorf("%d deliveries without a state file", n)
	}
	undo()
	e.run()
	e.waitDelivered(recv, 50, 30*time.Second)

	undo = makeReadOnly(t, filepath.Dir(e.statePath))
	var body string
	waitFor(t, 15*time.Second, "readyz reporting the read-only state directory", func() bool {
		var code int
		code, body = readyz(e.listen)
		return code == http.StatusServiceUnavailable && strings.Contains(body, "state directory not writable")
	})
	if !strings.Contains(body, filepath.Dir(e.statePath)) {
		t.Errorf("/readyz does not name the state directory: %s", body)
	}
	undo()
	waitFor(t, 15*time.Second, "readyz after the directory is writable again", func() bool { c, _ := readyz(e.listen); return c == http.StatusOK })
	e.insert(51, 60)
	e.waitDelivered(recv, 60, 30*time.Second)
	e.stopAndCheckState()
	recv.check(t, wantInserts(1, 60))
	t.Logf("read-only state directory at start-up: %s", firstLine(out, "rowhook:"))
	t.Logf("read-only while running, /readyz: %s", strings.TrimSpace(body))
}

// firstLine returns the first line of s containing sub.
func firstLine(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}

// The disk fills up under a running rowhook (a file size limit on the
// process, RLIMIT_FSIZE: writes past it fail as they would on a full disk):
// rowhook stops with an error naming the state file, the file is intact,
// and a restart with room again delivers every row.
func testFaultStateDiskFull(t *testing.T, e *faultEnv) {
	recv := &testReceiver{}
	hs := httptest.NewServer(recv)
	t.Cleanup(hs.Close)
	e.config(orderRule("sink") + fmt.Sprintf(`
webhooks:
  sink:
    url: %s/orders
    retry: { max_attempts: 50, initial_interval: 50ms, max_interval: 500ms }
`, hs.URL))
	const limit = 256 << 10
	cmd := exec.Command("prlimit", fmt.Sprintf("--fsize=%d", limit), e.bin, "run", "--config", e.cfgPath)
	cmd.Stdout, cmd.Stderr = e.logs, e.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	e.proc = &rowhookProc{cmd: cmd, exited: make(chan struct{})}
	go func() { e.proc.err = cmd.Wait(); close(e.proc.exited) }()
	waitReady(t, e.listen)

	// About 1,000 rows a second until the state file hits the limit
	// (a few hundred deliveries with their attempts fill 256 KiB).
	const maxRows = 2000
	rows := 0
	for e.proc.running() && rows < maxRows {
		e.insert(rows+1, rows+100)
		rows += 100
		time.Sleep(100 * time.Millisecond)
	}
	// It stops promptly: the reader's failed commit stops the pipeline, and
	// results that cannot be recorded are not retried at shutdown (they
	// used to hold the process for 30s per batch).
	select {
	case <-e.proc.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("rowhook still running 30s after %d rows with its files limited to %d bytes", rows, limit)
	}
	var ee *exec.ExitError
	if !errors.As(e.proc.err, &ee) || ee.ExitCode() == 0 {
		t.Errorf("rowhook exit: %v, want a failure status", e.proc.err)
	}
	out := e.logs.String()
	if !strings.Contains(out, e.statePath) {
		t.Errorf("the error does not name the state file %s", e.statePath)
	}
	before := recv.distinctVersions()
	if _, integrity := stateSummary(t, e.statePath); integrity != "ok" {
		t.Errorf("state file after the disk filled up: integrity_check says %q", integrity)
	}
	e.run()
	e.waitDelivered(recv, rows, 60*time.Second)
	e.stopAndCheckState()
	dups := recv.check(t, wantInserts(1, rows))
	t.Logf("disk full (files limited to %d bytes) after %d of %d rows delivered: %s", limit, before, rows, firstLine(out, "level=ERROR"))
	t.Logf("after a restart with room: all %d delivered, %d redeliveries with the same webhook-id", rows, dups)
}

// Another process holds the state file's write lock (BEGIN EXCLUSIVE) while
// rows come in: once SQLite's busy timeout (10s) runs out rowhook stops
// with an error naming the state file; after the lock is released the file
// is intact and a restart delivers every row.
func testFaultStateLocked(t *testing.T, e *faultEnv) {
	recv := &testReceiver{}
	hs := httptest.NewServer(recv)
	t.Cleanup(hs.Close)
	e.config(orderRule("sink") + fmt.Sprintf(`
webhooks:
  sink:
    url: %s/orders
`, hs.URL))
	e.run()
	e.insert(1, 100)
	e.waitDelivered(recv, 100, 30*time.Second)

	ctx := context.Background()
	lockDB, err := sql.Open("sqlite", "file:"+e.statePath+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer lockDB.Close()
	conn, err := lockDB.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN EXCLUSIVE"); err != nil {
		t.Fatalf("lock %s: %v", e.statePath, err)
	}
	locked := time.Now()
	e.insert(101, 200)
	select {
	case <-e.proc.exited:
	case <-time.After(60 * time.Second):
		t.Fatalf("rowhook still running 60s after another process locked its state file")
	}
	stoppedAfter := time.Since(locked)
	var ee *exec.ExitError
	if !errors.As(e.proc.err, &ee) || ee.ExitCode() == 0 {
		t.Errorf("rowhook exit: %v, want a failure status", e.proc.err)
	}
	out := e.logs.String()
	msg := firstLine(out, "rowhook:")
	if !strings.Contains(msg, e.statePath) || !strings.Contains(msg, "locked") {
		t.Errorf("the error does not say the state file %s is locked: %q", e.statePath, msg)
	}
	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	lockDB.Close()
	if _, integrity := stateSummary(t, e.statePath); integrity != "ok" {
		t.Errorf("state file after the lock: integrity_check says %q", integrity)
	}
	e.run()
	e.waitDelivered(recv, 200, 60*time.Second)
	e.stopAndCheckState()
	dups := recv.check(t, wantInserts(1, 200))
	t.Logf("state file locked: rowhook stopped %s later with %q; after the lock was released all 200 delivered, %d redeliveries with the same webhook-id",
		stoppedAfter.Round(100*time.Millisecond), msg, dups)
}

// ALTER TABLE in the middle of the stream, read through the whole pipeline:
// a column added in the middle of the table while rowhook is behind (rows
// before it keep their own names and values), and another added while
// rowhook is caught up (old rows updated afterwards carry both).
func testFaultAlterTable(t *testing.T, e *faultEnv) {
	recv := &testReceiver{}
	hs := httptest.NewServer(recv)
	t.Cleanup(hs.Close)
	e.config(orderRule("sink") + fmt.Sprintf(`
webhooks:
  sink:
    url: %s/orders
`, hs.URL))
	e.insert(1, 20)
	if _, err := e.db.Exec("ALTER TABLE orders ADD COLUMN note VARCHAR(20) NOT NULL DEFAULT 'none' AFTER id"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.Exec("INSERT INTO orders (id, note, amount) VALUES (21, 'n21', 21.00), (22, 'n22', 22.00)"); err != nil {
		t.Fatal(err)
	}
	e.run() // rowhook starts behind the ALTER
	waitFor(t, 30*time.Second, "22 inserts delivered", func() bool { return recv.distinctVersions() == 22 })
	if _, err := e.db.Exec("ALTER TABLE orders ADD COLUMN extra INT NOT NULL DEFAULT 7"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.Exec("UPDATE orders SET version = 2 WHERE id IN (1, 21)"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "2 updates delivered", func() bool { return recv.distinctVersions() == 24 })
	e.stopAndCheckState()

	keys := func(m any) []string {
		row, _ := m.(map[string]any)
		var ks []string
		for k := range row {
			ks = append(ks, k)
		}
		slices.Sort(ks)
		return ks
	}
	recv.mu.Lock()
	defer recv.mu.Unlock()
	for _, tc := range []struct {
		id, version int64
		image       string
		keys        []string
		values      map[string]any
	}{
		{1, 1, "after", []string{"amount", "id", "version"}, map[string]any{"id": 1.0, "amount": "1.00"}},
		{20, 1, "after", []string{"amount", "id", "version"}, map[string]any{"id": 20.0, "amount": "20.00"}},
		{21, 1, "after", []string{"amount", "id", "note", "version"}, map[string]any{"note": "n21", "amount": "21.00"}},
		{1, 2, "before", []string{"amount", "extra", "id", "note", "version"}, map[string]any{"note": "none", "extra": 7.0, "version": 1.0}},
		{1, 2, "after", []string{"amount", "extra", "id", "note", "version"}, map[string]any{"note": "none", "extra": 7.0, "amount": "1.00"}},
		{21, 2, "after", []string{"amount", "extra", "id", "note", "version"}, map[string]any{"note": "n21", "extra": 7.0}},
	} {
		body := recv.bodies[[2]int64{tc.id, tc.version}]
		img, _ := body[tc.image].(map[string]any)
		if got := keys(img); !slices.Equal(got, tc.keys) {
			t.Errorf("row %d version %d %s has columns %v, want %v", tc.id, tc.version, tc.image, got, tc.keys)
		}
		for k, want := range tc.values {
			if img[k] != want {
				t.Errorf("row %d version %d %s.%s = %v (%T), want %v", tc.id, tc.version, tc.image, k, img[k], img[k], want)
			}
		}
	}
}
