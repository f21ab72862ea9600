package writeback_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/internal/mariadbtest"
	"github.com/rowhook/rowhook/writeback"
)

// TestNew_mode: how New settles between annotations and the marker table.
func TestNew_mode(t *testing.T) {
	c := newCRM(t)
	m := map[string]*writeback.Mapping{"r": c.mapping()}

	t.Run("auto with a replica that keeps annotations", func(t *testing.T) {
		w := newWriter(t, c.cfg(writeback.ModeAuto), m, writeback.Deps{ReplicaDSN: pair.Replica.URL()})
		if w.Mode() != writeback.ModeAnnotate {
			t.Errorf("mode %s", w.Mode())
		}
	})
	t.Run("auto without the replica uses the marker", func(t *testing.T) {
		w := newWriter(t, c.cfg(writeback.ModeAuto), m, writeback.Deps{})
		if w.Mode() != writeback.ModeMarker || w.MarkerTable() != c.schema+".rowhook_writeback_marker" {
			t.Errorf("mode %s marker %q", w.Mode(), w.MarkerTable())
		}
	})
	t.Run("reading the primary itself", func(t *testing.T) {
		w := newWriter(t, c.cfg(writeback.ModeAnnotate), m, writeback.Deps{ReplicaDSN: pair.Primary.URL()})
		if w.Mode() != writeback.ModeAnnotate {
			t.Errorf("mode %s", w.Mode())
		}
	})
	t.Run("primary default off is turned on for the session", func(t *testing.T) {
		pair.Primary.Exec(t, "SET GLOBAL binlog_annotate_row_events = OFF")
		defer pair.Primary.Exec(t, "SET GLOBAL binlog_annotate_row_events = ON")
		w := newWriter(t, c.cfg(writeback.ModeAnnotate), m, writeback.Deps{ReplicaDSN: pair.Replica.URL()})
		if w.Mode() != writeback.ModeAnnotate {
			t.Fatalf("mode %s", w.Mode())
		}
		const delivery = "session-on-1"
		if err := w.Apply(context.Background(), delivery, "r", c.change(), deliver(t, created(`{"id":"S-ON"}`))); err != nil {
			t.Fatal(err)
		}
		waitSync(t)
		for _, e := range replicaEvents(t) {
			if e.typ == "Annotate_rows" && strings.Contains(e.info, writeback.Tag+" "+delivery+" */") {
				return
			}
		}
		t.Error("no tagged Annotate_rows on the replica although the global default is OFF")
	})
}

// TestNew_replicaWithoutAnnotations: a replica that drops annotations makes
// mode annotate fail with the exact setting to change, and mode auto fall
// back to the marker table.
func TestNew_replicaWithoutAnnotations(t *testing.T) {
	srv := mariadbtest.New(t, mariadbtest.Options{ServerID: 3, Replica: true, ExtraArgs: []string{"--replicate-annotate-row-events=OFF"}})
	c := newCRM(t)
	m := map[string]*writeback.Mapping{"r": c.mapping()}

	_, err := writeback.New(context.Background(), c.cfg(writeback.ModeAnnotate), m, writeback.Deps{ReplicaDSN: srv.URL()})
	if !errors.Is(err, writeback.ErrAnnotationsOff) {
		t.Fatalf("New = %v, want ErrAnnotationsOff", err)
	}
	want := fmt.Sprintf("replica 127.0.0.1:%d: replicate_annotate_row_events is OFF (add replicate_annotate_row_events = ON to the replica's my.cnf and restart it)", srv.Port)
	if !strings.Contains(err.Error(), want) {
		t.Errorf("New = %v\nwant %q", err, want)
	}

	w := newWriter(t, c.cfg(writeback.ModeAuto), m, writeback.Deps{ReplicaDSN: srv.URL()})
	if w.Mode() != writeback.ModeMarker {
		t.Errorf("auto mode chose %s", w.Mode())
	}
}

// TestCheck: Check reports problems without creating anything.
func TestCheck(t *testing.T) {
	c := newCRM(t)
	m := map[string]*writeback.Mapping{"r": c.mapping()}
	if err := writeback.Check(context.Background(), c.cfg(writeback.ModeMarker), m, writeback.Deps{}); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := c.db.QueryRow("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'rowhook_writeback_marker'", c.schema).Scan(&n); err != nil || n != 0 {
		t.Errorf("Check created the marker table (%d, %v)", n, err)
	}
	bad := c.mapping()
	bad.Set = map[string]string{"cf_erp_idd": "1"}
	if err := bad.Validate("rules[1].writeback"); err != nil {
		t.Fatal(err)
	}
	err := writeback.Check(context.Background(), c.cfg(writeback.ModeMarker), map[string]*writeback.Mapping{"r": bad}, writeback.Deps{})
	if err == nil || !strings.Contains(err.Error(), "rules[1].writeback.set.cf_erp_idd") {
		t.Errorf("Check = %v", err)
	}
}

// TestNew_markerMissing: without permission to create the marker table, the
// error gives the CREATE TABLE and GRANT a DBA must run.
func TestNew_markerMissing(t *testing.T) {
	c := newCRM(t)
	m := map[string]*writeback.Mapping{"r": c.mapping()}
	cfg := c.cfg(writeback.ModeMarker)
	cfg.CreateMarker = false
	_, err := writeback.New(context.Background(), cfg, m, writeback.Deps{})
	if !errors.Is(err, writeback.ErrMarkerMissing) {
		t.Fatalf("New = %v", err)
	}
	for _, want := range []string{
		"CREATE TABLE IF NOT EXISTS `" + c.schema + "`.`rowhook_writeback_marker` (",
		"GRANT SELECT, INSERT, UPDATE ON `" + c.schema + "`.`rowhook_writeback_marker` TO 'root'@'127.0.0.1'",
		"writeback.create_marker is off",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("New = %v\nwant it to contain %q", err, want)
		}
	}
	// The statement in the message works as given.
	ddl := err.Error()[strings.Index(err.Error(), "CREATE TABLE"):]
	ddl = ddl[:strings.Index(ddl, ";\n")]
	if _, err := c.db.Exec(ddl); err != nil {
		t.Fatalf("the CREATE TABLE from the error fails: %v", err)
	}
	if _, err := writeback.New(context.Background(), cfg, m, writeback.Deps{}); err != nil {
		t.Fatalf("New after the DBA created the table: %v", err)
	}
}

// TestNew_privileges: a writeback user without UPDATE on the mapped table,
// or without CREATE for the marker table, gets the GRANT to ask for.
func TestNew_privileges(t *testing.T) {
	c := newCRM(t)
	user := "wb_" + strings.TrimPrefix(strings.SplitN(c.schema, "_", 2)[0], "t")
	pair.Primary.Exec(t, fmt.Sprintf("CREATE USER '%s'@'127.0.0.1' IDENTIFIED BY 'pw'", user))
	defer pair.Primary.Exec(t, fmt.Sprintf("DROP USER '%s'@'127.0.0.1'", user))
	pair.Primary.Exec(t, fmt.Sprintf("GRANT SELECT ON `%s`.* TO '%s'@'127.0.0.1'", c.schema, user))
	cfg := c.cfg(writeback.ModeMarker)
	cfg.DSN = fmt.Sprintf("mysql://%s:pw@127.0.0.1:%d/%s", user, pair.Primary.Port, c.schema)
	m := map[string]*writeback.Mapping{"r": c.mapping()}
	if err := m["r"].Validate("rules[2].writeback"); err != nil {
		t.Fatal(err)
	}

	_, err := writeback.New(context.Background(), cfg, m, writeback.Deps{})
	want := fmt.Sprintf("rules[2].writeback.table: the writeback user lacks UPDATE on %s.vtiger_potentialscf", c.schema)
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "GRANT SELECT, UPDATE ON `"+c.schema+"`.`vtiger_potentialscf`") {
		t.Fatalf("New = %v\nwant %q", err, want)
	}
	if strings.Contains(err.Error(), "pw@") {
		t.Errorf("password in error: %v", err)
	}

	pair.Primary.Exec(t, fmt.Sprintf("GRANT UPDATE ON `%s`.vtiger_potentialscf TO '%s'@'127.0.0.1'", c.schema, user))
	_, err = writeback.New(context.Background(), cfg, m, writeback.Deps{})
	if !errors.Is(err, writeback.ErrMarkerMissing) || !strings.Contains(err.Error(), "CREATE TABLE IF NOT EXISTS") ||
		!strings.Contains(err.Error(), fmt.Sprintf("TO '%s'@'127.0.0.1'", user)) {
		t.Fatalf("New without CREATE = %v", err)
	}

	pair.Primary.Exec(t, fmt.Sprintf("GRANT CREATE, INSERT, UPDATE ON `%s`.rowhook_writeback_marker TO '%s'@'127.0.0.1'", c.schema, user))
	w := newWriter(t, cfg, m, writeback.Deps{})
	if err := w.Apply(context.Background(), "d-priv", "r", c.change(), deliver(t, created(`{"id":"P-1"}`))); err != nil {
		t.Fatal(err)
	}
	if got := c.column(t, c.db, "cf_erp_id"); got.String != "P-1" {
		t.Errorf("cf_erp_id = %q", got.String)
	}
}

// TestWriter_Apply_lockWait: a CRM user holding the row makes Apply fail
// with a transient lock wait timeout (after writeback.lock_wait_timeout),
// and the retry succeeds once the lock is gone.
func TestWriter_Apply_lockWait(t *testing.T) {
	c := newCRM(t)
	cfg := c.cfg(writeback.ModeMarker)
	cfg.LockWaitTimeout = time.Second
	w := newWriter(t, cfg, map[string]*writeback.Mapping{"r": c.mapping()}, writeback.Deps{})
	resp := deliver(t, created(`{"id":"LOCKED"}`))

	ctx := context.Background()
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var locked int64
	if err := tx.QueryRow("SELECT potentialid FROM vtiger_potentialscf WHERE potentialid = ? FOR UPDATE", c.crmid).Scan(&locked); err != nil {
		t.Fatal(err)
	}
	err = w.Apply(ctx, "d-lock", "r", c.change(), resp)
	tx.Rollback()
	var dbe *writeback.DBError
	if !errors.As(err, &dbe) || !dbe.Transient || writeback.IsPermanent(err) || !strings.Contains(err.Error(), "Lock wait timeout") {
		t.Fatalf("Apply on a locked row = %v, want a transient lock wait timeout", err)
	}
	if err := w.Apply(ctx, "d-lock", "r", c.change(), resp); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if got := c.column(t, c.db, "cf_erp_id"); got.String != "LOCKED" {
		t.Errorf("cf_erp_id = %q", got.String)
	}
}

// TestWriter_Apply_constraint: a server-side constraint error is permanent.
func TestWriter_Apply_constraint(t *testing.T) {
	c := newCRM(t)
	if _, err := c.db.Exec("ALTER TABLE vtiger_potentialscf ADD UNIQUE KEY erp_id_uq (cf_erp_id)"); err != nil {
		t.Fatal(err)
	}
	// Another record already holds the ERP id.
	conn, err := c.db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, q := range []string{
		"SET FOREIGN_KEY_CHECKS = 0",
		fmt.Sprintf("INSERT INTO vtiger_potentialscf (potentialid, cf_erp_id) VALUES (%d, 'DUP-1')", c.crmid+500),
	} {
		if _, err := conn.ExecContext(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
	w := newWriter(t, c.cfg(writeback.ModeMarker), map[string]*writeback.Mapping{"r": c.mapping()}, writeback.Deps{})
	err = w.Apply(context.Background(), "d-dup", "r", c.change(), deliver(t, created(`{"id":"DUP-1"}`)))
	var dbe *writeback.DBError
	if !errors.As(err, &dbe) || dbe.Transient || !writeback.IsPermanent(err) || !strings.Contains(err.Error(), "Duplicate entry") {
		t.Fatalf("Apply = %v, want a permanent duplicate-key error", err)
	}
}

// TestWriter_Apply_concurrent: the dispatcher's workers share one Writer;
// concurrent writebacks to the same row in marker mode all commit.
func TestWriter_Apply_concurrent(t *testing.T) {
	c := newCRM(t)
	w := newWriter(t, c.cfg(writeback.ModeMarker), map[string]*writeback.Mapping{"r": c.mapping()}, writeback.Deps{})
	const workers, each = 6, 5
	errs := make(chan error, workers*each)
	done := make(chan struct{})
	for g := 0; g < workers; g++ {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := 0; i < each; i++ {
				id := fmt.Sprintf("C-%d-%d", g, i)
				resp := writeback.Response{Status: 201, Body: []byte(`{"id":"` + id + `"}`)}
				errs <- w.Apply(context.Background(), "d-"+id, "r", c.change(), resp)
			}
		}()
	}
	for g := 0; g < workers; g++ {
		<-done
	}
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if got := c.column(t, c.db, "cf_erp_id"); !strings.HasPrefix(got.String, "C-") {
		t.Errorf("cf_erp_id = %q", got.String)
	}
	var slots int
	if err := c.db.QueryRow("SELECT COUNT(*) FROM rowhook_writeback_marker").Scan(&slots); err != nil || slots == 0 || slots > workers*each {
		t.Errorf("marker rows %d (%v)", slots, err)
	}
}

// TestWriter_Apply_sessionLosesAnnotations: the primary's default turned
// off under a running Writer whose user may not turn annotations on for its
// session (no BINLOG ADMIN). New writeback connections find them off: mode
// auto switches to the marker table before writing, mode annotate refuses
// to write and says what to change. Nothing is written unrecognisable.
func TestWriter_Apply_sessionLosesAnnotations(t *testing.T) {
	for _, tc := range []struct {
		name      string
		mode      writeback.Mode
		noMarker  bool // writeback.create_marker off and no marker table
		wantErr   error
		wantInErr string
	}{
		{"auto", writeback.ModeAuto, false, nil, ""},
		{"auto without the marker table", writeback.ModeAuto, true, writeback.ErrMarkerMissing, "CREATE TABLE IF NOT EXISTS"},
		{"annotate", writeback.ModeAnnotate, false, writeback.ErrAnnotationsOff, "SET GLOBAL binlog_annotate_row_events = ON"},
	} {
		mode := tc.mode
		t.Run(tc.name, func(t *testing.T) {
			c := newCRM(t)
			user := fmt.Sprintf("wbs_%s_%v", mode, tc.noMarker)
			pair.Primary.Exec(t, fmt.Sprintf("CREATE USER '%s'@'127.0.0.1' IDENTIFIED BY 'pw'", user))
			defer pair.Primary.Exec(t, fmt.Sprintf("DROP USER '%s'@'127.0.0.1'", user))
			pair.Primary.Exec(t, fmt.Sprintf("GRANT SELECT, UPDATE ON `%s`.* TO '%s'@'127.0.0.1'", c.schema, user))
			pair.Primary.Exec(t, fmt.Sprintf("GRANT CREATE, INSERT, UPDATE ON `%s`.rowhook_writeback_marker TO '%s'@'127.0.0.1'", c.schema, user))
			cfg := c.cfg(mode)
			cfg.DSN = fmt.Sprintf("mysql://%s:pw@127.0.0.1:%d/%s", user, pair.Primary.Port, c.schema)
			cfg.CreateMarker = !tc.noMarker
			w := newWriter(t, cfg, map[string]*writeback.Mapping{"r": c.mapping()}, writeback.Deps{ReplicaDSN: pair.Replica.URL()})
			if w.Mode() != writeback.ModeAnnotate {
				t.Fatalf("mode %s at start", w.Mode())
			}
			ctx := context.Background()
			if err := w.Apply(ctx, "d-before", "r", c.change(), deliver(t, created(`{"id":"BEFORE"}`))); err != nil {
				t.Fatal(err)
			}

			// The default goes off and the writer's connections are dropped,
			// as by a restart of the primary with the setting off.
			pair.Primary.Exec(t, "SET GLOBAL binlog_annotate_row_events = OFF")
			defer pair.Primary.Exec(t, "SET GLOBAL binlog_annotate_row_events = ON")
			rows, err := pair.Primary.DB().Query("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = ?", user)
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
				pair.Primary.Exec(t, fmt.Sprintf("KILL %d", id))
			}

			err = w.Apply(ctx, "d-after", "r", c.change(), deliver(t, created(`{"id":"AFTER"}`)))
			if tc.wantErr != nil {
				want := "binlog_annotate_row_events is OFF and the writeback user may not turn it on for its session"
				if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), tc.wantInErr) {
					t.Fatalf("Apply = %v\nwant %v with %q and %q", err, tc.wantErr, want, tc.wantInErr)
				}
				select {
				case <-w.Failed():
				default:
					t.Error("Failed not closed")
				}
				if got := c.column(t, c.db, "cf_erp_id"); got.String != "BEFORE" {
					t.Errorf("cf_erp_id = %q: written without annotation", got.String)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if w.Mode() != writeback.ModeMarker {
				t.Fatalf("mode %s after the session lost annotations", w.Mode())
			}
			waitSync(t)
			for _, tx := range replicaTransactions(t, c.schema) {
				for _, ch := range tx.Changes {
					if ch.Table == "vtiger_potentialscf" && ch.Op == cdc.OpUpdate && ch.After["cf_erp_id"] == "AFTER" {
						if !writeback.IsOwnChange(&ch) && !writeback.IsOwnTransaction(tx, w.MarkerTable()) {
							t.Fatalf("the writeback after the switch carries neither annotation nor marker")
						}
						return
					}
				}
			}
			t.Fatal("the writeback is not in the replica's binlog")
		})
	}
}
