package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rowhook/rowhook/dispatch"
	"github.com/rowhook/rowhook/internal/mariadbtest"
	"github.com/rowhook/rowhook/internal/pipeline"
)

// countReceiver is a webhook receiver that counts its requests.
func countReceiver(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(hs.Close)
	return hs, &n
}

// dealsConfig is a config on schema.deals with source.start left to its
// default (current), state in state.db beside the config.
func dealsConfig(s *mariadbtest.Server, schema, listen, url string) string {
	return fmt.Sprintf(`
source:
  dsn: %s
  include: ['%s.*']
  heartbeat: 1s
  max_backoff: 500ms
http:
  listen: %s
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
    retry: { max_attempts: 20, initial_interval: 50ms, max_interval: 500ms }
`, s.URL(), schema, listen, schema, url)
}

// A first start with no state and start: current, stopped while idle
// (SIGTERM or SIGKILL) once it said ready: a row written while it is down
// is delivered by the next start. The first start stored where it began;
// without that, the next start began at the new current position and the
// row was lost.
func TestRun_FirstStartKeepsItsStartingPoint(t *testing.T) {
	bin := buildRowhook(t)
	s := mariadbtest.New(t, mariadbtest.Options{})
	for _, stop := range []string{"SIGTERM", "SIGKILL"} {
		t.Run(stop, func(t *testing.T) {
			schema, db := s.NewSchema(t)
			if _, err := db.Exec("CREATE TABLE deals (id INT PRIMARY KEY, name VARCHAR(40))"); err != nil {
				t.Fatal(err)
			}
			hs, got := countReceiver(t)
			dir := t.TempDir()
			listen := freeAddr(t)
			cfgPath := writeConfig(t, dir, dealsConfig(s, schema, listen, hs.URL))
			logs := &syncWriter{}
			proc := startRowhook(t, bin, cfgPath, logs)
			t.Cleanup(func() {
				if proc.running() {
					proc.kill()
				}
			})
			waitReady(t, listen)
			if stop == "SIGTERM" {
				if err := proc.stop(); err != nil {
					t.Fatalf("stop: %v\n%s", err, logs.String())
				}
			} else {
				proc.kill()
			}
			s.Exec(t, "INSERT INTO "+schema+".deals VALUES (1, 'written while rowhook was down')")

			// rowhook position shows the stored start, not "none".
			if out, errOut, code := runCommand(t, "position", "--config", cfgPath); code != 0 || strings.Contains(out, "checkpoint: none") {
				t.Errorf("position after the first start: exit %d\n%s%s", code, out, errOut)
			}
			proc = startRowhook(t, bin, cfgPath, logs)
			waitFor(t, 30*time.Second, "the row written while rowhook was down delivered", func() bool { return got.Load() >= 1 })
			if err := proc.stop(); err != nil {
				t.Errorf("stop: %v\n%s", err, logs.String())
			}
			if n := got.Load(); n != 1 {
				t.Errorf("receiver got %d requests, want 1", n)
			}
		})
	}
}

// Only a missing state file is a fresh start. An empty file (what `>
// state.db` or an interrupted copy leaves), a SQLite file without
// rowhook's tables and a file that is no SQLite database are refused by
// run and check with an error naming the file and `rowhook position
// --set`; that recovery works: it stores a position, and run starts.
func TestRun_RefusesStateWithoutRowhookState(t *testing.T) {
	s := mariadbtest.New(t, mariadbtest.Options{})
	for _, tt := range []struct {
		name string
		make func(t *testing.T, path string)
	}{
		{"empty file", func(t *testing.T, path string) {
			if err := os.WriteFile(path, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"no rowhook tables", func(t *testing.T, path string) {
			db, err := sql.Open("sqlite", "file:"+path)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.Exec("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)"); err != nil {
				t.Fatal(err)
			}
		}},
		{"not a database", func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte("this is not a SQLite file, it is a half-copied text\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			schema, db := s.NewSchema(t)
			if _, err := db.Exec("CREATE TABLE deals (id INT PRIMARY KEY, name VARCHAR(40))"); err != nil {
				t.Fatal(err)
			}
			hs, got := countReceiver(t)
			dir := t.TempDir()
			cfgPath := writeConfig(t, dir, dealsConfig(s, schema, "127.0.0.1:0", hs.URL))
			cfg, _, err := pipeline.Load(context.Background(), cfgPath)
			if err != nil {
				t.Fatal(err)
			}
			statePath := filepath.Join(dir, "state.db")
			tt.make(t, statePath)
			before, _ := os.ReadFile(statePath)

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			_, err = startPipeline(ctx, cfg, dir, slog.New(slog.NewTextHandler(tLogWriter{t}, nil)))
			if !errors.Is(err, dispatch.ErrNoState) || !strings.Contains(err.Error(), statePath) || !strings.Contains(err.Error(), "rowhook position --config") || !strings.Contains(err.Error(), "--set") {
				t.Fatalf("run on the state file: %v; want a refusal naming %s and rowhook position --set", err, statePath)
			}
			if after, _ := os.ReadFile(statePath); string(after) != string(before) {
				t.Errorf("the refused state file was changed")
			}
			_, errOut, code := runCommand(t, "check", "--config", cfgPath)
			if code != 1 || !strings.Contains(errOut, statePath) || !strings.Contains(errOut, "rowhook position --config") {
				t.Errorf("check: exit %d, stderr:\n%s", code, errOut)
			}
			if _, errOut, code := runCommand(t, "position", "--config", cfgPath); code != 1 || !strings.Contains(errOut, statePath) {
				t.Errorf("position: exit %d, stderr:\n%s", code, errOut)
			}
			if tt.name == "not a database" {
				return // position --set cannot repair it: the operator moves it away
			}

			// The recovery the error names.
			out, errOut, code := runCommand(t, "position", "--config", cfgPath, "--set", "current")
			if code != 0 {
				t.Fatalf("position --set current: exit %d\n%s%s", code, out, errOut)
			}
			s.Exec(t, "INSERT INTO "+schema+".deals VALUES (1, 'after the recovery')")
			p, err := startPipeline(ctx, cfg, dir, slog.New(slog.NewTextHandler(tLogWriter{t}, nil)))
			if err != nil {
				t.Fatalf("run after position --set: %v", err)
			}
			waitFor(t, 30*time.Second, "the row after the recovery delivered", func() bool { return got.Load() >= 1 })
			cancel()
			if err := p.Wait(); err != nil {
				t.Error(err)
			}
		})
	}
}

// After a purge of binlogs whose transactions the checkpoint already holds,
// rowhook resumes by GTID: rowhook position says so (exit 0, no advice to
// --set, which would skip events), and run does resume there.
func TestPosition_ResumableAfterHarmlessPurge(t *testing.T) {
	s := mariadbtest.New(t, mariadbtest.Options{})
	schema, db := s.NewSchema(t)
	if _, err := db.Exec("CREATE TABLE deals (id INT PRIMARY KEY, name VARCHAR(40))"); err != nil {
		t.Fatal(err)
	}
	hs, got := countReceiver(t)
	dir := t.TempDir()
	cfgPath := writeConfig(t, dir, dealsConfig(s, schema, "127.0.0.1:0", hs.URL))
	cfg, _, err := pipeline.Load(context.Background(), cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	runUntil := func(n int64) {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		p, err := startPipeline(ctx, cfg, dir, slog.New(slog.NewTextHandler(tLogWriter{t}, nil)))
		if err != nil {
			t.Fatal(err)
		}
		waitReady(t, p.Addr())
		waitFor(t, 30*time.Second, fmt.Sprintf("%d deliveries", n), func() bool { return got.Load() >= n })
		cancel()
		if err := p.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	s.Exec(t, "FLUSH BINARY LOGS") // the checkpoint's file is one of its own
	runUntil(0)                    // the first start stores its position
	s.Exec(t, "INSERT INTO "+schema+".deals VALUES (1, 'one')")
	runUntil(1)

	// Down: the binlog files are rotated and purged, nothing written since
	// the checkpoint: the newest file starts with a GTID list holding it.
	s.Exec(t, "FLUSH BINARY LOGS")
	var cur string
	if err := s.DB().QueryRow("SHOW MASTER STATUS").Scan(&cur, new(int64), new(string), new(string)); err != nil {
		t.Fatal(err)
	}
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
	out, errOut, code := runCommand(t, "position", "--config", cfgPath)
	if code != 0 || !strings.Contains(out, "resumable") || strings.Contains(out, "NOT resumable") || strings.Contains(out+errOut, "--set") {
		t.Fatalf("position after a purge that loses nothing: exit %d\n%s%s", code, out, errOut)
	}
	s.Exec(t, "INSERT INTO "+schema+".deals VALUES (2, 'two')")
	runUntil(2)
	if n := got.Load(); n != 2 {
		t.Errorf("receiver got %d deliveries, want 2", n)
	}
}

// rowhook check runs rowhook run's start-up inspection: it fails (exit 1,
// naming the setting) on everything run refuses, and says what --offline
// skipped.
func TestCheck_FailsOnWhatRunRefuses(t *testing.T) {
	s := mariadbtest.New(t, mariadbtest.Options{})
	schema, db := s.NewSchema(t)
	if _, err := db.Exec("CREATE TABLE deals (id INT PRIMARY KEY, name VARCHAR(40), erp_id VARCHAR(40))"); err != nil {
		t.Fatal(err)
	}
	user := "rh_" + schema[len(schema)-8:]
	s.Exec(t, "CREATE USER '"+user+"'@'%' IDENTIFIED BY 'right-pw'")
	s.Exec(t, "GRANT REPLICATION SLAVE, BINLOG MONITOR, SELECT ON *.* TO '"+user+"'@'%'")
	// The writeback user may update the CRM but create no table there.
	s.Exec(t, "CREATE USER 'wb_"+user+"'@'%' IDENTIFIED BY 'wb-pw'")
	s.Exec(t, "GRANT SELECT, UPDATE ON `"+schema+"`.* TO 'wb_"+user+"'@'%'")
	hs, _ := countReceiver(t)
	base := dealsConfig(s, schema, "127.0.0.1:0", hs.URL)
	base = strings.Replace(base, s.URL(), fmt.Sprintf("mysql://%s:right-pw@127.0.0.1:%d/", user, s.Port), 1)
	writeback := fmt.Sprintf(`    writeback:
      table: %s.deals
      key: { id: 'row.id' }
      set: { erp_id: 'response.json.id' }
writeback:
  dsn: mysql://wb_%s:wb-pw@127.0.0.1:%d/%s
  mode: marker
  create_marker: true
`, schema, user, s.Port, schema)
	withWriteback := strings.Replace(base, "    webhooks: [recv]\n", "    webhooks: [recv]\n"+writeback, 1)

	check := func(t *testing.T, cfg string, args ...string) (string, string, int, string) {
		t.Helper()
		dir := t.TempDir()
		path := writeConfig(t, dir, cfg)
		out, errOut, code := runCommand(t, append([]string{"check", "--config", path}, args...)...)
		if strings.Contains(out+errOut, "right-pw") || strings.Contains(out+errOut, "wb-pw") || strings.Contains(out+errOut, "wrong-pw") {
			t.Errorf("a password reached check's output:\n%s%s", out, errOut)
		}
		return out, errOut, code, path
	}
	if out, errOut, code, _ := check(t, base); code != 0 || !strings.Contains(out, "binlog settings and grants") {
		t.Errorf("valid config: exit %d\n%s%s", code, out, errOut)
	}
	// run refuses each of these at start; check must too.
	for _, tt := range []struct {
		name  string
		cfg   string
		setup string // run as root before, undone by undo
		undo  string
		want  []string
	}{
		{name: "wrong source password", cfg: strings.Replace(base, "right-pw", "wrong-pw", 1),
			want: []string{"source.dsn", "Access denied"}},
		{name: "unreachable source", cfg: strings.Replace(base, fmt.Sprintf("127.0.0.1:%d/", s.Port), "127.0.0.1:1/", 1),
			want: []string{"source.dsn", "127.0.0.1:1"}},
		{name: "binlog_format STATEMENT", cfg: base, setup: "SET GLOBAL binlog_format = STATEMENT", undo: "SET GLOBAL binlog_format = ROW",
			want: []string{"source.dsn", "binlog_format is STATEMENT"}},
		{name: "binlog_row_metadata MINIMAL", cfg: base, setup: "SET GLOBAL binlog_row_metadata = MINIMAL", undo: "SET GLOBAL binlog_row_metadata = FULL",
			want: []string{"source.dsn", "binlog_row_metadata is MINIMAL"}},
		{name: "missing state directory", cfg: strings.Replace(base, "path: state.db", "path: no-such-dir/state.db", 1),
			want: []string{"state.path", "no-such-dir", "does not exist"}},
		{name: "marker table not creatable", cfg: withWriteback,
			want: []string{"rowhook_writeback_marker", "cannot create", "CREATE TABLE"}},
		{name: "rule table outside include", cfg: strings.Replace(base, "include: ['"+schema+".*']", "include: ['other.*']", 1),
			want: []string{"rules[0].table", schema + ".deals", "source.include", "never fire"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.setup != "" {
				s.Exec(t, tt.setup)
				t.Cleanup(func() { s.Exec(t, tt.undo) })
			}
			out, errOut, code, path := check(t, tt.cfg)
			if code != 1 {
				t.Fatalf("exit %d, want 1\n%s%s", code, out, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
			// And run does refuse it.
			cfg, _, err := pipeline.Load(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if p, err := startPipeline(ctx, cfg, filepath.Dir(path), slog.New(slog.DiscardHandler)); err == nil {
				cancel()
				p.Wait()
				t.Errorf("run started on a config check refuses")
			}
		})
	}
	// --offline connects to nothing, says so, and still refuses what needs
	// no server.
	out, errOut, code, _ := check(t, strings.Replace(base, "right-pw", "wrong-pw", 1), "--offline")
	if code != 0 || !strings.Contains(out, "offline (--offline)") || !strings.Contains(out, "not checked") {
		t.Errorf("--offline with a wrong password: exit %d\n%s%s", code, out, errOut)
	}
	if _, errOut, code, _ := check(t, strings.Replace(base, "include: ['"+schema+".*']", "include: ['other.*']", 1), "--offline"); code != 1 || !strings.Contains(errOut, "rules[0].table") {
		t.Errorf("--offline, rule table outside include: exit %d\n%s", code, errOut)
	}
	// ... but not the state directory: --offline checks a config away
	// from the host it runs on.
	if out, errOut, code, _ := check(t, strings.Replace(base, "path: state.db", "path: no-such-dir/state.db", 1), "--offline"); code != 0 || !strings.Contains(out, "state store and its directory were not checked") {
		t.Errorf("--offline, missing state directory: exit %d\n%s%s", code, out, errOut)
	}
	// With CREATE granted, the marker table passes (and is not created).
	s.Exec(t, "GRANT CREATE, INSERT ON `"+schema+"`.* TO 'wb_"+user+"'@'%'")
	if out, errOut, code, _ := check(t, withWriteback); code != 0 {
		t.Errorf("marker table creatable: exit %d\n%s%s", code, out, errOut)
	}
	var n int
	if err := s.DB().QueryRow("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = 'rowhook_writeback_marker'", schema).Scan(&n); err != nil || n != 0 {
		t.Errorf("check created the marker table (%d, %v)", n, err)
	}
}

// With binary logging off, check fails as run does.
func TestCheck_BinlogOff(t *testing.T) {
	s := mariadbtest.New(t, mariadbtest.Options{ExtraArgs: []string{"--skip-log-bin"}})
	schema, db := s.NewSchema(t)
	if _, err := db.Exec("CREATE TABLE deals (id INT PRIMARY KEY, name VARCHAR(40))"); err != nil {
		t.Fatal(err)
	}
	hs, _ := countReceiver(t)
	path := writeConfig(t, t.TempDir(), dealsConfig(s, schema, "127.0.0.1:0", hs.URL))
	out, errOut, code := runCommand(t, "check", "--config", path)
	if code != 1 || !strings.Contains(errOut, "binary logging is off") || !strings.Contains(errOut, "source.dsn") {
		t.Errorf("exit %d\n%s%s", code, out, errOut)
	}
}

// A wrong source password makes run name source.dsn, even when writeback
// (which also connects to the source, to check that it keeps annotations)
// is configured.
func TestRun_WrongSourcePasswordNamesSourceDSN(t *testing.T) {
	s := mariadbtest.New(t, mariadbtest.Options{})
	schema, db := s.NewSchema(t)
	if _, err := db.Exec("CREATE TABLE deals (id INT PRIMARY KEY, name VARCHAR(40), erp_id VARCHAR(40))"); err != nil {
		t.Fatal(err)
	}
	s.Exec(t, "CREATE USER 'rh_src'@'%' IDENTIFIED BY 'right-pw'")
	s.Exec(t, "GRANT REPLICATION SLAVE, BINLOG MONITOR, SELECT ON *.* TO 'rh_src'@'%'")
	hs, _ := countReceiver(t)
	cfgText := dealsConfig(s, schema, "127.0.0.1:0", hs.URL)
	cfgText = strings.Replace(cfgText, s.URL(), fmt.Sprintf("mysql://rh_src:wrong-pw@127.0.0.1:%d/", s.Port), 1)
	cfgText = strings.Replace(cfgText, "    webhooks: [recv]\n", fmt.Sprintf(`    webhooks: [recv]
    writeback:
      table: %s.deals
      key: { id: 'row.id' }
      set: { erp_id: 'response.json.id' }
writeback:
  dsn: mysql://root@127.0.0.1:%d/%s
`, schema, s.Port, schema), 1)
	dir := t.TempDir()
	cfg, _, err := pipeline.Load(context.Background(), writeConfig(t, dir, cfgText))
	if err != nil {
		t.Fatal(err)
	}
	_, err = startPipeline(context.Background(), cfg, dir, slog.New(slog.DiscardHandler))
	if err == nil {
		t.Fatal("run started with a wrong source password")
	}
	msg := err.Error()
	if !strings.Contains(msg, "source.dsn") || strings.Contains(msg, "primary") || strings.Contains(msg, "wrong-pw") {
		t.Errorf("run with a wrong source password: %v; want an error naming source.dsn (not the primary, not the password)", err)
	}
}

// The MySQL state store: a new state schema is a first start; after a run,
// a state schema that lost rowhook_checkpoint is refused by check and run
// (naming the table and `rowhook position --set`), and position --set
// repairs it. check also refuses, as run does, a read_only state server and
// a state server that is the source.
func TestRun_MySQLStateLostItsTables(t *testing.T) {
	s := mariadbtest.New(t, mariadbtest.Options{})
	st := mariadbtest.New(t, mariadbtest.Options{ServerID: 7})
	schema, db := s.NewSchema(t)
	if _, err := db.Exec("CREATE TABLE deals (id INT PRIMARY KEY, name VARCHAR(40))"); err != nil {
		t.Fatal(err)
	}
	stateSchema, stateDB := st.NewSchema(t)
	hs, got := countReceiver(t)
	stateCfg := fmt.Sprintf("state:\n  driver: mysql\n  dsn: mysql://root@127.0.0.1:%d/%s\n", st.Port, stateSchema)
	cfgText := strings.Replace(dealsConfig(s, schema, "127.0.0.1:0", hs.URL), "state:\n  path: state.db\n", stateCfg, 1)
	dir := t.TempDir()
	cfgPath := writeConfig(t, dir, cfgText)
	cfg, _, err := pipeline.Load(context.Background(), cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := runCommand(t, "check", "--config", cfgPath); code != 0 || !strings.Contains(out, "no rowhook tables yet") {
		t.Fatalf("check on a new state schema: exit %d\n%s%s", code, out, errOut)
	}
	run := func(until func() bool) error {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		p, err := startPipeline(ctx, cfg, dir, slog.New(slog.NewTextHandler(tLogWriter{t}, nil)))
		if err != nil {
			return err
		}
		waitReady(t, p.Addr())
		if until != nil {
			waitFor(t, 30*time.Second, "the row after the repair delivered", until)
		}
		cancel()
		return p.Wait()
	}
	if err := run(nil); err != nil {
		t.Fatalf("first start on a new state schema: %v", err)
	}
	if _, err := stateDB.Exec("DROP TABLE rowhook_checkpoint"); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := runCommand(t, "check", "--config", cfgPath)
	if code != 1 || !strings.Contains(errOut, "rowhook_checkpoint") || !strings.Contains(errOut, stateSchema) || !strings.Contains(errOut, "rowhook position --config") {
		t.Errorf("check with rowhook_checkpoint dropped: exit %d\n%s", code, errOut)
	}
	if err := run(nil); !errors.Is(err, dispatch.ErrNoState) || !strings.Contains(err.Error(), "rowhook position --config") {
		t.Fatalf("run with rowhook_checkpoint dropped: %v, want a refusal naming rowhook position --set", err)
	}
	if out, errOut, code := runCommand(t, "position", "--config", cfgPath, "--set", "current"); code != 0 {
		t.Fatalf("position --set current: exit %d\n%s%s", code, out, errOut)
	}
	s.Exec(t, "INSERT INTO "+schema+".deals VALUES (1, 'after the repair')")
	if err := run(func() bool { return got.Load() == 1 }); err != nil {
		t.Fatalf("run after position --set: %v", err)
	}
	if _, errOut, code := runCommand(t, "check", "--config", cfgPath); code != 0 {
		t.Errorf("check after the repair: exit %d\n%s", code, errOut)
	}

	// A read_only state server, and the source itself as state server.
	st.Exec(t, "SET GLOBAL read_only = 1")
	_, errOut, code = runCommand(t, "check", "--config", cfgPath)
	st.Exec(t, "SET GLOBAL read_only = 0")
	if code != 1 || !strings.Contains(errOut, "read_only") {
		t.Errorf("check with a read_only state server: exit %d\n%s", code, errOut)
	}
	s.Exec(t, "CREATE DATABASE IF NOT EXISTS "+schema+"_state")
	onSource := writeConfig(t, t.TempDir(), strings.Replace(cfgText, fmt.Sprintf("127.0.0.1:%d/%s\n", st.Port, stateSchema), fmt.Sprintf("127.0.0.1:%d/%s_state\n", s.Port, schema), 1))
	if _, errOut, code := runCommand(t, "check", "--config", onSource); code != 1 || !strings.Contains(errOut, "is the source rowhook reads") {
		t.Errorf("check with the state on the source: exit %d\n%s", code, errOut)
	}
}
