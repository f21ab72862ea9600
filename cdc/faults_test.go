package cdc_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/internal/mariadbtest"
)

// Rows written before an ALTER keep the names they were written with, even
// when they are read after the ALTER.
func TestReader_AlterMidStreamKeepsNames(t *testing.T) {
	schema, db := srv.NewSchema(t)
	mustExec(t, db, "CREATE TABLE t (id INT PRIMARY KEY, a VARCHAR(10), b VARCHAR(10))")
	from := currentGTID(t, srv)
	mustExec(t, db,
		"INSERT INTO t VALUES (1, 'a1', 'b1')",
		"ALTER TABLE t ADD COLUMN c INT AFTER a",
		"INSERT INTO t VALUES (2, 'a2', 3, 'b2')",
		"ALTER TABLE t DROP COLUMN b",
		"INSERT INTO t VALUES (3, 'a3', 4)",
		"ALTER TABLE t CHANGE a aa VARCHAR(100), MODIFY c BIGINT UNSIGNED",
		"INSERT INTO t VALUES (4, 'aa4', 5)",
		"UPDATE t SET c = 6 WHERE id = 4",
	)
	// Read only now, when the schema no longer matches the first rows.
	st := startStream(t, srv, schema, from, nil)
	got := st.waitChanges(t, 5)
	want := []cdc.Row{
		{"id": int64(1), "a": "a1", "b": "b1"},
		{"id": int64(2), "a": "a2", "c": int64(3), "b": "b2"},
		{"id": int64(3), "a": "a3", "c": int64(4)},
		{"id": int64(4), "aa": "aa4", "c": uint64(5)},
		{"id": int64(4), "aa": "aa4", "c": uint64(6)},
	}
	for i, w := range want {
		if !reflect.DeepEqual(got[i].After, w) {
			t.Errorf("change %d after = %v, want %v", i, got[i].After, w)
		}
	}
	if !reflect.DeepEqual(got[4].Changed, []string{"c"}) {
		t.Errorf("changed = %v", got[4].Changed)
	}
	// DDL transactions are delivered too (with no changes), so the position
	// moves past them.
	if n := len(st.transactions()); n != 5 {
		t.Errorf("transactions with changes = %d, want 5", n)
	}
}

// Killing the binlog dump thread mid-stream loses and doubles nothing.
func TestReader_KilledConnectionResumes(t *testing.T) {
	schema, db := srv.NewSchema(t)
	mustExec(t, db, "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))")
	st := startStream(t, srv, schema, currentGTID(t, srv), nil)
	waitConnected(t, st.reader)

	const n = 400
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 1; i <= n; i++ {
			if i%10 == 0 {
				// Some multi-statement transactions too.
				tx, err := db.Begin()
				if err != nil {
					t.Error(err)
					return
				}
				tx.Exec("INSERT INTO t VALUES (?, 'tx')", i)
				tx.Exec("UPDATE t SET v = 'tx-updated' WHERE id = ?", i)
				if err := tx.Commit(); err != nil {
					t.Error(err)
					return
				}
				continue
			}
			if _, err := db.Exec("INSERT INTO t VALUES (?, 'auto')", i); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	kills := 0
	for kills < 4 {
		time.Sleep(150 * time.Millisecond)
		ids := dumpThreads(t, srv.DB())
		for _, id := range ids {
			if _, err := srv.DB().Exec(fmt.Sprintf("KILL %d", id)); err == nil {
				kills++
			}
		}
	}
	wg.Wait()
	got := st.waitChanges(t, n+n/10)
	time.Sleep(300 * time.Millisecond)
	got = st.changes()
	if len(got) != n+n/10 {
		t.Fatalf("got %d changes, want %d (nothing lost, nothing doubled)", len(got), n+n/10)
	}
	next := 1
	seen := map[string]bool{}
	for _, c := range got {
		if seen[c.ID] {
			t.Fatalf("change %s delivered twice", c.ID)
		}
		seen[c.ID] = true
		if c.Op == cdc.OpInsert {
			if c.After["id"] != int64(next) {
				t.Fatalf("insert out of order: got id %v, want %d", c.After["id"], next)
			}
			next++
		}
	}
	if kills < 4 {
		t.Fatalf("killed the dump thread only %d times", kills)
	}
}

func dumpThreads(t testing.TB, db *sql.DB) []int64 {
	t.Helper()
	rows, err := db.Query("SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		rows.Scan(&id)
		ids = append(ids, id)
	}
	return ids
}

// A checkpoint older than the oldest binlog fails with a clear error naming
// both positions, never a silent skip.
func TestReader_PurgedBinlog(t *testing.T) {
	s := mariadbtest.New(t, mariadbtest.Options{})
	schema, db := s.NewSchema(t)
	mustExec(t, db, "CREATE TABLE t (id INT PRIMARY KEY)")
	st := startStream(t, s, schema, currentGTID(t, s), nil)
	mustExec(t, db, "INSERT INTO t VALUES (1)")
	st.waitChanges(t, 1)
	st.stop(t)
	cp := st.reader.Position()

	mustExec(t, db, "INSERT INTO t VALUES (2)")
	mustExec(t, s.DB(), "FLUSH BINARY LOGS")
	mustExec(t, db, "INSERT INTO t VALUES (3)")
	mustExec(t, s.DB(), "FLUSH BINARY LOGS")
	var newest, pos, doDB, ignoreDB sql.NullString
	if err := s.DB().QueryRow("SHOW MASTER STATUS").Scan(&newest, &pos, &doDB, &ignoreDB); err != nil {
		t.Fatal(err)
	}
	// MariaDB keeps (with only a warning) a binlog a dump thread still reads:
	// wait for the stopped reader's thread to go before purging.
	for deadline := time.Now().Add(10 * time.Second); len(dumpThreads(t, s.DB())) > 0; {
		if time.Now().After(deadline) {
			t.Fatal("binlog dump thread still running 10s after the reader stopped")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// A binlog also stays until InnoDB's binlog checkpoint covers its
	// commits (about a second with innodb_flush_log_at_trx_commit=2).
	var oldest string
	for deadline := time.Now().Add(15 * time.Second); ; {
		mustExec(t, s.DB(), "PURGE BINARY LOGS TO '"+newest.String+"'")
		var size any
		if err := s.DB().QueryRow("SHOW BINARY LOGS").Scan(&oldest, &size); err != nil {
			t.Fatal(err)
		}
		if oldest == newest.String {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after PURGE the oldest binlog is still %q, want %q", oldest, newest.String)
		}
		time.Sleep(200 * time.Millisecond)
	}

	for _, tc := range []struct {
		name string
		from cdc.Checkpoint
	}{
		{"gtid", cp},
		{"file", cdc.Checkpoint{Flavor: "mariadb", File: cp.File, Pos: cp.Pos}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := cdc.DefaultConfig()
			cfg.DSN = s.URL()
			r, err := cdc.New(cfg, cdc.Deps{})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err = r.Run(ctx, tc.from, cdc.HandlerFunc(func(_ context.Context, tx *cdc.Transaction) error {
				return fmt.Errorf("no transaction may be delivered from a purged position: got %s %+v changes=%d", tx.ID, tx.Checkpoint, len(tx.Changes))
			}))
			var pe *cdc.PurgedError
			if !errors.Is(err, cdc.ErrPurged) || !errors.As(err, &pe) {
				t.Fatalf("Run = %v, want a PurgedError", err)
			}
			if pe.OldestFile != newest.String {
				t.Errorf("oldest file = %q, want %q", pe.OldestFile, newest.String)
			}
			msg := err.Error()
			for _, want := range []string{tc.from.String(), newest.String, "start earliest", "rowhook replay"} {
				if !strings.Contains(msg, want) {
					t.Errorf("error does not mention %q: %s", want, msg)
				}
			}
		})
	}
}

// rowhook reads a replica's binlog in production: changes made on the
// primary arrive with the primary's GTIDs.
func TestReader_ReadsReplica(t *testing.T) {
	p := mariadbtest.NewPair(t, mariadbtest.Options{})
	p.Primary.Exec(t, "CREATE DATABASE crm")
	p.Primary.Exec(t, "CREATE TABLE crm.deal (id INT PRIMARY KEY, stage VARCHAR(20))")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.WaitSync(ctx); err != nil {
		t.Fatal(err)
	}
	st := startStream(t, p.Replica, "crm", currentGTID(t, p.Replica), nil)
	p.Primary.Exec(t, "INSERT INTO crm.deal VALUES (7, 'Prospecting')")
	p.Primary.Exec(t, "UPDATE crm.deal SET stage = 'Won' WHERE id = 7")
	got := st.waitChanges(t, 2)
	if got[0].After["id"] != int64(7) || got[1].After["stage"] != "Won" {
		t.Fatalf("got %+v", got)
	}
	if !strings.HasPrefix(got[0].GTID, "0-1-") {
		t.Errorf("GTID %q is not the primary's (server id 1)", got[0].GTID)
	}
	in, err := st.reader.Inspect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !in.IsReplica || !in.LogSlaveUpdates || in.ServerID != 2 {
		t.Errorf("inspection of the replica: %+v", in)
	}
}

// The start-up check names every wrong setting and the fix.
func TestReader_InspectBadSettings(t *testing.T) {
	s := mariadbtest.New(t, mariadbtest.Options{ExtraArgs: []string{
		"--binlog-format=MIXED", "--binlog-row-image=MINIMAL", "--binlog-row-metadata=MINIMAL",
	}})
	s.Exec(t, "CREATE USER 'weak'@'127.0.0.1' IDENTIFIED BY 'pw'")
	s.Exec(t, "GRANT SELECT ON *.* TO 'weak'@'127.0.0.1'")
	cfg := cdc.DefaultConfig()
	cfg.DSN = fmt.Sprintf("mysql://weak:pw@%s:%d/", s.Host, s.Port)
	r, err := cdc.New(cfg, cdc.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx := context.Background()
	_, err = r.Inspect(ctx)
	var ie *cdc.InspectionError
	if !errors.As(err, &ie) || !errors.Is(err, cdc.ErrInspect) {
		t.Fatalf("Inspect = %v, want an InspectionError", err)
	}
	msg := err.Error()
	for _, want := range []string{
		"binlog_format is MIXED", "SET GLOBAL binlog_format=ROW",
		"binlog_row_image is MINIMAL", "binlog_row_image=FULL",
		"binlog_row_metadata is MINIMAL", "binlog_row_metadata=FULL",
		`user "weak" lacks REPLICATION SLAVE and BINLOG MONITOR`, "GRANT REPLICATION SLAVE, BINLOG MONITOR, SELECT ON *.*",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("inspection error does not say %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "pw@") || strings.Contains(msg, ":pw") {
		t.Errorf("inspection error leaks the password: %s", msg)
	}
	// Run refuses to start on such a source.
	runErr := r.Run(ctx, cdc.Checkpoint{}, cdc.HandlerFunc(func(context.Context, *cdc.Transaction) error { return nil }))
	if !errors.Is(runErr, cdc.ErrInspect) {
		t.Errorf("Run = %v, want the inspection error", runErr)
	}
}

// Without FULL row metadata, names can come from the current schema (with
// allow_missing_metadata), and a column-count mismatch is refused.
func TestReader_MissingMetadataFallback(t *testing.T) {
	s := mariadbtest.New(t, mariadbtest.Options{ExtraArgs: []string{"--binlog-row-metadata=MINIMAL"}})
	schema, db := s.NewSchema(t)
	mustExec(t, db, "CREATE TABLE t (id INT PRIMARY KEY, name VARCHAR(10), kind ENUM('lead','deal'), blob_col BLOB)")
	from := currentGTID(t, s)

	// Refused by default: the inspection says what to set.
	cfg := cdc.DefaultConfig()
	cfg.DSN = s.URL()
	r, _ := cdc.New(cfg, cdc.Deps{})
	if _, err := r.Inspect(context.Background()); !errors.Is(err, cdc.ErrInspect) || !strings.Contains(err.Error(), "allow_missing_metadata") {
		t.Fatalf("Inspect = %v", err)
	}
	r.Close()

	st := startStream(t, s, schema, from, func(c *cdc.Config) { c.AllowMissingMetadata = true })
	mustExec(t, db, "INSERT INTO t VALUES (1, 'x', 'deal', x'0102')")
	got := st.waitChanges(t, 1)
	want := cdc.Row{"id": int64(1), "name": "x", "kind": "deal", "blob_col": cdc.Bytes{1, 2}}
	if !reflect.DeepEqual(got[0].After, want) || !reflect.DeepEqual(got[0].PKColumns, []string{"id"}) {
		t.Fatalf("after = %#v pk = %v, want %#v", got[0].After, got[0].PKColumns, want)
	}
	st.stop(t)

	// A row written before an ALTER, read after it: the schema has 5 columns,
	// the row 4. Refuse rather than mislabel.
	from2 := currentGTID(t, s)
	mustExec(t, db, "INSERT INTO t VALUES (2, 'y', 'lead', NULL)", "ALTER TABLE t ADD COLUMN extra INT")
	cfg.AllowMissingMetadata = true
	cfg.Include = []string{schema + ".*"}
	r2, _ := cdc.New(cfg, cdc.Deps{})
	defer r2.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := r2.Run(ctx, from2, cdc.HandlerFunc(func(_ context.Context, tx *cdc.Transaction) error {
		if len(tx.Changes) > 0 {
			return fmt.Errorf("delivered a row with guessed names: %v", tx.Changes[0].After)
		}
		return nil
	}))
	if !errors.Is(err, cdc.ErrColumnCount) || !strings.Contains(err.Error(), "binlog_row_metadata=FULL") {
		t.Fatalf("Run = %v, want ErrColumnCount naming the fix", err)
	}
}

// Lag is the age of the last event read; a heartbeat while caught up makes it
// 0 even though the last event is old.
func TestReader_Lag(t *testing.T) {
	schema, db := srv.NewSchema(t)
	mustExec(t, db, "CREATE TABLE t (id INT PRIMARY KEY)")
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	old := time.Now().Add(-time.Hour).Unix()
	from := currentGTID(t, srv)
	if _, err := conn.ExecContext(context.Background(), fmt.Sprintf("SET TIMESTAMP = %d", old)); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), "INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	// Without heartbeats in the window, lag is the event's age.
	st := startStream(t, srv, schema, from, func(c *cdc.Config) { c.Heartbeat = 30 * time.Second; c.ReadTimeout = time.Minute })
	got := st.waitChanges(t, 1)
	if got[0].Timestamp.Unix() != old {
		t.Errorf("commit timestamp = %v, want the binlog's %v", got[0].Timestamp.Unix(), old)
	}
	if lag := st.reader.Lag(); lag < 59*time.Minute || lag > 61*time.Minute {
		t.Errorf("lag = %v, want about 1h", lag)
	}
	st.stop(t)
	// With a 1s heartbeat, once idle the lag drops to 0.
	st2 := startStream(t, srv, schema, from, func(c *cdc.Config) { c.Heartbeat = time.Second })
	st2.waitChanges(t, 1)
	deadline := time.Now().Add(10 * time.Second)
	for st2.reader.Lag() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("lag still %v after 10s idle with 1s heartbeats", st2.reader.Lag())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
