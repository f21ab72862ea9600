package cdc_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/internal/mariadbtest"
)

var srv *mariadbtest.Server

func TestMain(m *testing.M) {
	os.Exit(mariadbtest.Main(m, &srv, mariadbtest.Options{}))
}

// stream is a reader running in the background, collecting transactions.
type stream struct {
	reader *cdc.Reader
	cancel context.CancelFunc
	done   chan error
	mu     sync.Mutex
	txs    []*cdc.Transaction
	notify chan struct{}
}

func currentGTID(t testing.TB, s *mariadbtest.Server) cdc.Checkpoint {
	t.Helper()
	var gtid string
	if err := s.DB().QueryRow("SELECT @@gtid_binlog_pos").Scan(&gtid); err != nil {
		t.Fatal(err)
	}
	return cdc.Checkpoint{Flavor: "mariadb", GTIDSet: gtid}
}

// startStream starts a reader on s from `from`, reading only schema's tables.
func startStream(t testing.TB, s *mariadbtest.Server, schema string, from cdc.Checkpoint, mod func(*cdc.Config)) *stream {
	t.Helper()
	return startStreamDeps(t, s, schema, from, mod, cdc.Deps{})
}

// startStreamDeps is startStream with the reader's collaborators given.
func startStreamDeps(t testing.TB, s *mariadbtest.Server, schema string, from cdc.Checkpoint, mod func(*cdc.Config), deps cdc.Deps) *stream {
	t.Helper()
	cfg := cdc.DefaultConfig()
	cfg.DSN = s.URL()
	cfg.Include = []string{schema + ".*"}
	cfg.Heartbeat = time.Second
	cfg.ReadTimeout = 5 * time.Second
	cfg.MaxBackoff = 500 * time.Millisecond
	if mod != nil {
		mod(&cfg)
	}
	r, err := cdc.New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	st := &stream{reader: r, cancel: cancel, done: make(chan error, 1), notify: make(chan struct{}, 1)}
	go func() {
		st.done <- r.Run(ctx, from, cdc.HandlerFunc(func(ctx context.Context, tx *cdc.Transaction) error {
			st.mu.Lock()
			st.txs = append(st.txs, tx)
			st.mu.Unlock()
			select {
			case st.notify <- struct{}{}:
			default:
			}
			return nil
		}))
	}()
	t.Cleanup(func() { st.stop(t); r.Close() })
	return st
}

func (st *stream) stop(t testing.TB) {
	st.cancel()
	select {
	case err := <-st.done:
		if err != nil {
			t.Errorf("reader stopped with error: %v", err)
		}
		st.done <- nil
	case <-time.After(15 * time.Second):
		t.Error("reader did not stop within 15s of cancel")
	}
}

// changes returns every change received so far.
func (st *stream) changes() []cdc.Change {
	st.mu.Lock()
	defer st.mu.Unlock()
	var out []cdc.Change
	for _, tx := range st.txs {
		out = append(out, tx.Changes...)
	}
	return out
}

func (st *stream) transactions() []*cdc.Transaction {
	st.mu.Lock()
	defer st.mu.Unlock()
	var out []*cdc.Transaction
	for _, tx := range st.txs {
		if len(tx.Changes) > 0 {
			out = append(out, tx)
		}
	}
	return out
}

// waitChanges waits until at least n changes arrived (or fails the test).
func (st *stream) waitChanges(t testing.TB, n int) []cdc.Change {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		if c := st.changes(); len(c) >= n {
			return c
		}
		select {
		case <-st.notify:
		case err := <-st.done:
			st.done <- err
			t.Fatalf("reader stopped early: %v (have %d changes, want %d)", err, len(st.changes()), n)
		case <-deadline:
			t.Fatalf("timed out waiting for %d changes, have %d", n, len(st.changes()))
		}
	}
}

func mustExec(t testing.TB, db *sql.DB, queries ...string) {
	t.Helper()
	for _, q := range queries {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func TestReader_InsertUpdateDelete(t *testing.T) {
	schema, db := srv.NewSchema(t)
	mustExec(t, db, "CREATE TABLE deal (id INT PRIMARY KEY, name VARCHAR(50), amount DECIMAL(10,2), stage VARCHAR(20))")
	from := currentGTID(t, srv)
	st := startStream(t, srv, schema, from, nil)
	before := time.Now().Add(-2 * time.Second)
	mustExec(t, db,
		"INSERT INTO deal VALUES (1, 'Acme', 2500.50, 'Prospecting')",
		"UPDATE deal SET stage = 'Negotiation' WHERE id = 1",
		"DELETE FROM deal WHERE id = 1",
	)
	got := st.waitChanges(t, 3)
	if len(got) != 3 {
		t.Fatalf("got %d changes, want 3", len(got))
	}
	ins, upd, del := got[0], got[1], got[2]
	wantRow := cdc.Row{"id": int64(1), "name": "Acme", "amount": cdc.Decimal("2500.50"), "stage": "Prospecting"}
	if ins.Op != cdc.OpInsert || ins.Schema != schema || ins.Table != "deal" || ins.Before != nil || !reflect.DeepEqual(ins.After, wantRow) {
		t.Errorf("insert = %+v", ins)
	}
	if !reflect.DeepEqual(ins.Changed, []string{"id", "name", "amount", "stage"}) {
		t.Errorf("insert changed = %v", ins.Changed)
	}
	if upd.Op != cdc.OpUpdate || upd.Before["stage"] != "Prospecting" || upd.After["stage"] != "Negotiation" || !reflect.DeepEqual(upd.Changed, []string{"stage"}) {
		t.Errorf("update = %+v", upd)
	}
	if del.Op != cdc.OpDelete || del.After != nil || del.Before["stage"] != "Negotiation" {
		t.Errorf("delete = %+v", del)
	}
	for _, c := range got {
		if !reflect.DeepEqual(c.PK, cdc.Row{"id": int64(1)}) || !reflect.DeepEqual(c.PKColumns, []string{"id"}) {
			t.Errorf("%s pk = %v %v", c.Op, c.PK, c.PKColumns)
		}
		if c.GTID == "" || c.Tx != c.GTID || c.ID != c.GTID+":0" || c.File == "" || c.Pos < 4 || c.Row != 0 {
			t.Errorf("%s coordinates: id=%q gtid=%q tx=%q file=%q pos=%d row=%d", c.Op, c.ID, c.GTID, c.Tx, c.File, c.Pos, c.Row)
		}
		if c.Timestamp.Before(before) || c.Timestamp.After(time.Now().Add(time.Second)) {
			t.Errorf("%s timestamp %v is not the commit time", c.Op, c.Timestamp)
		}
		if c.Key() != schema+".deal:1" {
			t.Errorf("key = %q", c.Key())
		}
	}
	if ins.GTID == upd.GTID || upd.GTID == del.GTID {
		t.Errorf("three autocommit statements share a GTID: %s %s %s", ins.GTID, upd.GTID, del.GTID)
	}
	if ins.Annotation == "" {
		t.Errorf("insert has no annotation (Annotate_rows) text")
	}
}

func TestReader_MultiRowStatementsAndTransactions(t *testing.T) {
	schema, db := srv.NewSchema(t)
	mustExec(t, db, "CREATE TABLE t (id INT PRIMARY KEY, v INT)")
	st := startStream(t, srv, schema, currentGTID(t, srv), nil)
	mustExec(t, db, "INSERT INTO t VALUES (1, 10), (2, 20), (3, 30)")
	got := st.waitChanges(t, 3)
	for i, c := range got[:3] {
		if c.Row != i || c.Seq != i || c.Pos != got[0].Pos || c.Tx != got[0].Tx || c.After["id"] != int64(i+1) {
			t.Errorf("row %d: row=%d seq=%d pos=%d tx=%s after=%v", i, c.Row, c.Seq, c.Pos, c.Tx, c.After)
		}
	}

	// A multi-statement transaction is delivered once, at commit, in order.
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := context.Background()
	for _, q := range []string{"BEGIN", "UPDATE t SET v = v + 1 WHERE id <= 2", "DELETE FROM t WHERE id = 3", "INSERT INTO t VALUES (4, 40)"} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	// Nothing of the open transaction may arrive before COMMIT: give the
	// reader time to (wrongly) emit it.
	time.Sleep(700 * time.Millisecond)
	if n := len(st.changes()); n != 3 {
		t.Fatalf("got %d changes before COMMIT, want 3", n)
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}
	got = st.waitChanges(t, 7)
	tx := got[3:]
	ops := []cdc.Op{tx[0].Op, tx[1].Op, tx[2].Op, tx[3].Op}
	if !reflect.DeepEqual(ops, []cdc.Op{cdc.OpUpdate, cdc.OpUpdate, cdc.OpDelete, cdc.OpInsert}) {
		t.Fatalf("ops = %v", ops)
	}
	for i, c := range tx {
		if c.Tx != tx[0].Tx || c.Seq != i || c.ID != fmt.Sprintf("%s:%d", c.Tx, i) {
			t.Errorf("change %d: tx=%s seq=%d id=%s", i, c.Tx, c.Seq, c.ID)
		}
	}
	if tx[0].Row != 0 || tx[1].Row != 1 || tx[2].Row != 0 {
		t.Errorf("row indexes within events: %d %d %d", tx[0].Row, tx[1].Row, tx[2].Row)
	}
	if txs := st.transactions(); len(txs) != 2 || len(txs[1].Changes) != 4 {
		t.Errorf("got %d transactions with changes, want 2 (the last with 4 changes)", len(txs))
	}
}

func TestReader_RolledBackTransactionNeverEmitted(t *testing.T) {
	schema, db := srv.NewSchema(t)
	mustExec(t, db, "CREATE TABLE t (id INT PRIMARY KEY)")
	st := startStream(t, srv, schema, currentGTID(t, srv), nil)
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("INSERT INTO t VALUES (1), (2)"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	mustExec(t, db, "INSERT INTO t VALUES (3)")
	got := st.waitChanges(t, 1)
	time.Sleep(300 * time.Millisecond)
	got = st.changes()
	if len(got) != 1 || got[0].After["id"] != int64(3) {
		t.Fatalf("got %+v, want only the committed row 3", got)
	}
}

func TestReader_Filter(t *testing.T) {
	schema, db := srv.NewSchema(t)
	mustExec(t, db, "CREATE TABLE keep_me (id INT PRIMARY KEY)", "CREATE TABLE skip_me (id INT PRIMARY KEY)")
	st := startStream(t, srv, schema, currentGTID(t, srv), func(c *cdc.Config) {
		c.Include = []string{schema + ".keep*"}
	})
	mustExec(t, db, "INSERT INTO skip_me VALUES (1)", "INSERT INTO keep_me VALUES (2)", "INSERT INTO skip_me VALUES (3)", "INSERT INTO keep_me VALUES (4)")
	got := st.waitChanges(t, 2)
	time.Sleep(300 * time.Millisecond)
	got = st.changes()
	if len(got) != 2 || got[0].Table != "keep_me" || got[1].After["id"] != int64(4) {
		t.Fatalf("got %+v", got)
	}
	// Filtered transactions still advance the position.
	txs := 0
	st.mu.Lock()
	txs = len(st.txs)
	st.mu.Unlock()
	if txs < 4 {
		t.Errorf("got %d transactions, want ≥ 4 (filtered ones included, without changes)", txs)
	}
	var excl = cdc.NewFilter(nil, []string{"*.skip_*"})
	if excl.Match(schema, "skip_me") || !excl.Match(schema, "keep_me") {
		t.Errorf("exclude filter wrong")
	}
}

func TestReader_ResumeFromCheckpoint(t *testing.T) {
	schema, db := srv.NewSchema(t)
	mustExec(t, db, "CREATE TABLE t (id INT PRIMARY KEY)")
	st := startStream(t, srv, schema, currentGTID(t, srv), nil)
	mustExec(t, db, "INSERT INTO t VALUES (1)", "INSERT INTO t VALUES (2)")
	st.waitChanges(t, 2)
	st.stop(t)
	cp := st.reader.Position()
	if cp.GTIDSet == "" || cp.File == "" || cp.Pos == 0 {
		t.Fatalf("position after two transactions: %+v", cp)
	}
	store := cdc.FileCheckpoint{Path: t.TempDir() + "/cp.json"}
	if err := store.Save(cp); err != nil {
		t.Fatal(err)
	}
	mustExec(t, db, "INSERT INTO t VALUES (3)", "INSERT INTO t VALUES (4)")
	loaded, ok, err := store.Load()
	if err != nil || !ok || loaded.GTIDSet != cp.GTIDSet {
		t.Fatalf("load checkpoint: %+v %v %v", loaded, ok, err)
	}
	for _, byFile := range []bool{false, true} {
		from := loaded
		if byFile {
			from.GTIDSet = "" // resume by file:pos
		}
		st2 := startStream(t, srv, schema, from, nil)
		got := st2.waitChanges(t, 2)
		time.Sleep(200 * time.Millisecond)
		got = st2.changes()
		if len(got) != 2 || got[0].After["id"] != int64(3) || got[1].After["id"] != int64(4) {
			t.Fatalf("byFile=%v: resumed with %d changes: %+v", byFile, len(got), got)
		}
		st2.stop(t)
	}
}

func TestReader_StartPositions(t *testing.T) {
	schema, db := srv.NewSchema(t)
	mustExec(t, db, "CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1)")
	// current: only what is written after the start.
	st := startStream(t, srv, schema, cdc.Checkpoint{}, func(c *cdc.Config) { c.Start = "current" })
	waitConnected(t, st.reader)
	mustExec(t, db, "INSERT INTO t VALUES (2)")
	got := st.waitChanges(t, 1)
	if got[0].After["id"] != int64(2) {
		t.Fatalf("start current: first change %+v", got[0])
	}
	// earliest: everything, including row 1.
	st2 := startStream(t, srv, schema, cdc.Checkpoint{}, func(c *cdc.Config) { c.Start = "earliest" })
	got = st2.waitChanges(t, 2)
	if got[0].After["id"] != int64(1) || got[1].After["id"] != int64(2) {
		t.Fatalf("start earliest: %+v", got)
	}
	// file:NAME:POS, from just after row 1's transaction.
	fileStart := fmt.Sprintf("file:%s:%d", st2.transactions()[0].Checkpoint.File, st2.transactions()[0].Checkpoint.Pos)
	st3 := startStream(t, srv, schema, cdc.Checkpoint{}, func(c *cdc.Config) { c.Start = fileStart })
	got = st3.waitChanges(t, 1)
	if got[0].After["id"] != int64(2) {
		t.Fatalf("start %s: first change %+v", fileStart, got[0])
	}
	// gtid:SET, after row 1's transaction.
	st4 := startStream(t, srv, schema, cdc.Checkpoint{}, func(c *cdc.Config) { c.Start = "gtid:" + st2.transactions()[0].Checkpoint.GTIDSet })
	got = st4.waitChanges(t, 1)
	if got[0].After["id"] != int64(2) {
		t.Fatalf("start gtid: first change %+v", got[0])
	}
}

func waitConnected(t testing.TB, r *cdc.Reader) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !r.Connected() {
		if time.Now().After(deadline) {
			t.Fatal("reader did not connect within 20s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestParseStart(t *testing.T) {
	tests := []struct {
		in      string
		want    cdc.Start
		wantErr bool
	}{
		{"", cdc.Start{Kind: cdc.StartCurrent}, false},
		{"current", cdc.Start{Kind: cdc.StartCurrent}, false},
		{"earliest", cdc.Start{Kind: cdc.StartEarliest}, false},
		{"gtid:0-1-5,1-2-9", cdc.Start{Kind: cdc.StartGTID, GTID: "0-1-5,1-2-9"}, false},
		{"file:mysql-bin.000042:1234", cdc.Start{Kind: cdc.StartFile, File: "mysql-bin.000042", Pos: 1234}, false},
		{"file:mysql-bin.000042", cdc.Start{}, true},
		{"file:x:2", cdc.Start{}, true},
		{"gtid:", cdc.Start{}, true},
		{"yesterday", cdc.Start{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := cdc.ParseStart(tt.in)
			if (err != nil) != tt.wantErr || (!tt.wantErr && got != tt.want) {
				t.Fatalf("ParseStart(%q) = %+v, %v", tt.in, got, err)
			}
		})
	}
}

func TestParseDSN(t *testing.T) {
	s, err := cdc.ParseDSN("mysql://rowhook:p%40ss@replica.db:3307/?tls=false")
	if err != nil || s.User != "rowhook" || s.Password != "p@ss" || s.Host != "replica.db" || s.Port != 3307 || !strings.Contains(s.DriverDSN(""), "tls=false") {
		t.Fatalf("url form: %+v %v", s, err)
	}
	if s.Redacted() != "rowhook:***@replica.db:3307" {
		t.Errorf("redacted = %q", s.Redacted())
	}
	s, err = cdc.ParseDSN("rowhook:secret@tcp(10.0.0.5:3306)/")
	if err != nil || s.Host != "10.0.0.5" || s.Port != 3306 || s.Password != "secret" {
		t.Fatalf("driver form: %+v %v", s, err)
	}
	// Both forms keep the driver's own parameters for the metadata
	// connection (the driver form used to drop them).
	for _, dsn := range []string{"rowhook:secret@tcp(10.0.0.5:3306)/?timeout=3s&tls=false", "mysql://rowhook:secret@10.0.0.5/?timeout=3s&tls=false"} {
		s, err = cdc.ParseDSN(dsn)
		if d := s.DriverDSN("x"); err != nil || !strings.Contains(d, "timeout=3s") || !strings.Contains(d, "tls=false") || !strings.Contains(d, "/x?") {
			t.Errorf("%s: metadata DSN %q, %v", dsn, d, err)
		}
	}
	for _, bad := range []string{"postgres://u@h/", "rowhook@unix(/tmp/x.sock)/", "mysql://h:3306/", "mysql://u:secretpw@h:99999/"} {
		_, err := cdc.ParseDSN(bad)
		if err == nil {
			t.Errorf("ParseDSN(%q) accepted", bad)
		} else if strings.Contains(err.Error(), "secretpw") {
			t.Errorf("error leaks the password: %v", err)
		}
	}
}
