package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rowhook/rowhook/internal/mariadbtest"
	"github.com/rowhook/rowhook/internal/pipeline"
	"github.com/rowhook/rowhook/writeback"
)

// loopERP answers every delivery with a new ERP id, so each writeback
// changes the row: a rule that fires on its own writeback would loop.
type loopERP struct {
	calls atomic.Int64
	srv   *httptest.Server
	// hold, when set, receives each request's number and releases the
	// answer when the test sends on it.
	hold chan int64
}

func newLoopERP(t *testing.T) *loopERP {
	e := &loopERP{}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := e.calls.Add(1)
		if e.hold != nil {
			e.hold <- n
			<-e.hold
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id": "ERP-%d"}`, n)
	}))
	t.Cleanup(e.srv.Close)
	return e
}

// loopConfig reads source, writes back on primary into schema.deals, with
// a rule that fires on insert and update of the row it writes back to.
func loopConfig(source, primary *mariadbtest.Server, schema, start, erpURL, mode string) string {
	return fmt.Sprintf(`
source:
  dsn: %s
  include: ['%s.deals']
  start: 'gtid:%s'
  heartbeat: 1s
  max_backoff: 1s
http:
  listen: 127.0.0.1:0
state:
  path: state.db
rules:
  - name: deal
    table: %s.deals
    on: [insert, update]
    event: RowChanged
    webhooks: [erp]
    writeback:
      table: %s.deals
      key: { id: 'row.id' }
      set: { erp_ref: 'response.json.id', amount: 'row.amount' }
webhooks:
  erp:
    url: %s
    retry: { max_attempts: 3, initial_interval: 100ms }
writeback:
  dsn: mysql://root@127.0.0.1:%d/%s
  mode: %s
`, source.URL(), schema, start, schema, schema, erpURL, primary.Port, schema, mode)
}

// newLoopPair starts a primary + replica with a fresh schema holding the
// loop-prone deals table, replicated, and returns the replica's binlog
// position to start reading at.
func newLoopPair(t *testing.T) (pair *mariadbtest.Pair, schema string, db *sql.DB, start string) {
	t.Helper()
	pair = mariadbtest.NewPair(t, mariadbtest.Options{})
	schema, db = pair.Primary.NewSchema(t)
	if _, err := db.Exec("CREATE TABLE deals (id INT PRIMARY KEY, name VARCHAR(80), amount DECIMAL(10,2), erp_ref VARCHAR(20))"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := pair.WaitSync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := pair.Replica.DB().QueryRow("SELECT @@gtid_binlog_pos").Scan(&start); err != nil {
		t.Fatal(err)
	}
	return pair, schema, db, start
}

// assertQuiet waits until the reader has read everything source has
// written, gives a wrongly fired delivery time to arrive, and checks that
// the ERP got want calls.
func assertQuiet(t *testing.T, p *pipeline.Pipeline, source *mariadbtest.Server, erp *loopERP, want int64, logs *syncWriter) {
	t.Helper()
	pos := func() string {
		var s string
		if err := source.DB().QueryRow("SELECT @@gtid_binlog_pos").Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	deadline := time.Now().Add(20 * time.Second)
	end := pos()
	for p.Reader().Position().GTIDSet != end {
		if time.Now().After(deadline) {
			t.Fatalf("the reader is at %s, not %s, after 20s\n%s", p.Reader().Position().GTIDSet, end, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
		end = pos()
	}
	time.Sleep(1500 * time.Millisecond)
	if n := erp.calls.Load(); n != want {
		t.Fatalf("ERP got %d calls, want %d: rowhook fired on its own writeback\n%s", n, want, logs.String())
	}
}

// Annotations turned off on the server rowhook reads and writes (a restart
// with binlog_annotate_row_events=OFF) while rowhook runs: one insert is
// still one delivery. The writeback user may turn annotations on for its
// sessions and does, so both modes carry on annotating; the user's insert
// comes without annotation, which the primary's default now explains.
func TestRun_SelfTrigger_annotationsOffOnRestart(t *testing.T) {
	for _, mode := range []writeback.Mode{writeback.ModeAuto, writeback.ModeAnnotate} {
		t.Run(string(mode), func(t *testing.T) {
			s := mariadbtest.New(t, mariadbtest.Options{})
			schema, db := s.NewSchema(t)
			if _, err := db.Exec("CREATE TABLE deals (id INT PRIMARY KEY, name VARCHAR(80), amount DECIMAL(10,2), erp_ref VARCHAR(20))"); err != nil {
				t.Fatal(err)
			}
			erp := newLoopERP(t)
			var start string
			s.DB().QueryRow("SELECT @@gtid_binlog_pos").Scan(&start)
			p, logs := startTestPipeline(t, writeConfig(t, t.TempDir(), loopConfig(s, s, schema, start, erp.srv.URL, string(mode))))
			if p.Writeback().Mode() != writeback.ModeAnnotate {
				t.Fatalf("mode %s at start, want annotate (the server logs annotations)", p.Writeback().Mode())
			}

			if err := s.RestartWith("--binlog-annotate-row-events=OFF"); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 30*time.Second, "the reader reconnecting", p.Reader().Connected)
			if _, err := s.DB().Exec("INSERT INTO " + schema + ".deals (id, name, amount) VALUES (1, 'Acme', 12.50)"); err != nil {
				t.Fatal(err)
			}
			waitValue(t, s, "SELECT COALESCE(erp_ref, '') FROM "+schema+".deals WHERE id = 1", "ERP-1")
			assertQuiet(t, p, s, erp, 1, logs)

			// A user's later change still fires, once.
			if _, err := s.DB().Exec("UPDATE " + schema + ".deals SET name = 'Acme Ltd' WHERE id = 1"); err != nil {
				t.Fatal(err)
			}
			waitValue(t, s, "SELECT COALESCE(erp_ref, '') FROM "+schema+".deals WHERE id = 1", "ERP-2")
			assertQuiet(t, p, s, erp, 2, logs)

			note := "the primary's default no longer logs annotations; turned them on for each new writeback connection"
			if p.Writeback().Mode() != writeback.ModeAnnotate || !strings.Contains(logs.String(), note) {
				t.Errorf("mode %s, want annotate with the log line %q\n%s", p.Writeback().Mode(), note, logs.String())
			}
		})
	}
}

// The replica rowhook reads is restarted with
// replicate_annotate_row_events=OFF while rowhook runs: in mode auto rowhook
// switches to the marker table, and one insert is one delivery.
func TestRun_SelfTrigger_replicaDropsAnnotations(t *testing.T) {
	pair, schema, db, start := newLoopPair(t)
	erp := newLoopERP(t)
	p, logs := startTestPipeline(t, writeConfig(t, t.TempDir(), loopConfig(pair.Replica, pair.Primary, schema, start, erp.srv.URL, "auto")))
	if p.Writeback().Mode() != writeback.ModeAnnotate {
		t.Fatalf("mode %s at start, want annotate (the replica keeps annotations)", p.Writeback().Mode())
	}

	if err := pair.Replica.RestartWith("--replicate-annotate-row-events=OFF"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the reader reconnecting", p.Reader().Connected)
	if _, err := db.Exec("INSERT INTO deals (id, name, amount) VALUES (1, 'Acme', 12.50)"); err != nil {
		t.Fatal(err)
	}
	waitValue(t, pair.Primary, "SELECT COALESCE(erp_ref, '') FROM "+schema+".deals WHERE id = 1", "ERP-1")
	ctx2, cancel2 := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel2()
	if err := pair.WaitSync(ctx2); err != nil {
		t.Fatal(err)
	}
	assertQuiet(t, p, pair.Replica, erp, 1, logs)
	if p.Writeback().Mode() != writeback.ModeMarker {
		t.Errorf("mode %s after the replica dropped annotations, want marker", p.Writeback().Mode())
	}
	if !strings.Contains(logs.String(), "replicate_annotate_row_events is OFF") {
		t.Errorf("the switch is not logged with its reason:\n%s", logs.String())
	}
}

// A writeback that reaches the replica's binlog after the replica lost its
// annotations but was written before rowhook noticed (the replica's
// replication was stopped while the ERP answered) carries neither
// annotation nor marker: the recent-writes guard alone recognises it.
func TestRun_SelfTrigger_writebackBeforeTheSwitch(t *testing.T) {
	pair, schema, db, start := newLoopPair(t)
	sync := func() {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := pair.WaitSync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	erp := newLoopERP(t)
	erp.hold = make(chan int64)
	p, logs := startTestPipeline(t, writeConfig(t, t.TempDir(), loopConfig(pair.Replica, pair.Primary, schema, start, erp.srv.URL, "auto")))

	if _, err := db.Exec("INSERT INTO deals (id, name, amount) VALUES (1, 'Acme', 12.50)"); err != nil {
		t.Fatal(err)
	}
	<-erp.hold // the ERP has the delivery
	pair.Replica.Exec(t, "STOP SLAVE")
	erp.hold <- 0 // answer it: the writeback goes to the primary only
	waitValue(t, pair.Primary, "SELECT COALESCE(erp_ref, '') FROM "+schema+".deals WHERE id = 1", "ERP-1")
	if p.Writeback().Mode() != writeback.ModeAnnotate {
		t.Fatalf("mode %s before the replica restarted", p.Writeback().Mode())
	}
	// Replication resumes with the restart, now dropping annotations.
	if err := pair.Replica.RestartWith("--replicate-annotate-row-events=OFF"); err != nil {
		t.Fatal(err)
	}
	go func() {
		for range erp.hold { // answer any further (wrong) delivery at once
			erp.hold <- 0
		}
	}()
	t.Cleanup(func() { close(erp.hold) })
	sync()
	assertQuiet(t, p, pair.Replica, erp, 1, logs)
	if p.Writeback().Mode() != writeback.ModeMarker {
		t.Errorf("mode %s, want marker", p.Writeback().Mode())
	}
	want := fmt.Sprintf(`rowhook_writeback_own_changes_skipped_total{table="%s.deals"} 1`, schema)
	if m := httpGet(t, "http://"+p.Addr()+"/metrics"); !strings.Contains(m, want) {
		t.Errorf("/metrics lacks %s", want)
	}
	if n := strings.Count(logs.String(), "repeating rowhook's own recent writeback"); n != 1 {
		t.Errorf("the guard's warning is logged %d times, want once", n)
	}
}

// In mode annotate, a replica restarted without annotations stops rowhook
// with the setting to change; nothing is delivered twice.
func TestRun_SelfTrigger_annotateModeStops(t *testing.T) {
	pair, schema, _, start := newLoopPair(t)
	erp := newLoopERP(t)
	cfgPath := writeConfig(t, t.TempDir(), loopConfig(pair.Replica, pair.Primary, schema, start, erp.srv.URL, "annotate"))
	cfg, _, err := pipeline.Load(context.Background(), cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncWriter{}
	pctx, stop := context.WithCancel(context.Background())
	defer stop()
	p, err := startPipeline(pctx, cfg, filepath.Dir(cfgPath), slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	waitReady(t, p.Addr())

	if err := pair.Replica.RestartWith("--replicate-annotate-row-events=OFF"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(30 * time.Second):
		t.Fatalf("rowhook still runs without annotations in mode annotate\n%s", logs.String())
	}
	err = p.Wait()
	want := fmt.Sprintf("replica 127.0.0.1:%d: replicate_annotate_row_events is OFF (add replicate_annotate_row_events = ON to the replica's my.cnf and restart it)", pair.Replica.Port)
	if !errors.Is(err, writeback.ErrAnnotationsOff) || !strings.Contains(err.Error(), want) {
		t.Fatalf("pipeline ended with %v\nwant ErrAnnotationsOff and %q", err, want)
	}
	if n := erp.calls.Load(); n != 0 {
		t.Errorf("ERP got %d calls", n)
	}
}

// In mode annotate, a writeback connection that finds annotations off and
// may not turn them on (no BINLOG ADMIN) stops rowhook before it writes,
// with the setting to change: the default went off without a restart, so
// only the new writeback connection can tell.
func TestRun_SelfTrigger_annotateModeStopsOnWritebackConnection(t *testing.T) {
	s := mariadbtest.New(t, mariadbtest.Options{})
	schema, db := s.NewSchema(t)
	if _, err := db.Exec("CREATE TABLE deals (id INT PRIMARY KEY, name VARCHAR(80), amount DECIMAL(10,2), erp_ref VARCHAR(20))"); err != nil {
		t.Fatal(err)
	}
	s.Exec(t, "CREATE USER 'crm_wb'@'127.0.0.1' IDENTIFIED BY 'pw'")
	s.Exec(t, "GRANT SELECT, UPDATE ON `"+schema+"`.* TO 'crm_wb'@'127.0.0.1'")
	erp := newLoopERP(t)
	var start string
	s.DB().QueryRow("SELECT @@gtid_binlog_pos").Scan(&start)
	text := loopConfig(s, s, schema, start, erp.srv.URL, "annotate")
	text = strings.Replace(text, fmt.Sprintf("dsn: mysql://root@127.0.0.1:%d/%s", s.Port, schema), fmt.Sprintf("dsn: mysql://crm_wb:pw@127.0.0.1:%d/%s", s.Port, schema), 1)
	cfgPath := writeConfig(t, t.TempDir(), text)
	cfg, _, err := pipeline.Load(context.Background(), cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncWriter{}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	p, err := startPipeline(ctx, cfg, filepath.Dir(cfgPath), slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	waitReady(t, p.Addr())

	s.Exec(t, "SET GLOBAL binlog_annotate_row_events = OFF")
	rows, err := s.DB().Query("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = 'crm_wb'")
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		rows.Scan(&id)
		ids = append(ids, id)
	}
	rows.Close()
	for _, id := range ids {
		s.Exec(t, fmt.Sprintf("KILL %d", id))
	}
	if _, err := db.Exec("INSERT INTO deals (id, name, amount) VALUES (1, 'Acme', 12.50)"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(30 * time.Second):
		t.Fatalf("rowhook still runs with a writeback session that cannot log annotations\n%s", logs.String())
	}
	err = p.Wait()
	want := "binlog_annotate_row_events is OFF and the writeback user may not turn it on for its session"
	if !errors.Is(err, writeback.ErrAnnotationsOff) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "SET GLOBAL binlog_annotate_row_events = ON") {
		t.Fatalf("pipeline ended with %v\nwant ErrAnnotationsOff, %q and the fix", err, want)
	}
	var ref string
	db.QueryRow("SELECT COALESCE(erp_ref, '') FROM deals WHERE id = 1").Scan(&ref)
	if ref != "" || erp.calls.Load() != 1 {
		t.Errorf("erp_ref %q after %d ERP calls, want nothing written after the one delivery", ref, erp.calls.Load())
	}
}

// rowhook reads a replica of a replica; the replica in the middle drops
// annotations (replicate_annotate_row_events=OFF), which the start-up check
// of the server rowhook reads cannot see. The first transaction without
// annotation, while the primary's default logs them, switches mode auto to
// the marker table before its delivery can be written back: one insert, one
// delivery.
func TestRun_SelfTrigger_annotationsDroppedUpstream(t *testing.T) {
	pair := mariadbtest.NewPair(t, mariadbtest.Options{ExtraArgs: []string{"--replicate-annotate-row-events=OFF"}})
	t.Cleanup(pair.Stop)
	leaf := mariadbtest.New(t, mariadbtest.Options{ServerID: 3, Replica: true})
	t.Cleanup(func() { leaf.Exec(t, "STOP SLAVE"); leaf.Stop() })
	leaf.Exec(t, fmt.Sprintf("CHANGE MASTER TO MASTER_HOST='%s', MASTER_PORT=%d, MASTER_USER='root', MASTER_PASSWORD='', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1", pair.Replica.Host, pair.Replica.Port))
	leaf.Exec(t, "START SLAVE")
	schema, db := pair.Primary.NewSchema(t)
	if _, err := db.Exec("CREATE TABLE deals (id INT PRIMARY KEY, name VARCHAR(80), amount DECIMAL(10,2), erp_ref VARCHAR(20))"); err != nil {
		t.Fatal(err)
	}
	var pos string
	pair.Primary.DB().QueryRow("SELECT @@gtid_binlog_pos").Scan(&pos)
	var res int
	if err := leaf.DB().QueryRow("SELECT MASTER_GTID_WAIT(?, 30)", pos).Scan(&res); err != nil || res != 0 {
		t.Fatalf("leaf replica did not reach %s: %d %v", pos, res, err)
	}
	erp := newLoopERP(t)
	var start string
	leaf.DB().QueryRow("SELECT @@gtid_binlog_pos").Scan(&start)
	p, logs := startTestPipeline(t, writeConfig(t, t.TempDir(), loopConfig(leaf, pair.Primary, schema, start, erp.srv.URL, "auto")))
	if p.Writeback().Mode() != writeback.ModeAnnotate {
		t.Fatalf("mode %s at start, want annotate (the leaf keeps annotations)", p.Writeback().Mode())
	}

	if _, err := db.Exec("INSERT INTO deals (id, name, amount) VALUES (1, 'Acme', 12.50)"); err != nil {
		t.Fatal(err)
	}
	waitValue(t, pair.Primary, "SELECT COALESCE(erp_ref, '') FROM "+schema+".deals WHERE id = 1", "ERP-1")
	pair.Primary.DB().QueryRow("SELECT @@gtid_binlog_pos").Scan(&pos)
	if err := leaf.DB().QueryRow("SELECT MASTER_GTID_WAIT(?, 30)", pos).Scan(&res); err != nil || res != 0 {
		t.Fatalf("leaf replica did not reach %s: %d %v", pos, res, err)
	}
	assertQuiet(t, p, leaf, erp, 1, logs)
	if p.Writeback().Mode() != writeback.ModeMarker || !strings.Contains(logs.String(), "came without statement annotations although every setting checked is on") {
		t.Errorf("mode %s, want marker, switched for the unannotated transaction\n%s", p.Writeback().Mode(), logs.String())
	}
}
