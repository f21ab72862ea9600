package sqlitestore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/dispatch"
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
		ID: dispatch.DeliveryID(event, webhook, ""), EventID: event, Rule: "r", Event: "E", Webhook: webhook,
		Key: "crm.t:1", Method: "POST", URL: "http://x/", ContentType: "application/json", Body: []byte(`{"a":1}`),
		EventTime: t0, CreatedAt: t0, NextAt: t0,
	}
}

func cp(pos uint32) cdc.Checkpoint {
	return cdc.Checkpoint{Flavor: "mariadb", File: "bin.000001", Pos: pos, GTIDSet: "0-1-" + strconv.Itoa(int(pos)), Timestamp: t0}
}

func TestStore_Commit(t *testing.T) {
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
	d, _, err := s.Get(ctx, dispatch.DeliveryID("tx1:0:r", "erp", ""))
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != dispatch.StatusPending || string(d.Body) != `{"a":1}` || d.Webhook != "erp" || !d.NextAt.Equal(t0) {
		t.Errorf("stored delivery = %+v", d)
	}
}

func TestStore_CommitAtomic(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "state.db"))
	if _, err := s.Commit(ctx, cp(100), []dispatch.NewDelivery{nd("a", "erp")}); err != nil {
		t.Fatal(err)
	}
	// A cancelled context makes the commit fail part-way: neither the new
	// delivery nor the checkpoint may be stored.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Commit(cctx, cp(300), []dispatch.NewDelivery{nd("b", "erp")}); err == nil {
		t.Fatal("commit with a cancelled context succeeded")
	}
	got, _, _ := s.Checkpoint(ctx)
	if got.Pos != 100 {
		t.Errorf("checkpoint moved to %d by a failed commit", got.Pos)
	}
	if _, _, err := s.Get(ctx, dispatch.DeliveryID("b", "erp", "")); !errors.Is(err, dispatch.ErrNotFound) {
		t.Errorf("delivery of a failed commit: err = %v, want ErrNotFound", err)
	}
}

func TestStore_CommitOnce(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "state.db"))
	once := func(event, webhook, key string) dispatch.NewDelivery {
		d := nd(event, webhook)
		d.Once, d.Key = true, key
		return d
	}
	tests := []struct {
		name string
		ds   []dispatch.NewDelivery
		want int
	}{
		{"first event of the record, two webhooks", []dispatch.NewDelivery{once("e1", "erp", "k1"), once("e1", "crm", "k1")}, 2},
		{"later event of the same record", []dispatch.NewDelivery{once("e2", "erp", "k1")}, 0},
		{"replay of the first event", []dispatch.NewDelivery{once("e1", "erp", "k1")}, 0},
		{"another record", []dispatch.NewDelivery{once("e3", "erp", "k2")}, 1},
		{"two events of a new record in one commit", []dispatch.NewDelivery{once("e4", "erp", "k3"), once("e5", "erp", "k3")}, 1},
		{"not once: always", []dispatch.NewDelivery{nd("e6", "erp")}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := s.Commit(ctx, cp(1), tt.ds)
			if err != nil || n != tt.want {
				t.Errorf("inserted %d (err %v), want %d", n, err, tt.want)
			}
		})
	}
	if _, _, err := s.Get(ctx, dispatch.DeliveryID("e5", "erp", "")); !errors.Is(err, dispatch.ErrNotFound) {
		t.Errorf("second once event of k3 stored: %v", err)
	}
}

func TestStore_RecordAndRedeliver(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "state.db"))
	a, b := nd("a", "erp"), nd("b", "erp")
	b.NextAt = t0.Add(time.Hour)
	if _, err := s.Commit(ctx, cp(1), []dispatch.NewDelivery{a, b}); err != nil {
		t.Fatal(err)
	}
	due, err := s.Pending(ctx, dispatch.PendingQuery{Webhook: "erp", DueBy: t0, Limit: 10})
	if err != nil || len(due) != 1 || due[0].ID != a.ID {
		t.Fatalf("due at t0 = %v (err %v), want only a", ids(due), err)
	}
	all, _ := s.Pending(ctx, dispatch.PendingQuery{Webhook: "erp", Limit: 10})
	if len(all) != 2 || all[0].ID != a.ID {
		t.Fatalf("pending in seq order = %v", ids(all))
	}
	next, ok, _ := s.NextDue(ctx, "erp", "")
	if !ok || !next.Equal(t0) {
		t.Errorf("next due = %v %v", next, ok)
	}
	resp := &dispatch.Response{Status: 201, Body: []byte(`{"id":7}`)}
	err = s.Record(ctx, []dispatch.Result{
		{Attempt: dispatch.Attempt{DeliveryID: a.ID, N: 1, Kind: dispatch.KindAttempt, At: t0, Duration: 5 * time.Millisecond,
			Method: "POST", URL: "http://x/", Status: 201, RequestHeaders: map[string][]string{"Authorization": {dispatch.Redacted}}},
			Status: dispatch.StatusOK, Attempts: 1, Writeback: resp},
		{Attempt: dispatch.Attempt{DeliveryID: b.ID, N: 1, At: t0, Status: 500, Error: "http 500"}, Status: dispatch.StatusDead, Attempts: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	got, log, err := s.Get(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != dispatch.StatusOK || got.Attempts != 1 || got.Writeback != dispatch.WritebackPending || got.Response == nil || string(got.Response.Body) != `{"id":7}` {
		t.Errorf("after success: %+v", got)
	}
	if len(log) != 1 || log[0].Status != 201 || log[0].RequestHeaders["Authorization"][0] != dispatch.Redacted || log[0].Duration != 5*time.Millisecond {
		t.Errorf("log = %+v", log)
	}
	wbs, _ := s.Writebacks(ctx, 10)
	if len(wbs) != 1 || wbs[0].ID != a.ID {
		t.Errorf("pending writebacks = %v", ids(wbs))
	}
	if err := s.FinishWriteback(ctx, a.ID, dispatch.WritebackDone, "", t0); err != nil {
		t.Fatal(err)
	}
	if wbs, _ := s.Writebacks(ctx, 10); len(wbs) != 0 {
		t.Errorf("writeback still pending after done")
	}

	// Bulk redeliver by status: only the dead one.
	done, err := s.Redeliver(ctx, nil, dispatch.Filter{Status: dispatch.StatusDead}, t0.Add(time.Minute), "test")
	if err != nil || len(done) != 1 || done[0] != b.ID {
		t.Fatalf("redeliver dead = %v (err %v)", done, err)
	}
	got, log, _ = s.Get(ctx, b.ID)
	if got.Status != dispatch.StatusPending || got.Attempts != 0 || got.Redelivered != 1 || !got.NextAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("after redeliver: %+v", got)
	}
	if last := log[len(log)-1]; last.Kind != dispatch.KindRedeliver || last.Note != "redelivered by test (was dead)" {
		t.Errorf("redeliver note = %+v", last)
	}
	if _, err := s.Redeliver(ctx, []string{"msg_nope"}, dispatch.Filter{}, t0, "test"); !errors.Is(err, dispatch.ErrNotFound) {
		t.Errorf("redeliver unknown id: %v", err)
	}
}

func TestStore_Prune(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "state.db"))
	old, fresh, pending := nd("old", "erp"), nd("fresh", "erp"), nd("pending", "erp")
	if _, err := s.Commit(ctx, cp(1), []dispatch.NewDelivery{old, fresh, pending}); err != nil {
		t.Fatal(err)
	}
	rec := func(id string, at time.Time) dispatch.Result {
		return dispatch.Result{Attempt: dispatch.Attempt{DeliveryID: id, N: 1, At: at, Status: 200}, Status: dispatch.StatusOK, Attempts: 1}
	}
	if err := s.Record(ctx, []dispatch.Result{rec(old.ID, t0), rec(fresh.ID, t0.Add(48*time.Hour))}); err != nil {
		t.Fatal(err)
	}
	n, err := s.Prune(ctx, t0.Add(24*time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("pruned %d (err %v), want 1", n, err)
	}
	for id, want := range map[string]bool{old.ID: false, fresh.ID: true, pending.ID: true} {
		_, _, err := s.Get(ctx, id)
		if (err == nil) != want {
			t.Errorf("%s present = %v, want %v", id, err == nil, want)
		}
	}
}

func TestStore_SubscriptionsAndWebhookState(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "state.db"))
	sub := dispatch.Subscription{ID: "sub_1", URL: "https://hooks.example.com/x", Event: "NewOpportunity", CreatedAt: t0}
	if err := s.AddSubscription(ctx, sub); err != nil {
		t.Fatal(err)
	}
	subs, err := s.Subscriptions(ctx)
	if err != nil || len(subs) != 1 || subs[0] != sub {
		t.Fatalf("subscriptions = %+v (err %v)", subs, err)
	}
	d := nd("e", dispatch.SubscriptionWebhook)
	d.ID, d.Subscription = dispatch.DeliveryID("e", dispatch.SubscriptionWebhook, "sub_1"), "sub_1"
	if _, err := s.Commit(ctx, cp(1), []dispatch.NewDelivery{d}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Fail(ctx, dispatch.SubscriptionWebhook, "sub_1", "removed", t0); err != nil || n != 1 {
		t.Errorf("fail subscription deliveries: %d %v", n, err)
	}
	if err := s.DeleteSubscription(ctx, "sub_1"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSubscription(ctx, "sub_1"); !errors.Is(err, dispatch.ErrNotFound) {
		t.Errorf("second delete: %v", err)
	}
	if err := s.SetWebhookDisabled(ctx, "erp", "410 Gone", t0); err != nil {
		t.Fatal(err)
	}
	if m, _ := s.DisabledWebhooks(ctx); m["erp"] != "410 Gone" {
		t.Errorf("disabled = %v", m)
	}
	if err := s.SetWebhookDisabled(ctx, "erp", "", t0); err != nil {
		t.Fatal(err)
	}
	if m, _ := s.DisabledWebhooks(ctx); len(m) != 0 {
		t.Errorf("disabled after enable = %v", m)
	}
}

func ids(ds []dispatch.Delivery) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.ID)
	}
	return out
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

	ctx := context.Background()
	s := open(t, path)
	c, ok, err := s.Checkpoint(ctx)
	if err != nil || !ok {
		t.Fatalf("checkpoint after kill: ok=%v err=%v", ok, err)
	}
	// Transaction i (from 1) enqueues i%3 deliveries and sets pos i.
	want := 0
	for i := 1; i <= int(c.Pos); i++ {
		want += i % 3
	}
	list, err := s.List(ctx, dispatch.Filter{Limit: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != want {
		t.Fatalf("after kill at checkpoint %d: %d deliveries, want %d", c.Pos, len(list), want)
	}
	t.Logf("killed after %d transactions, %d deliveries", c.Pos, want)
	// The replay of the next transactions (what the reader does after a
	// restart) inserts each delivery once.
	for i := int(c.Pos) + 1; i <= int(c.Pos)+5; i++ {
		if _, err := s.Commit(ctx, cp(uint32(i)), txDeliveries(i)); err != nil {
			t.Fatal(err)
		}
		if n, _ := s.Commit(ctx, cp(uint32(i)), txDeliveries(i)); n != 0 {
			t.Fatalf("replay of tx %d inserted %d", i, n)
		}
	}
}

func txDeliveries(i int) []dispatch.NewDelivery {
	var ds []dispatch.NewDelivery
	for j := 0; j < i%3; j++ {
		ds = append(ds, nd(fmt.Sprintf("tx%d:%d:r", i, j), "erp"))
	}
	return ds
}

func storeChild(path string) {
	s, err := Open(path, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	ctx := context.Background()
	for i := 1; ; i++ {
		if _, err := s.Commit(ctx, cp(uint32(i)), txDeliveries(i)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		if i == 50 {
			fmt.Println("committing")
		}
	}
}
