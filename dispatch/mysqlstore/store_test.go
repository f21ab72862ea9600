package mysqlstore

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/rowhook/rowhook/dispatch"
	"github.com/rowhook/rowhook/dispatch/storetest"
	"github.com/rowhook/rowhook/internal/mariadbtest"
)

var srv *mariadbtest.Server

func TestMain(m *testing.M) {
	// TestStore_Kill's child commits to the parent's server.
	if dsn := os.Getenv("ROWHOOK_MYSQLSTORE_CHILD"); dsn != "" {
		os.Exit(storeChild(dsn))
	}
	os.Exit(mariadbtest.Main(m, &srv, mariadbtest.Options{}))
}

var ctx = context.Background()

// open opens a store on a fresh schema and returns it with the schema's name.
func open(t testing.TB) (*Store, string) {
	t.Helper()
	name, _ := srv.NewSchema(t)
	s, err := Open(ctx, srv.DSN(name), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, name
}

func TestStore_Conformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) dispatch.Store {
		s, _ := open(t)
		return s
	})
}

// TestStore_SharedCheckpoint is the HA case: an active and a standby
// rowhook open the same schema; what the active one commits is what the
// standby resumes from, and a replay by the standby inserts nothing twice.
func TestStore_SharedCheckpoint(t *testing.T) {
	active, name := open(t)
	standby, err := Open(ctx, fmt.Sprintf("mysql://root@%s:%d/%s", srv.Host, srv.Port, name), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer standby.Close()
	ds := []dispatch.NewDelivery{storetest.ND("tx1:0:r", "erp"), storetest.ND("tx2:0:r", "erp")}
	if n, err := active.Commit(ctx, storetest.CP(200), ds); err != nil || n != 2 {
		t.Fatalf("active commit: n=%d err=%v", n, err)
	}
	active.Close()
	cp, ok, err := standby.Checkpoint(ctx)
	if err != nil || !ok || cp.Pos != 200 || cp.GTIDSet != "0-1-200" {
		t.Fatalf("standby checkpoint = %+v ok=%v err=%v, want pos 200", cp, ok, err)
	}
	if n, err := standby.Commit(ctx, storetest.CP(200), ds); err != nil || n != 0 {
		t.Fatalf("standby replay: n=%d err=%v, want 0", n, err)
	}
	pending, err := standby.Pending(ctx, dispatch.PendingQuery{Webhook: "erp"})
	if err != nil || len(pending) != 2 {
		t.Fatalf("standby pending = %v (err %v)", storetest.IDs(pending), err)
	}
}

func TestOpen_DSN(t *testing.T) {
	name, _ := srv.NewSchema(t)
	srv.Exec(t, "CREATE USER 'rh_pw'@'127.0.0.1' IDENTIFIED BY 'S3cret-Pa55'")
	t.Cleanup(func() { srv.Exec(t, "DROP USER 'rh_pw'@'127.0.0.1'") })
	srv.Exec(t, "GRANT ALL ON `"+name+"`.* TO 'rh_pw'@'127.0.0.1'")
	srv.Exec(t, "CREATE USER 'rh_odd'@'127.0.0.1' IDENTIFIED BY 'S3cret:@/?&=x'")
	t.Cleanup(func() { srv.Exec(t, "DROP USER 'rh_odd'@'127.0.0.1'") })
	srv.Exec(t, "GRANT ALL ON `"+name+"`.* TO 'rh_odd'@'127.0.0.1'")
	addr := fmt.Sprintf("%s:%d", srv.Host, srv.Port)
	tests := []struct {
		name, dsn, wantErr string
	}{
		{"driver form", "rh_pw:S3cret-Pa55@tcp(" + addr + ")/" + name, ""},
		{"URL form", "mysql://rh_pw:S3cret-Pa55@" + addr + "/" + name, ""},
		{"URL with driver parameters", "mysql://rh_pw:S3cret-Pa55@" + addr + "/" + name + "?timeout=5s&tls=false&innodb_lock_wait_timeout=3", ""},
		{"URL with an odd password", "mysql://rh_odd:" + url.QueryEscape("S3cret:@/?&=x") + "@" + addr + "/" + name + "?timeout=5s", ""},
		{"driver form with parameters", "rh_pw:S3cret-Pa55@tcp(" + addr + ")/" + name + "?timeout=5s&tls=false&innodb_lock_wait_timeout=3", ""},
		{"wrong password", "rh_pw:S3cret-Pa55-wrong@tcp(" + addr + ")/" + name, "Access denied"},
		{"wrong password in a URL", "mysql://rh_pw:S3cret-Pa55-wrong@" + addr + "/" + name, "rh_pw@" + addr + "/" + name},
		{"no schema", "rh_pw:S3cret-Pa55@tcp(" + addr + ")/", "names no schema"},
		{"bad URL", "mysql://rh_pw:S3cret-Pa55@" + addr + "/a/b", "one database name"},
		{"bad scheme", "postgres://rh_pw:S3cret-Pa55@" + addr + "/x", "mysql://"},
		{"bad DSN", "rh_pw:S3cret-Pa55@tcp(" + addr, "bad DSN"},
		{"unknown schema", "rh_pw:S3cret-Pa55@tcp(" + addr + ")/nope_" + name, "nope_"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(ctx, tt.dsn, Options{})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				s.Close()
				return
			}
			if err == nil {
				s.Close()
				t.Fatalf("Open succeeded, want an error containing %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "S3cret") {
				t.Errorf("error shows the password: %q", err)
			}
		})
	}
}

// TestStore_LeastPrivilege runs the store as an account with only the
// grants docs/dispatch.md lists, and checks in the general log that every
// statement it sent carries the /* rowhook */ tag.
func TestStore_LeastPrivilege(t *testing.T) {
	name, _ := srv.NewSchema(t)
	srv.Exec(t, "CREATE USER 'rh_state'@'127.0.0.1' IDENTIFIED BY 'pw'")
	t.Cleanup(func() { srv.Exec(t, "DROP USER 'rh_state'@'127.0.0.1'") })
	srv.Exec(t, "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE ON `"+name+"`.* TO 'rh_state'@'127.0.0.1'")
	srv.Exec(t, "SET GLOBAL log_output = 'TABLE'")
	srv.Exec(t, "TRUNCATE mysql.general_log")
	srv.Exec(t, "SET GLOBAL general_log = 1")
	t.Cleanup(func() { srv.Exec(t, "SET GLOBAL general_log = 0") })

	s, err := Open(ctx, fmt.Sprintf("rh_state:pw@tcp(%s:%d)/%s", srv.Host, srv.Port, name), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	exercise(t, s)

	srv.Exec(t, "SET GLOBAL general_log = 0")
	rows, err := srv.DB().Query(`SELECT CONVERT(argument USING utf8mb4) FROM mysql.general_log
		WHERE user_host LIKE 'rh_state[rh_state]%' AND command_type = 'Query'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n, untagged := 0, 0
	for rows.Next() {
		var q string
		if err := rows.Scan(&q); err != nil {
			t.Fatal(err)
		}
		n++
		// The driver's own transaction statements cannot be tagged.
		if q == "START TRANSACTION" || q == "COMMIT" || q == "ROLLBACK" || strings.HasPrefix(q, "SET ") {
			untagged++
			continue
		}
		if !strings.HasPrefix(q, "/* rowhook */ ") {
			t.Errorf("untagged statement: %.120s", q)
		}
	}
	t.Logf("%d statements, %d of them the driver's own", n, untagged)
	if n < 20 {
		t.Errorf("general log has %d statements of the store, want every one (is the log on?)", n)
	}
}

// exercise calls every Store method once.
func exercise(t *testing.T, s *Store) {
	t.Helper()
	a, b := storetest.ND("a", "erp"), storetest.ND("b", "erp")
	b.Once = true
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err := s.Commit(ctx, storetest.CP(1), []dispatch.NewDelivery{a, b})
	must(err)
	_, _, err = s.Checkpoint(ctx)
	must(err)
	_, err = s.Pending(ctx, dispatch.PendingQuery{Webhook: "erp"})
	must(err)
	_, err = s.Pending(ctx, dispatch.PendingQuery{Webhook: "erp", DueBy: storetest.T0})
	must(err)
	_, _, err = s.NextDue(ctx, "erp", "", storetest.T0)
	must(err)
	must(s.Record(ctx, []dispatch.Result{{Attempt: dispatch.Attempt{DeliveryID: a.ID, N: 1, At: storetest.T0}, Status: dispatch.StatusOK,
		Attempts: 1, Writeback: &dispatch.Response{Status: 200}}}))
	_, err = s.Writebacks(ctx, 10)
	must(err)
	must(s.FinishWriteback(ctx, a.ID, dispatch.WritebackDone, "", storetest.T0))
	_, err = s.List(ctx, dispatch.Filter{Webhook: "erp", Status: dispatch.StatusOK})
	must(err)
	_, _, err = s.Get(ctx, a.ID)
	must(err)
	_, err = s.Redeliver(ctx, []string{a.ID}, dispatch.Filter{}, storetest.T0, "t")
	must(err)
	_, err = s.Redeliver(ctx, nil, dispatch.Filter{Webhook: "erp"}, storetest.T0, "t")
	must(err)
	_, err = s.Fail(ctx, "erp", "", "gone", storetest.T0)
	must(err)
	must(s.AddSubscription(ctx, dispatch.Subscription{ID: "sub_1", URL: "http://x/", Event: "E", CreatedAt: storetest.T0}))
	_, err = s.Subscriptions(ctx)
	must(err)
	must(s.DeleteSubscription(ctx, "sub_1"))
	must(s.SetWebhookDisabled(ctx, "erp", "410", storetest.T0))
	_, err = s.DisabledWebhooks(ctx)
	must(err)
	must(s.SetWebhookDisabled(ctx, "erp", "", storetest.T0))
	_, err = s.Stats(ctx)
	must(err)
	_, err = s.Prune(ctx, storetest.T0.Add(time.Hour))
	must(err)
}

// TestStore_LockWaitIsTransient holds the checkpoint row locked from
// another connection: the store's commit times out waiting (1205), and the
// error says so as a *TransientError; the commit left nothing behind and
// succeeds once the lock is gone.
func TestStore_LockWaitIsTransient(t *testing.T) {
	name, _ := srv.NewSchema(t)
	dsn := srv.DSN(name) + "&innodb_lock_wait_timeout=1"
	s, err := Open(ctx, dsn, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Commit(ctx, storetest.CP(1), nil); err != nil {
		t.Fatal(err)
	}
	conn, err := srv.DB().Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "SELECT * FROM `"+name+"`.rowhook_checkpoint FOR UPDATE"); err != nil {
		t.Fatal(err)
	}
	_, err = s.Commit(ctx, storetest.CP(2), []dispatch.NewDelivery{storetest.ND("a", "erp")})
	var te *TransientError
	if !errors.As(err, &te) || !strings.Contains(err.Error(), "1205") || !strings.HasPrefix(err.Error(), "commit: checkpoint: ") {
		t.Fatalf("commit under a held lock: %v, want a transient 1205 naming the checkpoint", err)
	}
	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Get(ctx, storetest.ND("a", "erp").ID); !errors.Is(err, dispatch.ErrNotFound) {
		t.Errorf("delivery of the timed-out commit: %v, want ErrNotFound", err)
	}
	if n, err := s.Commit(ctx, storetest.CP(2), []dispatch.NewDelivery{storetest.ND("a", "erp")}); err != nil || n != 1 {
		t.Fatalf("retry: n=%d err=%v", n, err)
	}
}

// TestStore_ServerRestart kills mariadbd under an open store: calls fail
// with a *TransientError while it is down, and the same store works again
// once it is back, with everything committed before the kill.
func TestStore_ServerRestart(t *testing.T) {
	s, _ := open(t)
	if _, err := s.Commit(ctx, storetest.CP(1), []dispatch.NewDelivery{storetest.ND("a", "erp")}); err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	restarted := false
	defer func() {
		if !restarted {
			if err := srv.Restart(); err != nil {
				t.Errorf("restart: %v", err)
			}
		}
	}()
	_, err := s.Commit(ctx, storetest.CP(2), []dispatch.NewDelivery{storetest.ND("b", "erp")})
	if !IsTransient(err) {
		t.Fatalf("commit with the server down: %v, want a transient error", err)
	}
	if _, _, err := s.Checkpoint(ctx); !IsTransient(err) {
		t.Errorf("read with the server down: %v, want a transient error", err)
	}
	restarted = true
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	cp, _, err := s.Checkpoint(ctx)
	if err != nil || cp.Pos != 1 {
		t.Fatalf("checkpoint after restart = %d (err %v), want 1", cp.Pos, err)
	}
	if n, err := s.Commit(ctx, storetest.CP(2), []dispatch.NewDelivery{storetest.ND("a", "erp"), storetest.ND("b", "erp")}); err != nil || n != 1 {
		t.Fatalf("commit after restart: n=%d err=%v, want 1", n, err)
	}
}

func TestOpen_SchemaVersion(t *testing.T) {
	name, db := srv.NewSchema(t)
	// Read-only on an empty schema: a clear error, no tables created.
	if _, err := Open(ctx, srv.DSN(name), Options{ReadOnly: true}); err == nil || !strings.Contains(err.Error(), "no rowhook state tables") {
		t.Errorf("read-only open of an empty schema: %v", err)
	}
	s, err := Open(ctx, srv.DSN(name), Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	// Opening again is a no-op migration.
	s, err = Open(ctx, srv.DSN(name), Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	var v int
	if err := db.QueryRow("SELECT MAX(version) FROM rowhook_schema_version").Scan(&v); err != nil || v != SchemaVersion {
		t.Fatalf("schema version %d (err %v), want %d", v, err, SchemaVersion)
	}
	if _, err := db.Exec("INSERT INTO rowhook_schema_version VALUES (?, 0)", SchemaVersion+1); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, srv.DSN(name), Options{}); err == nil || !strings.Contains(err.Error(), "newer than this rowhook") {
		t.Errorf("open of a newer schema: %v", err)
	}
}

// TestStore_TooLong checks strict mode: a value longer than its column
// fails the commit instead of being stored truncated.
func TestStore_TooLong(t *testing.T) {
	s, _ := open(t)
	d := storetest.ND("a", strings.Repeat("w", 300))
	_, err := s.Commit(ctx, storetest.CP(1), []dispatch.NewDelivery{d})
	if err == nil || !strings.Contains(err.Error(), "webhook") || IsTransient(err) {
		t.Fatalf("commit of a 300-character webhook name: %v, want a data-too-long error", err)
	}
}

// TestStore_Kill commits from a child process that is killed with SIGKILL
// at an arbitrary moment, then checks that the schema holds exactly the
// deliveries of the transactions up to its checkpoint, never more or less,
// and that replaying the next transactions inserts each delivery once.
func TestStore_Kill(t *testing.T) {
	s, name := open(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "ROWHOOK_MYSQLSTORE_CHILD="+srv.DSN(name))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	if _, err := stdout.Read(buf); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	// The server finishes a COMMIT the killed child had already sent: wait
	// until the child's sessions are gone, so the checkpoint and the
	// deliveries are read after the last transaction that will ever
	// commit, not across it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var busy int
		if err := srv.DB().QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = ? AND COMMAND <> 'Sleep'", name).Scan(&busy); err != nil {
			t.Fatal(err)
		}
		if busy == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the killed child's %d sessions on %s are still busy after 10s", busy, name)
		}
		time.Sleep(20 * time.Millisecond)
	}

	storetest.CheckAfterKill(t, s)
}

func storeChild(dsn string) int {
	s, err := Open(ctx, dsn, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	for i := 1; ; i++ {
		if _, err := s.Commit(ctx, storetest.CP(uint32(i)), storetest.KillTx(i)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 3
		}
		if i == 50 {
			fmt.Println("committing")
		}
	}
}

// TestStore_TwoWritersOnce has two stores on one schema (an active and a
// standby that overlap) commit once deliveries for the same records at the
// same time, each batch in opposite orders so that InnoDB deadlocks are
// likely: every record ends
// with the deliveries of exactly one event, and a deadlock comes back as a
// transient error that a retry cures.
func TestStore_TwoWritersOnce(t *testing.T) {
	a, name := open(t)
	b, err := Open(ctx, srv.DSN(name), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	const records, batch = 60, 6
	once := func(who string, k int) []dispatch.NewDelivery {
		var ds []dispatch.NewDelivery
		for _, wh := range []string{"erp", "crm"} {
			d := storetest.ND(fmt.Sprintf("%s%d", who, k), wh)
			d.Once, d.Key = true, fmt.Sprintf("crm.t:%d", k)
			ds = append(ds, d)
		}
		return ds
	}
	transient := make(chan int, 2)
	run := func(s *Store, who string, reverse bool) error {
		retries := 0
		defer func() { transient <- retries }()
		for start := 0; start < records; start += batch {
			var ds []dispatch.NewDelivery
			for j := 0; j < batch; j++ {
				k := start + j
				if reverse {
					k = start + batch - 1 - j
				}
				ds = append(ds, once(who, k)...)
			}
			for {
				_, err := s.Commit(ctx, storetest.CP(uint32(start+1)), ds)
				if err == nil {
					break
				}
				if !IsTransient(err) || retries > 1000 {
					return err
				}
				retries++
			}
		}
		return nil
	}
	errs := make(chan error, 2)
	go func() { errs <- run(a, "A", false) }()
	go func() { errs <- run(b, "B", true) }()
	for i := 0; i < 2; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("transient errors retried: %d, %d", <-transient, <-transient)
	list, err := a.List(ctx, dispatch.Filter{Limit: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	owner := map[string]map[string]bool{}
	for _, d := range list {
		if owner[d.Key] == nil {
			owner[d.Key] = map[string]bool{}
		}
		owner[d.Key][d.EventID] = true
	}
	if len(list) != 2*records || len(owner) != records {
		t.Errorf("%d deliveries for %d records, want %d for %d", len(list), len(owner), 2*records, records)
	}
	for k, evs := range owner {
		if len(evs) != 1 {
			t.Errorf("record %s has deliveries of events %v, want one event", k, evs)
		}
	}
}

// TestOpen_ReadOnlyGrant opens the schema as an account with SELECT only,
// as a delivery-log reader would: reading works, writing is refused with a
// permanent (not transient) error.
func TestOpen_ReadOnlyGrant(t *testing.T) {
	s, name := open(t)
	if _, err := s.Commit(ctx, storetest.CP(1), []dispatch.NewDelivery{storetest.ND("a", "erp")}); err != nil {
		t.Fatal(err)
	}
	srv.Exec(t, "CREATE USER 'rh_ro'@'127.0.0.1' IDENTIFIED BY 'pw'")
	t.Cleanup(func() { srv.Exec(t, "DROP USER 'rh_ro'@'127.0.0.1'") })
	srv.Exec(t, "GRANT SELECT ON `"+name+"`.* TO 'rh_ro'@'127.0.0.1'")
	dsn := fmt.Sprintf("rh_ro:pw@tcp(%s:%d)/%s", srv.Host, srv.Port, name)
	if _, err := Open(ctx, dsn, Options{}); err == nil || !strings.Contains(err.Error(), "create tables") {
		t.Errorf("read-write open with SELECT only: %v, want a create tables error", err)
	}
	ro, err := Open(ctx, dsn, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if list, err := ro.List(ctx, dispatch.Filter{}); err != nil || len(list) != 1 {
		t.Errorf("read-only list: %d deliveries (err %v), want 1", len(list), err)
	}
	_, err = ro.Commit(ctx, storetest.CP(2), []dispatch.NewDelivery{storetest.ND("b", "erp")})
	if err == nil || IsTransient(err) || !strings.Contains(err.Error(), "denied") {
		t.Errorf("commit with SELECT only: %v, want a permanent access error", err)
	}
}

// TestOpen_ReadOnlyServer refuses a read_only server (a replica) even for
// an account that could write there, and reports the server id.
func TestOpen_ReadOnlyServer(t *testing.T) {
	s, name := open(t)
	if id, err := s.ServerID(ctx); err != nil || id != srv.ServerID {
		t.Errorf("server id = %d (err %v), want %d", id, err, srv.ServerID)
	}
	srv.Exec(t, "SET GLOBAL read_only = 1")
	defer srv.Exec(t, "SET GLOBAL read_only = 0")
	if _, err := Open(ctx, srv.DSN(name), Options{}); err == nil || !strings.Contains(err.Error(), "read_only") {
		t.Errorf("open on a read_only server: %v, want a read_only error", err)
	}
	ro, err := Open(ctx, srv.DSN(name), Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("read-only open on a read_only server: %v", err)
	}
	ro.Close()
}

// A schema with none of rowhook's tables is a first start; one whose
// rowhook_schema_version has a row (the state was complete there) but
// lacks tables is refused with dispatch.ErrNoState naming them, until Init
// (rowhook position --set) recreates them. Tables left by a creation that
// stopped before the version row are completed.
func TestOpen_MissingTables(t *testing.T) {
	name, db := srv.NewSchema(t)
	// Another application's table does not make it rowhook state.
	if _, err := db.Exec("CREATE TABLE crm_notes (id INT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, srv.DSN(name), Options{})
	if err != nil {
		t.Fatalf("first start on a schema without rowhook tables: %v", err)
	}
	if _, err := s.Commit(ctx, storetest.CP(7), nil); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := db.Exec("DROP TABLE rowhook_checkpoint"); err != nil {
		t.Fatal(err)
	}
	for _, ro := range []bool{false, true} {
		_, err := Open(ctx, srv.DSN(name), Options{ReadOnly: ro})
		if !errors.Is(err, dispatch.ErrNoState) || !strings.Contains(err.Error(), "rowhook_checkpoint") || !strings.Contains(err.Error(), name) {
			t.Errorf("open (read-only %v) with rowhook_checkpoint dropped: %v, want dispatch.ErrNoState naming the table and schema", ro, err)
		}
	}
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = 'rowhook_checkpoint'", name).Scan(&n); err != nil || n != 0 {
		t.Fatalf("a refused open recreated the table (%d, %v)", n, err)
	}
	s, err = Open(ctx, srv.DSN(name), Options{Init: true})
	if err != nil {
		t.Fatalf("open with Init: %v", err)
	}
	s.Close()

	// A creation interrupted before the version row: completed.
	name2, db2 := srv.NewSchema(t)
	if _, err := db2.Exec(schema[1]); err != nil { // rowhook_checkpoint only
		t.Fatal(err)
	}
	s, err = Open(ctx, srv.DSN(name2), Options{})
	if err != nil {
		t.Fatalf("open after an interrupted creation: %v", err)
	}
	s.Close()
}

// TestStore_RecordBatch records a recorder-sized batch the way Record
// writes it (one UPDATE … JOIN per 500 results): more than one statement's
// worth, with seqs and without, a delivery with two results (the last one
// decides, the log keeps both), a result for a delivery that is gone, one
// whose seq names another delivery, and a writeback response.
func TestStore_RecordBatch(t *testing.T) {
	s, _ := open(t)
	const n = maxRows + 120
	var ds []dispatch.NewDelivery
	for i := range n {
		ds = append(ds, storetest.ND(fmt.Sprintf("tx%d:0:r", i), "erp"))
	}
	if _, err := s.Commit(ctx, storetest.CP(1), ds); err != nil {
		t.Fatal(err)
	}
	rows, err := s.Pending(ctx, dispatch.PendingQuery{Webhook: "erp", Limit: n})
	if err != nil || len(rows) != n {
		t.Fatalf("pending: %d rows, err %v", len(rows), err)
	}
	at := storetest.T0.Add(time.Second)
	res := func(i, attempt int, st dispatch.Status) dispatch.Result {
		return dispatch.Result{Attempt: dispatch.Attempt{DeliveryID: rows[i].ID, N: attempt, Kind: dispatch.KindAttempt, At: at,
			Duration: time.Millisecond, Status: 200}, Status: st, Attempts: attempt}
	}
	var rs []dispatch.Result
	for i := range n {
		r := res(i, 1, dispatch.StatusOK)
		if i%3 != 0 { // every third one without its seq: looked up by id
			r.Attempt.DeliverySeq = rows[i].Seq
		}
		switch i {
		case 7:
			// Two results: a retry, then a success; the last decides.
			retry := res(i, 1, dispatch.StatusPending)
			retry.Attempt.Status, retry.Attempt.Error, retry.NextAt = 503, "http 503", at.Add(time.Minute)
			rs = append(rs, retry)
			r = res(i, 2, dispatch.StatusOK)
			r.Attempt.DeliverySeq = rows[i].Seq
		case 8:
			r.Writeback = &dispatch.Response{Status: 200, Body: []byte(`{"id":8}`)}
		case 9:
			// A seq that is delivery 10's: neither is touched.
			r.Attempt.DeliverySeq = rows[10].Seq
		case 10:
			continue
		}
		rs = append(rs, r)
	}
	gone := res(0, 1, dispatch.StatusOK)
	gone.Attempt.DeliveryID = "no-such-delivery"
	rs = append(rs, gone)
	if err := s.Record(ctx, rs); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		d, log := mustGet(t, s, rows[i].ID)
		switch i {
		case 7:
			if d.Status != dispatch.StatusOK || d.Attempts != 2 || d.LastError != "" || len(log) != 2 {
				t.Errorf("delivery 7 (retry then ok): status %s attempts %d error %q, %d log entries", d.Status, d.Attempts, d.LastError, len(log))
			}
		case 8:
			if d.Status != dispatch.StatusOK || d.Writeback != dispatch.WritebackPending || d.Response == nil || string(d.Response.Body) != `{"id":8}` {
				t.Errorf("delivery 8 (writeback): status %s writeback %q response %+v", d.Status, d.Writeback, d.Response)
			}
		case 9, 10:
			if d.Status != dispatch.StatusPending || d.Attempts != 0 {
				t.Errorf("delivery %d (a wrong seq / none): status %s attempts %d, want untouched", i, d.Status, d.Attempts)
			}
		default:
			if d.Status != dispatch.StatusOK || d.Attempts != 1 || d.LastStatus != 200 || !d.UpdatedAt.Equal(at.Add(time.Millisecond)) ||
				d.Writeback != "" || d.Response != nil || len(log) != 1 {
				t.Errorf("delivery %d: %+v, %d log entries", i, d, len(log))
			}
		}
	}
}

func mustGet(t *testing.T, s *Store, id string) (dispatch.Delivery, []dispatch.Attempt) {
	t.Helper()
	d, log, err := s.Get(ctx, id)
	if err != nil {
		t.Fatalf("get %s: %v", id, err)
	}
	return d, log
}
