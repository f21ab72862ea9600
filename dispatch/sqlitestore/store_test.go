package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/dispatch"
	"github.com/rowhook/rowhook/dispatch/storetest"
)

func open(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

func nd(event, webhook string) dispatch.NewDelivery {
	return dispatch.NewDelivery{
		ID: dispatch.DeliveryID(time.Time{}, event, webhook, ""), EventID: event, Rule: "r", Event: "E", Webhook: webhook,
		Key: "crm.t:1", Method: "POST", URL: "http://x/", ContentType: "application/json", Body: []byte(`{"a":1}`),
		EventTime: t0, CreatedAt: t0, NextAt: t0,
	}
}

func cp(pos uint32) cdc.Checkpoint {
	return cdc.Checkpoint{Flavor: "mariadb", File: "bin.000001", Pos: pos, GTIDSet: "0-1-" + strconv.Itoa(int(pos)), Timestamp: t0}
}

// TestStore_Reopen checks that commits survive closing and reopening the
// file; the contract of each method is checked by the conformance suite
// (conformance_test.go).
func TestStore_Reopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	s := open(t, path)
	if _, ok, err := s.Checkpoint(ctx); err != nil || ok {
		t.Fatalf("fresh store checkpoint: ok=%v err=%v", ok, err)
	}
	n, err := s.Commit(ctx, cp(100), []dispatch.NewDelivery{nd("tx1:0:r", "erp"), nd("tx1:0:r", "crm")})
	if err != nil || n != 2 {
		t.Fatalf("commit: n=%d err=%v", n, err)
	}
	// A replay of the same transaction inserts nothing and moves the checkpoint.
	n, err = s.Commit(ctx, cp(100), []dispatch.NewDelivery{nd("tx1:0:r", "erp"), nd("tx1:0:r", "crm")})
	if err != nil || n != 0 {
		t.Fatalf("replayed commit: n=%d err=%v, want 0 inserted", n, err)
	}
	// A checkpoint-only commit.
	if _, err := s.Commit(ctx, cp(200), nil); err != nil {
		t.Fatal(err)
	}
	// A zero checkpoint leaves the stored one.
	if _, err := s.Commit(ctx, cdc.Checkpoint{}, []dispatch.NewDelivery{nd("tx2:0:r", "erp")}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = open(t, path)
	got, ok, err := s.Checkpoint(ctx)
	if err != nil || !ok {
		t.Fatalf("checkpoint after reopen: ok=%v err=%v", ok, err)
	}
	if got.Pos != 200 || got.GTIDSet != "0-1-200" || got.File != "bin.000001" || !got.Timestamp.Equal(t0) {
		t.Errorf("checkpoint = %+v, want pos 200", got)
	}
	list, err := s.List(ctx, dispatch.Filter{})
	if err != nil || len(list) != 3 {
		t.Fatalf("list: %d deliveries, err %v; want 3", len(list), err)
	}
	d, _, err := s.Get(ctx, dispatch.DeliveryID(time.Time{}, "tx1:0:r", "erp", ""))
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != dispatch.StatusPending || string(d.Body) != `{"a":1}` || d.Webhook != "erp" || !d.NextAt.Equal(t0) {
		t.Errorf("stored delivery = %+v", d)
	}
}

// TestStore_Kill commits from a child process that is killed with SIGKILL
// at an arbitrary moment, then checks that the file holds exactly the
// deliveries of the transactions up to its checkpoint, never more or less.
func TestStore_Kill(t *testing.T) {
	if os.Getenv("ROWHOOK_STORE_CHILD") != "" {
		storeChild(os.Getenv("ROWHOOK_STORE_CHILD"))
		return
	}
	path := filepath.Join(t.TempDir(), "state.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestStore_Kill$")
	cmd.Env = append(os.Environ(), "ROWHOOK_STORE_CHILD="+path)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait until the child says it has committed something, then kill it.
	buf := make([]byte, 64)
	if _, err := stdout.Read(buf); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	storetest.CheckAfterKill(t, open(t, path))
}

func storeChild(path string) {
	s, err := Open(path, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	ctx := context.Background()
	for i := 1; ; i++ {
		if _, err := s.Commit(ctx, storetest.CP(uint32(i)), storetest.KillTx(i)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		if i == 50 {
			fmt.Println("committing")
		}
	}
}

// TestStore_MigrateAttemptsBySeq opens a file written before attempts were
// keyed by delivery seq: read-only opens still list its attempts, and the
// first read-write open adds and fills delivery_seq, swaps the index, and
// keeps listing and pruning working.
func TestStore_MigrateAttemptsBySeq(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	a, b := nd("tx1:0:r", "erp"), nd("tx2:0:r", "erp")
	if _, err := s.Commit(ctx, cp(100), []dispatch.NewDelivery{a, b}); err != nil {
		t.Fatal(err)
	}
	var rs []dispatch.Result
	for _, d := range []dispatch.NewDelivery{a, b} {
		rs = append(rs, dispatch.Result{Status: dispatch.StatusOK, Attempts: 1, Attempt: dispatch.Attempt{
			DeliveryID: d.ID, N: 1, At: t0, Status: 200, RequestHeaders: map[string][]string{"Webhook-Id": {d.ID}}}})
	}
	if err := s.Record(ctx, rs); err != nil {
		t.Fatal(err)
	}
	// Back to the old layout.
	if _, err := s.w.Exec(`DROP INDEX attempts_delivery_seq; ALTER TABLE attempts DROP COLUMN delivery_seq;
		CREATE INDEX attempts_delivery ON attempts (delivery_id, at)`); err != nil {
		t.Fatal(err)
	}
	s.Close()

	ro, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, atts, err := ro.Get(ctx, a.ID); err != nil || len(atts) != 1 || atts[0].RequestHeaders["Webhook-Id"][0] != a.ID {
		t.Fatalf("read-only open of the old layout: attempts %+v, err %v", atts, err)
	}
	ro.Close()

	s = open(t, path)
	var seqCol, oldIdx, newIdx int
	s.w.QueryRow(`SELECT count(*) FROM pragma_table_info('attempts') WHERE name = 'delivery_seq'`).Scan(&seqCol)
	s.w.QueryRow(`SELECT count(*) FROM sqlite_master WHERE name = 'attempts_delivery'`).Scan(&oldIdx)
	s.w.QueryRow(`SELECT count(*) FROM sqlite_master WHERE name = 'attempts_delivery_seq'`).Scan(&newIdx)
	if seqCol != 1 || oldIdx != 0 || newIdx != 1 {
		t.Fatalf("after migration: delivery_seq column %d, old index %d, new index %d; want 1, 0, 1", seqCol, oldIdx, newIdx)
	}
	var unfilled int
	s.w.QueryRow(`SELECT count(*) FROM attempts WHERE delivery_seq IS NULL`).Scan(&unfilled)
	if unfilled != 0 {
		t.Fatalf("%d attempts without delivery_seq after migration", unfilled)
	}
	for _, d := range []dispatch.NewDelivery{a, b} {
		if _, atts, err := s.Get(ctx, d.ID); err != nil || len(atts) != 1 || atts[0].Status != 200 {
			t.Fatalf("%s after migration: attempts %+v, err %v", d.ID, atts, err)
		}
	}
	if n, err := s.Prune(ctx, t0.Add(time.Hour*24*365)); err != nil || n != 2 {
		t.Fatalf("prune: n=%d err=%v, want 2", n, err)
	}
	var left int
	s.w.QueryRow(`SELECT count(*) FROM attempts`).Scan(&left)
	if left != 0 {
		t.Fatalf("%d attempts left after pruning their deliveries", left)
	}
}

// Only a missing file is a fresh start: an empty file, a SQLite file
// without rowhook's tables and a file that is no database are refused with
// dispatch.ErrNoState naming the file, and left as they were; Init
// (rowhook position --set) takes the first two.
func TestOpen_RefusesFileWithoutState(t *testing.T) {
	for _, tt := range []struct {
		name string
		make func(t *testing.T, path string)
		init bool
	}{
		{"empty", func(t *testing.T, path string) {
			if err := os.WriteFile(path, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"no rowhook tables", func(t *testing.T, path string) {
			db, err := sql.Open("sqlite", "file:"+path)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.Exec("CREATE TABLE notes (id INTEGER PRIMARY KEY)"); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"not a database", func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte("half a copy\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.db")
			tt.make(t, path)
			before, _ := os.ReadFile(path)
			for _, ro := range []bool{false, true} {
				_, err := Open(path, Options{ReadOnly: ro})
				if !errors.Is(err, dispatch.ErrNoState) || !strings.Contains(err.Error(), path) {
					t.Errorf("open (read-only %v): %v, want dispatch.ErrNoState naming %s", ro, err, path)
				}
			}
			if after, _ := os.ReadFile(path); string(after) != string(before) {
				t.Errorf("a refused open changed the file")
			}
			if !tt.init {
				return
			}
			s, err := Open(path, Options{Init: true})
			if err != nil {
				t.Fatalf("open with Init: %v", err)
			}
			if _, err := s.Commit(context.Background(), cp(3), nil); err != nil {
				t.Fatal(err)
			}
			s.Close()
			s = open(t, path)
			if got, ok, err := s.Checkpoint(context.Background()); err != nil || !ok || got.Pos != 3 {
				t.Errorf("checkpoint after Init = %+v %v %v", got, ok, err)
			}
		})
	}
	// A missing file is created with the tables, and nothing else is left
	// in the directory.
	dir := t.TempDir()
	s := open(t, filepath.Join(dir, "state.db"))
	if _, ok, err := s.Checkpoint(context.Background()); err != nil || ok {
		t.Errorf("new file: checkpoint %v, %v", ok, err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".new-") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}
