// Package storetest is the conformance suite of dispatch.Store: every
// implementation (dispatch/sqlitestore, dispatch/mysqlstore) runs the same
// assertions about each method's contract, so the stores cannot drift apart.
//
// An implementation's test calls Run with a function that opens a fresh,
// empty store for one test:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) dispatch.Store { ... })
//	}
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/dispatch"
	"github.com/rowhook/rowhook/dispatch/send"
)

// Run runs the conformance suite. open must return a fresh, empty store and
// close it when the test ends (t.Cleanup).
func Run(t *testing.T, open func(t *testing.T) dispatch.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s dispatch.Store)
	}{
		{"Commit", testCommit},
		{"CommitFields", testCommitFields},
		{"CommitAtomic", testCommitAtomic},
		{"CommitDuplicates", testCommitDuplicates},
		{"CommitOnce", testCommitOnce},
		{"CommitLargeBatch", testCommitLargeBatch},
		{"CommitPlainBatch", testCommitPlainBatch},
		{"LargeBatchBodies", testLargeBatchBodies},
		{"Checkpoint", testCheckpoint},
		{"Pending", testPending},
		{"NextDue", testNextDue},
		{"Record", testRecord},
		{"RecordBySeq", testRecordBySeq},
		{"RecordBatch", testRecordBatch},
		{"Writebacks", testWritebacks},
		{"List", testList},
		{"ListSearch", testListSearch},
		{"Get", testGet},
		{"Redeliver", testRedeliver},
		{"Rerender", testRerender},
		{"Fail", testFail},
		{"Subscriptions", testSubscriptions},
		{"WebhookDisabled", testWebhookDisabled},
		{"Stats", testStats},
		{"Prune", testPrune},
		{"Concurrent", testConcurrent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open(t)) })
	}
}

// T0 is the suite's reference time; it has nanoseconds so that stores that
// round timestamps fail.
var T0 = time.Date(2026, 11, 23, 10, 0, 0, 123456789, time.UTC)

// ND returns a pending delivery of event to webhook, due at T0.
func ND(event, webhook string) dispatch.NewDelivery {
	return dispatch.NewDelivery{
		ID: dispatch.DeliveryID(time.Time{}, event, webhook, ""), EventID: event, Rule: "r", Event: "E", Webhook: webhook,
		Key: "crm.t:1", Method: "POST", URL: "http://x/", ContentType: "application/json", Body: []byte(`{"a":1}`),
		EventTime: T0, CreatedAt: T0, NextAt: T0,
	}
}

// CP returns a MariaDB checkpoint at pos.
func CP(pos uint32) cdc.Checkpoint {
	return cdc.Checkpoint{Flavor: "mariadb", File: "bin.000001", Pos: pos, GTIDSet: fmt.Sprintf("0-1-%d", pos), Timestamp: T0}
}

// IDs returns the ids of ds, in order.
func IDs(ds []dispatch.Delivery) []string {
	out := []string{}
	for _, d := range ds {
		out = append(out, d.ID)
	}
	return out
}

var ctx = context.Background()

func commit(t *testing.T, s dispatch.Store, ds ...dispatch.NewDelivery) {
	t.Helper()
	if _, err := s.Commit(ctx, CP(1), ds); err != nil {
		t.Fatalf("commit: %v", err)
	}
}

func get(t *testing.T, s dispatch.Store, id string) (dispatch.Delivery, []dispatch.Attempt) {
	t.Helper()
	d, log, err := s.Get(ctx, id)
	if err != nil {
		t.Fatalf("get %s: %v", id, err)
	}
	return d, log
}

func ok(id string, at time.Time) dispatch.Result {
	return dispatch.Result{Attempt: dispatch.Attempt{DeliveryID: id, N: 1, Kind: dispatch.KindAttempt, At: at, Status: 200},
		Status: dispatch.StatusOK, Attempts: 1}
}

func testCommit(t *testing.T, s dispatch.Store) {
	if _, ok, err := s.Checkpoint(ctx); err != nil || ok {
		t.Fatalf("fresh store checkpoint: ok=%v err=%v", ok, err)
	}
	n, err := s.Commit(ctx, CP(100), []dispatch.NewDelivery{ND("tx1:0:r", "erp"), ND("tx1:0:r", "crm")})
	if err != nil || n != 2 {
		t.Fatalf("commit: n=%d err=%v, want 2", n, err)
	}
	// A replay of the same transaction inserts nothing.
	n, err = s.Commit(ctx, CP(100), []dispatch.NewDelivery{ND("tx1:0:r", "erp"), ND("tx1:0:r", "crm")})
	if err != nil || n != 0 {
		t.Fatalf("replayed commit: n=%d err=%v, want 0 inserted", n, err)
	}
	// A checkpoint-only commit moves the checkpoint.
	if n, err := s.Commit(ctx, CP(200), nil); err != nil || n != 0 {
		t.Fatalf("checkpoint-only commit: n=%d err=%v", n, err)
	}
	// A zero checkpoint leaves the stored one.
	if n, err := s.Commit(ctx, cdc.Checkpoint{}, []dispatch.NewDelivery{ND("tx2:0:r", "erp")}); err != nil || n != 1 {
		t.Fatalf("commit without checkpoint: n=%d err=%v", n, err)
	}
	got, found, err := s.Checkpoint(ctx)
	if err != nil || !found {
		t.Fatalf("checkpoint: found=%v err=%v", found, err)
	}
	if got.Pos != 200 || got.GTIDSet != "0-1-200" {
		t.Errorf("checkpoint = %+v, want pos 200 gtid 0-1-200", got)
	}
	list, err := s.List(ctx, dispatch.Filter{})
	if err != nil || len(list) != 3 {
		t.Fatalf("list: %v (err %v), want 3 deliveries", IDs(list), err)
	}
}

func testCommitFields(t *testing.T, s dispatch.Store) {
	d := ND("e1", "erp")
	d.Subscription = ""
	d.Rule, d.Event, d.Key = "big_deal", "BigDeal", "crm.potential:42"
	d.Method, d.URL, d.ContentType = "PUT", "https://erp.example.com/deals/42?x=ü", "application/xml"
	d.Headers = map[string]string{"X-Custom": "1", "SOAPAction": `"urn:x"`}
	d.Body = []byte("<deal>ünïcödé 😀 \x00\xff</deal>")
	d.Change = []byte(`{"row":{"id":42,"name":"Grüße 😀"},"old":null}`)
	d.EventTime = T0.Add(-time.Second)
	d.CreatedAt = T0
	d.NextAt = T0.Add(time.Hour + time.Nanosecond)
	failed := ND("e2", "erp")
	failed.Error = "url: row.potentialid is NULL"
	commit(t, s, d, failed)

	got, log := get(t, s, d.ID)
	if len(log) != 0 {
		t.Errorf("fresh delivery has log %+v", log)
	}
	if !reflect.DeepEqual(got.NewDelivery.Headers, d.Headers) {
		t.Errorf("headers = %v, want %v", got.Headers, d.Headers)
	}
	if string(got.Body) != string(d.Body) || string(got.Change) != string(d.Change) {
		t.Errorf("body %q change %s, want %q %s", got.Body, got.Change, d.Body, d.Change)
	}
	if !got.EventTime.Equal(d.EventTime) || !got.CreatedAt.Equal(d.CreatedAt) || !got.NextAt.Equal(d.NextAt) || !got.UpdatedAt.Equal(d.CreatedAt) {
		t.Errorf("times event=%v created=%v next=%v updated=%v, want %v %v %v %v", got.EventTime, got.CreatedAt, got.NextAt,
			got.UpdatedAt, d.EventTime, d.CreatedAt, d.NextAt, d.CreatedAt)
	}
	want := d
	want.Headers, want.Body, want.Change = nil, nil, nil
	want.EventTime, want.CreatedAt, want.NextAt = time.Time{}, time.Time{}, time.Time{}
	have := got.NewDelivery
	have.Headers, have.Body, have.Change = nil, nil, nil
	have.EventTime, have.CreatedAt, have.NextAt = time.Time{}, time.Time{}, time.Time{}
	if !reflect.DeepEqual(have, want) {
		t.Errorf("stored delivery\n got %+v\nwant %+v", have, want)
	}
	if got.Status != dispatch.StatusPending || got.Attempts != 0 || got.LastStatus != 0 || got.LastError != "" ||
		got.Redelivered != 0 || got.Writeback != dispatch.WritebackNone || got.Response != nil || got.Seq <= 0 {
		t.Errorf("fresh delivery state = %+v", got)
	}
	f, _ := get(t, s, failed.ID)
	if f.Status != dispatch.StatusFailed || f.LastError != failed.Error {
		t.Errorf("delivery with an error: status %s last_error %q, want failed %q", f.Status, f.LastError, failed.Error)
	}
	if f.Seq <= got.Seq {
		t.Errorf("seq %d of the second delivery not after %d", f.Seq, got.Seq)
	}
}

func testCommitAtomic(t *testing.T, s dispatch.Store) {
	if _, err := s.Commit(ctx, CP(100), []dispatch.NewDelivery{ND("a", "erp")}); err != nil {
		t.Fatal(err)
	}
	// A cancelled context makes the commit fail: neither the new delivery
	// nor the checkpoint may be stored.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Commit(cctx, CP(300), []dispatch.NewDelivery{ND("b", "erp")}); err == nil {
		t.Fatal("commit with a cancelled context succeeded")
	}
	got, _, err := s.Checkpoint(ctx)
	if err != nil || got.Pos != 100 {
		t.Errorf("checkpoint = %d (err %v) after a failed commit, want 100", got.Pos, err)
	}
	if _, _, err := s.Get(ctx, dispatch.DeliveryID(time.Time{}, "b", "erp", "")); !errors.Is(err, dispatch.ErrNotFound) {
		t.Errorf("delivery of a failed commit: err = %v, want ErrNotFound", err)
	}
	// The store still works afterwards.
	if n, err := s.Commit(ctx, CP(300), []dispatch.NewDelivery{ND("b", "erp")}); err != nil || n != 1 {
		t.Fatalf("commit after a failed one: n=%d err=%v", n, err)
	}
}

func testCommitDuplicates(t *testing.T, s dispatch.Store) {
	a, b := ND("a", "erp"), ND("b", "erp")
	// The same id twice in one batch counts once; the first copy wins.
	a2 := a
	a2.URL = "http://second/"
	n, err := s.Commit(ctx, CP(1), []dispatch.NewDelivery{a, a2, b})
	if err != nil || n != 2 {
		t.Fatalf("commit with a duplicate in the batch: n=%d err=%v, want 2", n, err)
	}
	if d, _ := get(t, s, a.ID); d.URL != a.URL {
		t.Errorf("duplicate replaced the first: url %s", d.URL)
	}
	// A later copy of a delivered one neither counts nor resets it.
	if err := s.Record(ctx, []dispatch.Result{ok(a.ID, T0)}); err != nil {
		t.Fatal(err)
	}
	n, err = s.Commit(ctx, CP(2), []dispatch.NewDelivery{a, ND("c", "erp")})
	if err != nil || n != 1 {
		t.Fatalf("commit with a stored id: n=%d err=%v, want 1", n, err)
	}
	if d, _ := get(t, s, a.ID); d.Status != dispatch.StatusOK || d.Attempts != 1 {
		t.Errorf("replayed delivery reset: %s attempts %d", d.Status, d.Attempts)
	}
}

func testCommitOnce(t *testing.T, s dispatch.Store) {
	once := func(event, webhook, key string) dispatch.NewDelivery {
		d := ND(event, webhook)
		d.Once, d.Key = true, key
		return d
	}
	tests := []struct {
		name string
		ds   []dispatch.NewDelivery
		want []string // event:webhook stored by this commit
	}{
		{"first event of the record, two webhooks", []dispatch.NewDelivery{once("e1", "erp", "k1"), once("e1", "crm", "k1")}, []string{"e1:erp", "e1:crm"}},
		{"later event of the same record", []dispatch.NewDelivery{once("e2", "erp", "k1")}, nil},
		{"replay of the first event", []dispatch.NewDelivery{once("e1", "erp", "k1")}, nil},
		{"first event for a third webhook later", []dispatch.NewDelivery{once("e1", "ops", "k1")}, []string{"e1:ops"}},
		{"another record", []dispatch.NewDelivery{once("e3", "erp", "k2")}, []string{"e3:erp"}},
		{"two events of a new record in one commit", []dispatch.NewDelivery{once("e4", "erp", "k3"), once("e5", "erp", "k3"), once("e4", "crm", "k3")}, []string{"e4:erp", "e4:crm"}},
		{"another rule, same record", func() []dispatch.NewDelivery {
			d := once("e6", "erp", "k1")
			d.Rule = "r2"
			return []dispatch.NewDelivery{d}
		}(), []string{"e6:erp"}},
		{"not once: always", []dispatch.NewDelivery{ND("e7", "erp"), ND("e8", "erp")}, []string{"e7:erp", "e8:erp"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := map[string]bool{}
			for _, d := range tt.ds {
				_, _, err := s.Get(ctx, d.ID)
				before[d.ID] = err == nil
			}
			n, err := s.Commit(ctx, CP(1), tt.ds)
			if err != nil || n != len(tt.want) {
				t.Errorf("inserted %d (err %v), want %d", n, err, len(tt.want))
			}
			for _, d := range tt.ds {
				_, _, err := s.Get(ctx, d.ID)
				want := slices.Contains(tt.want, d.EventID+":"+d.Webhook)
				if want && err != nil {
					t.Errorf("%s for %s not stored: %v", d.EventID, d.Webhook, err)
				}
				if !want && !before[d.ID] && !errors.Is(err, dispatch.ErrNotFound) {
					t.Errorf("%s for %s: err %v, want skipped (ErrNotFound)", d.EventID, d.Webhook, err)
				}
			}
		})
	}
}

func testCommitLargeBatch(t *testing.T, s dispatch.Store) {
	// Larger than any sensible statement chunk, with large bodies and 750
	// once records, so stores that split batches are exercised at the edges.
	var ds []dispatch.NewDelivery
	body := make([]byte, 64<<10)
	for i := range body {
		body[i] = byte('a' + i%26)
	}
	for i := 0; i < 1500; i++ {
		d := ND(fmt.Sprintf("big%d", i), "erp")
		if i%100 == 0 {
			d.Body = body
		}
		if i%2 == 0 {
			d.Once, d.Key = true, fmt.Sprintf("crm.t:%d", i)
		}
		ds = append(ds, d)
	}
	ds = append(ds, ds[:10]...) // duplicates at the end
	// A later event of a once record at the end: its marker is owned by
	// big0, set in the same commit more than a statement chunk earlier.
	later := ND("later", "erp")
	later.Once, later.Key = true, "crm.t:0"
	ds = append(ds, later)
	n, err := s.Commit(ctx, CP(9), ds)
	if err != nil || n != 1500 {
		t.Fatalf("large commit: n=%d err=%v, want 1500", n, err)
	}
	all, err := s.Pending(ctx, dispatch.PendingQuery{Webhook: "erp", Limit: 2000})
	if err != nil || len(all) != 1500 {
		t.Fatalf("pending after large commit: %d (err %v)", len(all), err)
	}
	for i, d := range all {
		if d.EventID != fmt.Sprintf("big%d", i) {
			t.Fatalf("pending[%d] = %s: batch order lost", i, d.EventID)
		}
		if i%100 == 0 && len(d.Body) != len(body) {
			t.Fatalf("pending[%d] body %d bytes, want %d", i, len(d.Body), len(body))
		}
	}
}

// testCommitPlainBatch commits a large batch without once markers (the
// catch-up case, which stores may insert many rows per statement), with
// duplicates inside one statement's worth, across statements and of
// stored deliveries, and a once delivery in the middle.
func testCommitPlainBatch(t *testing.T, s dispatch.Store) {
	var ds []dispatch.NewDelivery
	for i := 0; i < 1000; i++ {
		d := ND(fmt.Sprintf("p%d", i), "erp")
		d.Body = fmt.Appendf(nil, `{"i":%d}`, i)
		ds = append(ds, d)
	}
	first := ds[:300]
	if n, err := s.Commit(ctx, CP(1), first); err != nil || n != 300 {
		t.Fatalf("first commit: n=%d err=%v, want 300", n, err)
	}
	once := ND("p-once", "erp")
	once.Once, once.Key = true, "crm.t:once"
	var batch []dispatch.NewDelivery
	batch = append(batch, ds[250:500]...) // 50 already stored
	batch = append(batch, ds[500:510]...) // the same ten twice in a row
	batch = append(batch, ds[500:510]...)
	batch = append(batch, once)
	batch = append(batch, ds[510:]...)
	batch = append(batch, ds[600:700]...) // duplicates many rows later
	n, err := s.Commit(ctx, CP(2), batch)
	if err != nil || n != 701 {
		t.Fatalf("second commit: n=%d err=%v, want 701 (700 new deliveries and the once one)", n, err)
	}
	all, err := s.Pending(ctx, dispatch.PendingQuery{Webhook: "erp", Limit: 2000})
	if err != nil || len(all) != 1001 {
		t.Fatalf("pending: %d (err %v), want 1001", len(all), err)
	}
	var want []string
	for i := 0; i < 510; i++ {
		want = append(want, fmt.Sprintf("p%d", i))
	}
	want = append(want, "p-once")
	for i := 510; i < 1000; i++ {
		want = append(want, fmt.Sprintf("p%d", i))
	}
	for i, d := range all {
		if d.EventID != want[i] {
			t.Fatalf("pending[%d] = %s, want %s: order lost", i, d.EventID, want[i])
		}
		if d.EventID != "p-once" && string(d.Body) != fmt.Sprintf(`{"i":%s}`, strings.TrimPrefix(d.EventID, "p")) {
			t.Fatalf("pending[%d] %s body %s: columns shifted", i, d.EventID, d.Body)
		}
	}
}

// testLargeBatchBodies commits large batches (a catch-up's group commits,
// whose bodies a store may keep apart from their rows, compressed
// together) and reads every body back through every path that returns
// one: Pending (by seq, due, and on from a position), List, Get,
// Writebacks, after Redeliver, after Rerender, and after Prune removed
// the deliveries around them.
func testLargeBatchBodies(t *testing.T, s dispatch.Store) {
	const n = 600
	body := func(i int) []byte {
		b := fmt.Appendf(nil, `{"op":"insert","table":"potential","key":{"id":%d},"after":{"id":%d,"name":"Deal %d","amount":"%d.50"}}`, i, i, i, i*10)
		if i%97 == 0 { // a few large ones
			b = append(b, strings.Repeat(fmt.Sprintf(" %d", i), 20_000)...)
		}
		return b
	}
	var ds []dispatch.NewDelivery
	want := map[string][]byte{}
	for i := range n {
		webhook := "erp"
		if i%3 == 2 {
			webhook = "crm"
		}
		d := ND(fmt.Sprintf("blk%d", i), webhook)
		d.Body = body(i)
		d.NextAt = T0.Add(time.Duration(i%5) * time.Second)
		ds = append(ds, d)
		want[d.ID] = d.Body
	}
	// Two group commits, the first with a small one between them.
	if got, err := s.Commit(ctx, CP(1), ds[:350]); err != nil || got != 350 {
		t.Fatalf("commit 350: n=%d err=%v", got, err)
	}
	small := ND("small", "erp")
	small.Body = []byte(`{"small":true}`)
	want[small.ID] = small.Body
	commit(t, s, small)
	if got, err := s.Commit(ctx, CP(2), ds[350:]); err != nil || got != n-350 {
		t.Fatalf("commit %d: n=%d err=%v", n-350, got, err)
	}
	check := func(how string, got []dispatch.Delivery) {
		t.Helper()
		for _, d := range got {
			if w, ok := want[d.ID]; !ok {
				t.Errorf("%s: unexpected delivery %s", how, d.ID)
			} else if !bytes.Equal(d.Body, w) {
				t.Errorf("%s: %s body = %.60q (%d bytes), want %.60q (%d bytes)", how, d.EventID, d.Body, len(d.Body), w, len(w))
			}
		}
	}
	// Pending, 64 at a time, by seq and by due time.
	for _, wh := range []string{"erp", "crm"} {
		all, err := s.Pending(ctx, dispatch.PendingQuery{Webhook: wh, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		check("pending "+wh, all)
		seen := 0
		q := dispatch.PendingQuery{Webhook: wh, DueBy: T0.Add(time.Hour), Limit: 64}
		for {
			page, err := s.Pending(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			check("pending due "+wh, page)
			seen += len(page)
			q.AfterNextAt, q.AfterSeq = page[len(page)-1].NextAt, page[len(page)-1].Seq
		}
		if seen != len(all) || seen == 0 {
			t.Errorf("pending due of %s, 64 at a time: %d deliveries, want %d", wh, seen, len(all))
		}
	}
	// List, in pages, and Get of each.
	listed := 0
	for f := (dispatch.Filter{Limit: 100}); ; {
		page, err := s.List(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		check("list", page)
		listed += len(page)
		f.AfterSeq = page[len(page)-1].Seq
	}
	if listed != n+1 {
		t.Errorf("listed %d deliveries, want %d", listed, n+1)
	}
	for _, d := range ds {
		got, _ := get(t, s, d.ID)
		check("get", []dispatch.Delivery{got})
	}
	// Writebacks, Redeliver, Rerender.
	var rs []dispatch.Result
	for i, d := range ds {
		switch {
		case i%4 == 0:
			r := ok(d.ID, T0)
			r.Writeback = &dispatch.Response{Status: 200}
			rs = append(rs, r)
		case i%4 == 1:
			rs = append(rs, dispatch.Result{Attempt: dispatch.Attempt{DeliveryID: d.ID, N: 1, At: T0, Status: 500}, Status: dispatch.StatusDead, Attempts: 1})
		case i%4 == 2:
			rs = append(rs, ok(d.ID, T0))
		}
	}
	if err := s.Record(ctx, rs); err != nil {
		t.Fatal(err)
	}
	wbs, err := s.Writebacks(ctx, 1000)
	if err != nil || len(wbs) != n/4 {
		t.Fatalf("writebacks: %d (err %v), want %d", len(wbs), err, n/4)
	}
	check("writebacks", wbs)
	redone, err := s.Redeliver(ctx, nil, dispatch.Filter{Status: dispatch.StatusDead}, T0, "test")
	if err != nil || len(redone) != n/4 {
		t.Fatalf("redeliver: %d (err %v), want %d", len(redone), err, n/4)
	}
	for _, id := range redone {
		got, _ := get(t, s, id)
		check("get after redeliver", []dispatch.Delivery{got})
	}
	redelivered, err := s.Pending(ctx, dispatch.PendingQuery{Webhook: "erp", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	check("pending after redeliver", redelivered)
	rerendered := ds[2].ID
	req := dispatch.RenderedRequest{Method: "POST", URL: "http://x/", ContentType: "application/json", Body: []byte(`{"new":1}`), From: "0-1-1"}
	if err := s.Rerender(ctx, rerendered, req, T0, "test"); err != nil {
		t.Fatal(err)
	}
	want[rerendered] = req.Body
	got, _ := get(t, s, rerendered)
	check("get after rerender", []dispatch.Delivery{got})
	// Prune the finished ones (ok, writeback done): the rest read the same.
	for _, d := range wbs {
		if err := s.FinishWriteback(ctx, d.ID, "ok", "", T0); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Record(ctx, []dispatch.Result{ok(rerendered, T0)}); err != nil {
		t.Fatal(err)
	}
	pruned, err := s.Prune(ctx, T0.Add(time.Hour))
	if err != nil || pruned != n/2 {
		t.Fatalf("pruned %d (err %v), want %d", pruned, err, n/2)
	}
	left, err := s.List(ctx, dispatch.Filter{Limit: 1000})
	if err != nil || len(left) != n/2+1 {
		t.Fatalf("after prune: %d deliveries (err %v), want %d", len(left), err, n/2+1)
	}
	check("list after prune", left)
	for _, d := range left {
		got, _ := get(t, s, d.ID)
		check("get after prune", []dispatch.Delivery{got})
	}
	// A pruned id enqueued again reads its new body.
	again := ds[0]
	again.Body = []byte(`{"again":true}`)
	want[again.ID] = again.Body
	batch := []dispatch.NewDelivery{again}
	for i := range 40 {
		d := ND(fmt.Sprintf("blk-again%d", i), "erp")
		d.Body = body(n + i)
		want[d.ID] = d.Body
		batch = append(batch, d)
	}
	if got, err := s.Commit(ctx, CP(3), batch); err != nil || got != len(batch) {
		t.Fatalf("commit after prune: n=%d err=%v", got, err)
	}
	for _, d := range batch {
		got, _ := get(t, s, d.ID)
		check("get after prune and commit", []dispatch.Delivery{got})
	}
	// Pruning everything leaves nothing to read, and nothing broken.
	all, err := s.List(ctx, dispatch.Filter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	rs = rs[:0]
	for _, d := range all {
		if d.Status == dispatch.StatusPending {
			rs = append(rs, ok(d.ID, T0))
		}
	}
	if err := s.Record(ctx, rs); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Prune(ctx, T0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if left, err := s.List(ctx, dispatch.Filter{Limit: 1000}); err != nil || len(left) != 0 {
		t.Errorf("after pruning all: %d deliveries (err %v)", len(left), err)
	}
}

func testCheckpoint(t *testing.T, s dispatch.Store) {
	ts := time.Date(2026, 11, 23, 9, 59, 58, 987654321, time.FixedZone("CET", 3600))
	tests := []cdc.Checkpoint{
		{Flavor: "mariadb", File: "mysql-bin.000001", Pos: 4, Timestamp: ts},
		{Flavor: "mariadb", File: "mysql-bin.000042", Pos: 1<<32 - 1, GTIDSet: "0-1-1000,1-2-77,5-100-123456789", Timestamp: ts},
		{Flavor: "mysql", File: "binlog.000007", Pos: 157,
			GTIDSet: "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:11-18,4e11fa47-71ca-11e1-9e33-c80aa9429562:1-27", Timestamp: ts},
		{Flavor: "mariadb", GTIDSet: "0-1-5"},
	}
	for i, want := range tests {
		if _, err := s.Commit(ctx, want, nil); err != nil {
			t.Fatalf("commit checkpoint %d: %v", i, err)
		}
		got, found, err := s.Checkpoint(ctx)
		if err != nil || !found {
			t.Fatalf("checkpoint %d: found=%v err=%v", i, found, err)
		}
		if got.Flavor != want.Flavor || got.File != want.File || got.Pos != want.Pos || got.GTIDSet != want.GTIDSet || !got.Timestamp.Equal(want.Timestamp) {
			t.Errorf("checkpoint %d = %+v, want %+v", i, got, want)
		}
	}
}

func testPending(t *testing.T, s dispatch.Store) {
	// Enqueue order a, b, c, d; due order c, a, d (b is later).
	a, b, c, d := ND("a", "erp"), ND("b", "erp"), ND("c", "erp"), ND("d", "erp")
	a.NextAt = T0.Add(2 * time.Second)
	b.NextAt = T0.Add(time.Hour)
	c.NextAt = T0
	d.NextAt = T0.Add(2 * time.Second)
	other := ND("a", "crm")
	sub := ND("a", dispatch.SubscriptionWebhook)
	sub.ID, sub.Subscription = dispatch.DeliveryID(time.Time{}, "a", dispatch.SubscriptionWebhook, "sub_1"), "sub_1"
	sub2 := ND("a", dispatch.SubscriptionWebhook)
	sub2.ID, sub2.Subscription = dispatch.DeliveryID(time.Time{}, "a", dispatch.SubscriptionWebhook, "sub_2"), "sub_2"
	done, dead := ND("done", "erp"), ND("dead", "erp")
	done.NextAt, dead.NextAt = T0.Add(-time.Hour), T0.Add(-time.Hour)
	commit(t, s, done, a, b, c, d, other, sub, sub2, dead)
	if err := s.Record(ctx, []dispatch.Result{ok(done.ID, T0),
		{Attempt: dispatch.Attempt{DeliveryID: dead.ID, N: 1, At: T0, Status: 500}, Status: dispatch.StatusDead, Attempts: 1}}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		q    dispatch.PendingQuery
		want []dispatch.NewDelivery
	}{
		{"due by t0+2s, due order then seq", dispatch.PendingQuery{Webhook: "erp", DueBy: T0.Add(2 * time.Second), Limit: 10}, []dispatch.NewDelivery{c, a, d}},
		{"due exactly at next_at", dispatch.PendingQuery{Webhook: "erp", DueBy: T0, Limit: 10}, []dispatch.NewDelivery{c}},
		{"due before anything", dispatch.PendingQuery{Webhook: "erp", DueBy: T0.Add(-time.Nanosecond), Limit: 10}, nil},
		{"due, limited", dispatch.PendingQuery{Webhook: "erp", DueBy: T0.Add(time.Hour), Limit: 2}, []dispatch.NewDelivery{c, a}},
		{"all pending in seq order", dispatch.PendingQuery{Webhook: "erp", Limit: 10}, []dispatch.NewDelivery{a, b, c, d}},
		{"all pending, limited", dispatch.PendingQuery{Webhook: "erp", Limit: 3}, []dispatch.NewDelivery{a, b, c}},
		{"default limit", dispatch.PendingQuery{Webhook: "erp"}, []dispatch.NewDelivery{a, b, c, d}},
		{"another webhook", dispatch.PendingQuery{Webhook: "crm", DueBy: T0, Limit: 10}, []dispatch.NewDelivery{other}},
		{"a subscription", dispatch.PendingQuery{Webhook: dispatch.SubscriptionWebhook, Subscription: "sub_2", Limit: 10}, []dispatch.NewDelivery{sub2}},
		{"unknown queue", dispatch.PendingQuery{Webhook: "nope", Limit: 10}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Pending(ctx, tt.q)
			if err != nil {
				t.Fatal(err)
			}
			want := []string{}
			for _, d := range tt.want {
				want = append(want, d.ID)
			}
			if !slices.Equal(IDs(got), want) {
				t.Errorf("pending = %v, want %v", IDs(got), want)
			}
		})
	}
	// Reading on from a position: due order c, a, d (a and d due at the
	// same instant, so seq breaks the tie).
	due, err := s.Pending(ctx, dispatch.PendingQuery{Webhook: "erp", DueBy: T0.Add(2 * time.Second), Limit: 10})
	if err != nil || len(due) != 3 {
		t.Fatalf("due rows: %v, err %v", IDs(due), err)
	}
	for i, want := range [][]string{{a.ID, d.ID}, {d.ID}, {}} {
		got, err := s.Pending(ctx, dispatch.PendingQuery{Webhook: "erp", DueBy: T0.Add(2 * time.Second), Limit: 10,
			AfterNextAt: due[i].NextAt, AfterSeq: due[i].Seq})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(IDs(got), want) {
			t.Errorf("pending after %s = %v, want %v", due[i].ID, IDs(got), want)
		}
	}
}

// testRecordBySeq records results that carry the delivery's seq, as the
// dispatcher's do: they land on that delivery and no other.
func testRecordBySeq(t *testing.T, s dispatch.Store) {
	a, b := ND("a", "erp"), ND("b", "erp")
	commit(t, s, a, b)
	rows, err := s.Pending(ctx, dispatch.PendingQuery{Webhook: "erp", Limit: 10})
	if err != nil || len(rows) != 2 || rows[1].ID != b.ID {
		t.Fatalf("pending: %v, err %v", IDs(rows), err)
	}
	r := ok(b.ID, T0)
	r.Attempt.DeliverySeq = rows[1].Seq
	if err := s.Record(ctx, []dispatch.Result{r}); err != nil {
		t.Fatal(err)
	}
	gb, atts, err := s.Get(ctx, b.ID)
	if err != nil || gb.Status != dispatch.StatusOK || len(atts) != 1 || atts[0].Status != 200 {
		t.Fatalf("b after its result: status %s, attempts %+v, err %v", gb.Status, atts, err)
	}
	ga, atts, err := s.Get(ctx, a.ID)
	if err != nil || ga.Status != dispatch.StatusPending || len(atts) != 0 {
		t.Fatalf("a after b's result: status %s, attempts %+v, err %v", ga.Status, atts, err)
	}
}

// testRecordBatch records one batch larger than a statement's worth
// (SQLite writes 64 rows a statement, MariaDB 500 … both split it), mixing
// results with and without the delivery's seq and with and without a
// writeback, and deliveries with several results: each delivery ends as
// its results, one by one in order, leave it (the last decides) and the
// log keeps every attempt, in order. A result for a delivery that does
// not exist changes nothing.
func testRecordBatch(t *testing.T, s dispatch.Store) {
	const n = 150
	var ds []dispatch.NewDelivery
	for i := range n {
		ds = append(ds, ND(fmt.Sprintf("batch%d", i), "erp"))
	}
	commit(t, s, ds...)
	rows, err := s.Pending(ctx, dispatch.PendingQuery{Webhook: "erp", Limit: n})
	if err != nil || len(rows) != n {
		t.Fatalf("pending: %d, err %v", len(rows), err)
	}
	at := T0.Add(time.Second)
	res := func(i, attempt int, st dispatch.Status, bySeq bool) dispatch.Result {
		r := dispatch.Result{Attempt: dispatch.Attempt{DeliveryID: rows[i].ID, N: attempt, Kind: dispatch.KindAttempt, At: at,
			Duration: time.Duration(attempt) * time.Millisecond, Status: 200}, Status: st, Attempts: attempt}
		if bySeq {
			r.Attempt.DeliverySeq = rows[i].Seq
		}
		return r
	}
	retry := func(r dispatch.Result) dispatch.Result {
		r.Status, r.Attempt.Status, r.Attempt.Error, r.NextAt = dispatch.StatusPending, 503, fmt.Sprintf("http 503 (%d)", r.Attempts), at.Add(time.Hour)
		return r
	}
	wb := func(r dispatch.Result, body string) dispatch.Result {
		r.Writeback = &dispatch.Response{Status: 200, Body: []byte(body)}
		return r
	}
	var rs []dispatch.Result
	for i := range n {
		rs = append(rs, res(i, 1, dispatch.StatusOK, i%3 != 0))
	}
	// Deliveries with more results, spread through the batch, by id
	// first, then by seq (and 10 by id again): 5 retried then ok; 6
	// retried twice; 7 ok with a writeback after a retry; 8 and 9 ok with
	// a writeback (9 by id); 10 retried, then ok with a writeback, a
	// second time with another. (Not here: a first result by seq and a
	// later one by id only, which mysqlstore's Record leaves unapplied.)
	rs[5] = retry(res(5, 1, "", false))
	rs[6] = retry(res(6, 1, "", false))
	rs[7] = retry(res(7, 1, "", false))
	rs[8] = wb(res(8, 1, dispatch.StatusOK, true), `{"id":8}`)
	rs[9] = wb(res(9, 1, dispatch.StatusOK, false), `{"id":9}`)
	rs[10] = retry(res(10, 1, "", false))
	rs = append(rs[:70], append([]dispatch.Result{res(5, 2, dispatch.StatusOK, true), retry(res(6, 2, "", true)),
		wb(res(7, 2, dispatch.StatusOK, true), `{"id":7}`), wb(res(10, 2, dispatch.StatusOK, true), `{"id":10,"try":2}`)}, rs[70:]...)...)
	gone := res(0, 1, dispatch.StatusOK, false)
	gone.Attempt.DeliveryID = "msg_no_such_delivery"
	rs = append(rs, wb(res(10, 3, dispatch.StatusOK, false), `{"id":10,"try":3}`), gone)
	if err := s.Record(ctx, rs); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		d, log := get(t, s, rows[i].ID)
		want := dispatch.Delivery{Status: dispatch.StatusOK, Attempts: 1, LastStatus: 200, UpdatedAt: at.Add(time.Millisecond)}
		var wantBody string
		wantNext := d.NextAt // not set by a final result
		switch i {
		case 5:
			want.Attempts, want.UpdatedAt = 2, at.Add(2*time.Millisecond)
		case 6:
			want = dispatch.Delivery{Status: dispatch.StatusPending, Attempts: 2, LastStatus: 503, LastError: "http 503 (2)",
				UpdatedAt: at.Add(2 * time.Millisecond)}
			wantNext = at.Add(time.Hour)
		case 7:
			want.Attempts, want.UpdatedAt, wantBody = 2, at.Add(2*time.Millisecond), `{"id":7}`
		case 8, 9:
			wantBody = fmt.Sprintf(`{"id":%d}`, i)
		case 10:
			want.Attempts, want.UpdatedAt, wantBody = 3, at.Add(3*time.Millisecond), `{"id":10,"try":3}`
		}
		if d.Status != want.Status || d.Attempts != want.Attempts || d.LastStatus != want.LastStatus || d.LastError != want.LastError ||
			!d.UpdatedAt.Equal(want.UpdatedAt) || !d.NextAt.Equal(wantNext) {
			t.Errorf("delivery %d: status %s attempts %d last %d %q updated %v next %v; want %s %d %d %q %v %v", i,
				d.Status, d.Attempts, d.LastStatus, d.LastError, d.UpdatedAt, d.NextAt,
				want.Status, want.Attempts, want.LastStatus, want.LastError, want.UpdatedAt, wantNext)
		}
		switch {
		case wantBody == "" && (d.Writeback != "" || d.Response != nil):
			t.Errorf("delivery %d: writeback %q response %+v, want none", i, d.Writeback, d.Response)
		case wantBody != "" && (d.Writeback != dispatch.WritebackPending || d.Response == nil || string(d.Response.Body) != wantBody):
			t.Errorf("delivery %d: writeback %q response %+v, want pending with %s", i, d.Writeback, d.Response, wantBody)
		}
		if len(log) != want.Attempts {
			t.Errorf("delivery %d: %d log entries, want %d", i, len(log), want.Attempts)
			continue
		}
		for k, l := range log {
			if l.N != k+1 || l.DeliveryID != rows[i].ID {
				t.Errorf("delivery %d: log entry %d is attempt %d of %s", i, k, l.N, l.DeliveryID)
			}
		}
	}
}

func testNextDue(t *testing.T, s dispatch.Store) {
	if _, found, err := s.NextDue(ctx, "erp", "", T0); err != nil || found {
		t.Fatalf("next due of an empty queue: found=%v err=%v", found, err)
	}
	a, b, c, d := ND("a", "erp"), ND("b", "erp"), ND("c", "erp"), ND("d", "erp")
	a.NextAt, b.NextAt, c.NextAt, d.NextAt = T0.Add(time.Minute), T0.Add(time.Second), T0.Add(-time.Hour), T0.Add(-time.Minute)
	commit(t, s, a, b, c, d)
	if err := s.Record(ctx, []dispatch.Result{ok(c.ID, T0)}); err != nil {
		t.Fatal(err)
	}
	// d is pending and due: it does not hide b, the next one to come.
	next, found, err := s.NextDue(ctx, "erp", "", T0)
	if err != nil || !found || !next.Equal(b.NextAt) {
		t.Errorf("next due after T0 = %v %v (err %v), want %v (due and finished ones ignored)", next, found, err, b.NextAt)
	}
	if next, found, _ := s.NextDue(ctx, "erp", "", b.NextAt); !found || !next.Equal(a.NextAt) {
		t.Errorf("next due after b = %v %v, want %v (strictly after)", next, found, a.NextAt)
	}
	if next, found, _ := s.NextDue(ctx, "erp", "", T0.Add(-2*time.Hour)); !found || !next.Equal(d.NextAt) {
		t.Errorf("next due after T0-2h = %v %v, want %v", next, found, d.NextAt)
	}
	if _, found, _ := s.NextDue(ctx, "erp", "", a.NextAt); found {
		t.Errorf("next due after the last one found")
	}
	if _, found, _ := s.NextDue(ctx, "erp", "sub_1", T0); found {
		t.Errorf("next due of another queue found")
	}
}

func testRecord(t *testing.T, s dispatch.Store) {
	a, b, c := ND("a", "erp"), ND("b", "erp"), ND("c", "erp")
	commit(t, s, a, b, c)
	if err := s.Record(ctx, nil); err != nil {
		t.Fatalf("record nothing: %v", err)
	}
	resp := &dispatch.Response{Status: 201, Headers: http.Header{"Location": {"/deals/7"}}, Body: []byte(`{"id":7}`)}
	retryAt := T0.Add(30 * time.Second)
	err := s.Record(ctx, []dispatch.Result{
		{Attempt: dispatch.Attempt{DeliveryID: a.ID, N: 1, Kind: dispatch.KindAttempt, At: T0, Duration: 5 * time.Millisecond,
			Method: "POST", URL: "http://x/", Status: 201, RequestHeaders: map[string][]string{"Authorization": {send.Redacted}},
			RequestBody: []byte(`{"a":1}`), ResponseHeaders: map[string][]string{"Content-Type": {"application/json"}}, ResponseBody: []byte(`{"id":7}`)},
			Status: dispatch.StatusOK, Attempts: 1, Writeback: resp},
		// No kind: stored as an attempt.
		{Attempt: dispatch.Attempt{DeliveryID: b.ID, N: 1, At: T0, Duration: time.Second, Status: 503, Error: "http 503"},
			Status: dispatch.StatusPending, Attempts: 1, NextAt: retryAt},
		{Attempt: dispatch.Attempt{DeliveryID: c.ID, N: 1, At: T0, Error: "dial tcp: connection refused"}, Status: dispatch.StatusDead, Attempts: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	got, log := get(t, s, a.ID)
	if got.Status != dispatch.StatusOK || got.Attempts != 1 || got.LastStatus != 201 || got.Writeback != dispatch.WritebackPending ||
		!got.UpdatedAt.Equal(T0.Add(5*time.Millisecond)) {
		t.Errorf("after success: %+v", got)
	}
	if got.Response == nil || !reflect.DeepEqual(*got.Response, *resp) {
		t.Errorf("kept response = %+v, want %+v", got.Response, resp)
	}
	if len(log) != 1 {
		t.Fatalf("log = %+v, want one attempt", log)
	}
	l := log[0]
	if l.DeliveryID != a.ID || l.N != 1 || l.Kind != dispatch.KindAttempt || !l.At.Equal(T0) || l.Duration != 5*time.Millisecond ||
		l.Method != "POST" || l.URL != "http://x/" || l.Status != 201 || string(l.RequestBody) != `{"a":1}` || string(l.ResponseBody) != `{"id":7}` ||
		l.RequestHeaders["Authorization"][0] != send.Redacted || l.ResponseHeaders["Content-Type"][0] != "application/json" {
		t.Errorf("log entry = %+v", l)
	}

	got, log = get(t, s, b.ID)
	if got.Status != dispatch.StatusPending || got.Attempts != 1 || !got.NextAt.Equal(retryAt) || got.LastStatus != 503 ||
		got.LastError != "http 503" || got.Writeback != "" || got.Response != nil {
		t.Errorf("after a retryable failure: %+v", got)
	}
	if len(log) != 1 || log[0].Kind != dispatch.KindAttempt || log[0].Error != "http 503" {
		t.Errorf("log = %+v", log)
	}
	if due, _ := s.Pending(ctx, dispatch.PendingQuery{Webhook: "erp", DueBy: retryAt.Add(-time.Nanosecond)}); len(due) != 0 {
		t.Errorf("retry due early: %v", IDs(due))
	}
	// A second attempt appends to the log, in order, and clears the error.
	if err := s.Record(ctx, []dispatch.Result{{Attempt: dispatch.Attempt{DeliveryID: b.ID, N: 2, At: retryAt, Status: 200},
		Status: dispatch.StatusOK, Attempts: 2}}); err != nil {
		t.Fatal(err)
	}
	got, log = get(t, s, b.ID)
	if got.Status != dispatch.StatusOK || got.Attempts != 2 || got.LastError != "" || got.LastStatus != 200 || got.Writeback != "" {
		t.Errorf("after the second attempt: %+v", got)
	}
	if len(log) != 2 || log[0].N != 1 || log[1].N != 2 {
		t.Errorf("log = %+v, want attempts 1, 2", log)
	}
	got, _ = get(t, s, c.ID)
	if got.Status != dispatch.StatusDead || got.LastStatus != 0 || got.LastError != "dial tcp: connection refused" {
		t.Errorf("dead: %+v", got)
	}
}

func testWritebacks(t *testing.T, s dispatch.Store) {
	a, b, c := ND("a", "erp"), ND("b", "erp"), ND("c", "erp")
	commit(t, s, a, b, c)
	resp := &dispatch.Response{Status: 200, Body: []byte(`{"n":1}`)}
	var rs []dispatch.Result
	for _, d := range []dispatch.NewDelivery{c, a, b} {
		r := ok(d.ID, T0)
		if d.ID != b.ID {
			r.Writeback = resp
		}
		rs = append(rs, r)
	}
	if err := s.Record(ctx, rs); err != nil {
		t.Fatal(err)
	}
	wbs, err := s.Writebacks(ctx, 10)
	if err != nil || !slices.Equal(IDs(wbs), []string{a.ID, c.ID}) {
		t.Fatalf("writebacks = %v (err %v), want a, c in seq order", IDs(wbs), err)
	}
	if wbs[0].Response == nil || string(wbs[0].Response.Body) != `{"n":1}` {
		t.Errorf("writeback response = %+v", wbs[0].Response)
	}
	if wbs, _ := s.Writebacks(ctx, 1); !slices.Equal(IDs(wbs), []string{a.ID}) {
		t.Errorf("writebacks limit 1 = %v", IDs(wbs))
	}
	// A failed try that will be retried stays pending with its error.
	if err := s.FinishWriteback(ctx, a.ID, dispatch.WritebackPending, "primary unreachable", T0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishWriteback(ctx, c.ID, dispatch.WritebackFailed, "no such row", T0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if wbs, _ := s.Writebacks(ctx, 10); !slices.Equal(IDs(wbs), []string{a.ID}) {
		t.Errorf("writebacks after a retry and a failure = %v, want a", IDs(wbs))
	}
	got, log := get(t, s, a.ID)
	if got.Writeback != dispatch.WritebackPending || got.WritebackError != "primary unreachable" {
		t.Errorf("a: writeback %q error %q", got.Writeback, got.WritebackError)
	}
	if last := log[len(log)-1]; last.Kind != dispatch.KindWriteback || last.Note != "writeback pending" || last.Error != "primary unreachable" ||
		!last.At.Equal(T0.Add(time.Second)) {
		t.Errorf("writeback log entry = %+v", last)
	}
	if err := s.FinishWriteback(ctx, a.ID, dispatch.WritebackDone, "", T0.Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	got, log = get(t, s, a.ID)
	if got.Writeback != dispatch.WritebackDone || got.WritebackError != "" || len(log) != 3 || log[2].Note != "writeback done" {
		t.Errorf("after done: writeback %q error %q log %+v", got.Writeback, got.WritebackError, log)
	}
	if got, _ := get(t, s, c.ID); got.Writeback != dispatch.WritebackFailed || got.WritebackError != "no such row" {
		t.Errorf("c: writeback %q error %q", got.Writeback, got.WritebackError)
	}
	if wbs, _ := s.Writebacks(ctx, 10); len(wbs) != 0 {
		t.Errorf("writebacks left: %v", IDs(wbs))
	}
	if err := s.FinishWriteback(ctx, "msg_nope", dispatch.WritebackDone, "", T0); !errors.Is(err, dispatch.ErrNotFound) {
		t.Errorf("finish writeback of an unknown delivery: %v, want ErrNotFound", err)
	}
}

func testList(t *testing.T, s dispatch.Store) {
	var ds []dispatch.NewDelivery
	for i := 0; i < 105; i++ {
		d := ND(fmt.Sprintf("e%03d", i), "erp")
		if i%2 == 1 {
			d = ND(fmt.Sprintf("e%03d", i), "crm")
		}
		d.CreatedAt = T0.Add(time.Duration(i) * time.Second)
		ds = append(ds, d)
	}
	sub := ND("s", dispatch.SubscriptionWebhook)
	sub.ID, sub.Subscription = dispatch.DeliveryID(time.Time{}, "s", dispatch.SubscriptionWebhook, "sub_1"), "sub_1"
	ds = append(ds, sub)
	commit(t, s, ds...)
	if err := s.Record(ctx, []dispatch.Result{ok(ds[4].ID, T0), ok(ds[5].ID, T0)}); err != nil {
		t.Fatal(err)
	}
	rev := func(idx ...int) []string {
		out := []string{}
		for _, i := range idx {
			out = append(out, ds[i].ID)
		}
		return out
	}
	all, err := s.List(ctx, dispatch.Filter{Limit: 1000})
	if err != nil || len(all) != 106 || all[0].ID != sub.ID || all[105].ID != ds[0].ID {
		t.Fatalf("list all: %d (err %v), want 106 newest first", len(all), err)
	}
	for i := 1; i < len(all); i++ {
		if all[i].Seq >= all[i-1].Seq {
			t.Fatalf("list not newest first at %d", i)
		}
	}
	tests := []struct {
		name string
		f    dispatch.Filter
		want []string
	}{
		{"default limit", dispatch.Filter{}, nil},
		{"limit", dispatch.Filter{Limit: 3}, []string{sub.ID, ds[104].ID, ds[103].ID}},
		{"webhook", dispatch.Filter{Webhook: "crm", Limit: 2}, rev(103, 101)},
		{"status", dispatch.Filter{Status: dispatch.StatusOK}, rev(5, 4)},
		{"webhook and status", dispatch.Filter{Webhook: "crm", Status: dispatch.StatusOK}, rev(5)},
		{"subscription", dispatch.Filter{Subscription: "sub_1"}, []string{sub.ID}},
		{"since", dispatch.Filter{Webhook: "erp", Since: T0.Add(100 * time.Second)}, rev(104, 102, 100)},
		{"page after", dispatch.Filter{Webhook: "erp", AfterSeq: all[2].Seq, Limit: 2}, rev(102, 100)},
		{"last page", dispatch.Filter{AfterSeq: all[104].Seq}, rev(0)},
		{"nothing", dispatch.Filter{Webhook: "nope"}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.List(ctx, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if tt.want == nil {
				if len(got) != 100 || got[0].ID != sub.ID {
					t.Errorf("list with the default limit: %d deliveries", len(got))
				}
				return
			}
			if !slices.Equal(IDs(got), tt.want) {
				t.Errorf("list = %v, want %v", IDs(got), tt.want)
			}
		})
	}
}

// testListSearch checks the admin page's searches: an absolute time range,
// a record key (exact or a prefix), an event id, a delivery id, and one
// search box for the three; each also selects what a bulk re-run takes.
func testListSearch(t *testing.T, s dispatch.Store) {
	mk := func(event, webhook, key string, sec int) dispatch.NewDelivery {
		d := ND(event, webhook)
		d.Key, d.CreatedAt = key, T0.Add(time.Duration(sec)*time.Second)
		return d
	}
	a := mk("0-1-10:0", "erp", "crm.vtiger_potential:101", 0)
	b := mk("0-1-10:0", "crm", "crm.vtiger_potential:101", 0)
	c := mk("0-1-11:0", "erp", "crm.vtiger_potential:1010", 60)
	d := mk("0-1-12:0", "erp", "crm.Vtiger_potential:7", 120)
	e := mk("0-1-13:0", "erp", "crm.vtiger_account:7", 180)
	f := mk("0-1-14:0", "erp", "crm.x_y:1", 240)
	g := mk("0-1-15:0", "erp", "crm.xzy:1", 240)
	commit(t, s, a, b, c, d, e, f, g)
	at := func(sec int) time.Time { return T0.Add(time.Duration(sec) * time.Second) }
	tests := []struct {
		name string
		f    dispatch.Filter
		want []dispatch.NewDelivery
	}{
		{"range", dispatch.Filter{Since: at(60), Until: at(180)}, []dispatch.NewDelivery{d, c}},
		{"until excludes its instant", dispatch.Filter{Until: at(60)}, []dispatch.NewDelivery{b, a}},
		{"until with nanoseconds", dispatch.Filter{Until: T0.Add(1)}, []dispatch.NewDelivery{b, a}},
		{"empty range", dispatch.Filter{Since: at(180), Until: at(180)}, nil},
		{"key", dispatch.Filter{Key: "crm.vtiger_potential:101"}, []dispatch.NewDelivery{b, a}},
		{"key with webhook", dispatch.Filter{Key: "crm.vtiger_potential:101", Webhook: "erp"}, []dispatch.NewDelivery{a}},
		{"key prefix", dispatch.Filter{Key: "crm.vtiger_potential:*"}, []dispatch.NewDelivery{c, b, a}},
		{"key prefix is case-sensitive", dispatch.Filter{Key: "crm.Vtiger_*"}, []dispatch.NewDelivery{d}},
		{"key prefix has no wildcards", dispatch.Filter{Key: "crm.x_*"}, []dispatch.NewDelivery{f}},
		{"key is not a prefix", dispatch.Filter{Key: "crm.vtiger_potential:10"}, nil},
		{"event id", dispatch.Filter{EventID: "0-1-10:0"}, []dispatch.NewDelivery{b, a}},
		{"id", dispatch.Filter{ID: c.ID}, []dispatch.NewDelivery{c}},
		{"search by key", dispatch.Filter{Search: "crm.vtiger_account:7"}, []dispatch.NewDelivery{e}},
		{"search by event id", dispatch.Filter{Search: "0-1-11:0"}, []dispatch.NewDelivery{c}},
		{"search by id", dispatch.Filter{Search: d.ID}, []dispatch.NewDelivery{d}},
		{"search finds nothing", dispatch.Filter{Search: "crm.vtiger_account"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.List(ctx, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			want := []string{}
			for _, d := range tt.want {
				want = append(want, d.ID)
			}
			if !slices.Equal(IDs(got), want) {
				t.Errorf("list %+v = %v, want %v", tt.f, IDs(got), want)
			}
		})
	}
	// A bulk re-run takes the same filter.
	if err := s.Record(ctx, []dispatch.Result{ok(a.ID, T0), ok(b.ID, T0), ok(c.ID, T0)}); err != nil {
		t.Fatal(err)
	}
	done, err := s.Redeliver(ctx, nil, dispatch.Filter{Status: dispatch.StatusOK, Key: "crm.vtiger_potential:101"}, at(300), "test")
	if err != nil || !slices.Equal(done, []string{a.ID, b.ID}) {
		t.Errorf("redeliver by key = %v (err %v), want a, b", done, err)
	}
}

func testGet(t *testing.T, s dispatch.Store) {
	if _, _, err := s.Get(ctx, "msg_nope"); !errors.Is(err, dispatch.ErrNotFound) {
		t.Errorf("get unknown: %v, want ErrNotFound", err)
	}
	a := ND("a", "erp")
	commit(t, s, a)
	// Log entries come back in time order, ties in insertion order.
	for n := 1; n <= 3; n++ {
		at := T0.Add(time.Duration(n/3) * time.Second)
		r := dispatch.Result{Attempt: dispatch.Attempt{DeliveryID: a.ID, N: n, At: at, Status: 500 + n}, Status: dispatch.StatusPending, Attempts: n, NextAt: at}
		if err := s.Record(ctx, []dispatch.Result{r}); err != nil {
			t.Fatal(err)
		}
	}
	_, log := get(t, s, a.ID)
	var ns []int
	for _, l := range log {
		ns = append(ns, l.N)
	}
	if !slices.Equal(ns, []int{1, 2, 3}) || log[2].Status != 503 {
		t.Errorf("log order = %v, want 1 2 3", ns)
	}
}

func testRedeliver(t *testing.T, s dispatch.Store) {
	a, b, c, d := ND("a", "erp"), ND("b", "erp"), ND("c", "erp"), ND("d", "crm")
	commit(t, s, a, b, c, d)
	dead := func(id string) dispatch.Result {
		return dispatch.Result{Attempt: dispatch.Attempt{DeliveryID: id, N: 1, At: T0, Status: 500, Error: "http 500"}, Status: dispatch.StatusDead, Attempts: 1}
	}
	if err := s.Record(ctx, []dispatch.Result{ok(a.ID, T0), dead(b.ID), dead(d.ID)}); err != nil {
		t.Fatal(err)
	}
	now := T0.Add(time.Minute)
	// An unknown id refuses the whole request.
	if _, err := s.Redeliver(ctx, []string{a.ID, "msg_nope"}, dispatch.Filter{}, now, "test"); !errors.Is(err, dispatch.ErrNotFound) {
		t.Errorf("redeliver with an unknown id: %v, want ErrNotFound", err)
	}
	if got, _ := get(t, s, a.ID); got.Status != dispatch.StatusOK {
		t.Errorf("a failed redeliver changed a: %s", got.Status)
	}
	// By ids: the pending one is left alone.
	done, err := s.Redeliver(ctx, []string{a.ID, c.ID}, dispatch.Filter{}, now, "alice")
	if err != nil || !slices.Equal(done, []string{a.ID}) {
		t.Fatalf("redeliver a, c = %v (err %v), want a", done, err)
	}
	got, log := get(t, s, a.ID)
	if got.Status != dispatch.StatusPending || got.Attempts != 0 || got.Redelivered != 1 || !got.NextAt.Equal(now) ||
		!got.UpdatedAt.Equal(now) || got.LastError != "" {
		t.Errorf("after redeliver: %+v", got)
	}
	if last := log[len(log)-1]; last.Kind != dispatch.KindRedeliver || last.N != 0 || last.Note != "redelivered by alice at 2026-11-23T10:01:00Z (was ok)" || !last.At.Equal(now) {
		t.Errorf("redeliver note = %+v", last)
	}
	if got, log := get(t, s, c.ID); got.Redelivered != 0 || len(log) != 0 {
		t.Errorf("pending c touched: %+v %+v", got, log)
	}
	// By filter: only non-pending deliveries of the webhook.
	done, err = s.Redeliver(ctx, nil, dispatch.Filter{Webhook: "erp", Status: dispatch.StatusDead}, now, "test")
	if err != nil || !slices.Equal(done, []string{b.ID}) {
		t.Fatalf("redeliver dead of erp = %v (err %v), want b", done, err)
	}
	got, log = get(t, s, b.ID)
	if got.Status != dispatch.StatusPending || got.Attempts != 0 || got.Redelivered != 1 || got.LastError != "" {
		t.Errorf("b after redeliver: %+v", got)
	}
	if last := log[len(log)-1]; last.Note != "redelivered by test at 2026-11-23T10:01:00Z (was dead)" {
		t.Errorf("b redeliver note = %+v", last)
	}
	if got, _ := get(t, s, d.ID); got.Status != dispatch.StatusDead {
		t.Errorf("crm's d redelivered by an erp filter")
	}
	// An empty filter takes every finished delivery, in seq order.
	if err := s.Record(ctx, []dispatch.Result{ok(a.ID, now), ok(c.ID, now)}); err != nil {
		t.Fatal(err)
	}
	done, err = s.Redeliver(ctx, nil, dispatch.Filter{}, now, "test")
	if err != nil || !slices.Equal(done, []string{a.ID, c.ID, d.ID}) {
		t.Fatalf("redeliver all = %v (err %v), want a, c, d", done, err)
	}
	if got, _ := get(t, s, a.ID); got.Redelivered != 2 {
		t.Errorf("a redelivered %d times, want 2", got.Redelivered)
	}
	if done, err := s.Redeliver(ctx, nil, dispatch.Filter{}, now, "test"); err != nil || len(done) != 0 {
		t.Errorf("redeliver with nothing finished = %v (err %v)", done, err)
	}
}

func testRerender(t *testing.T, s dispatch.Store) {
	a, b := ND("a", "erp"), ND("b", "erp")
	a.Headers = map[string]string{"X-Old": "1"}
	commit(t, s, a, b)
	dead := dispatch.Result{Attempt: dispatch.Attempt{DeliveryID: a.ID, N: 1, At: T0, Status: 500, Error: "http 500"},
		Status: dispatch.StatusDead, Attempts: 1}
	if err := s.Record(ctx, []dispatch.Result{dead}); err != nil {
		t.Fatal(err)
	}
	now := T0.Add(time.Minute)
	req := dispatch.RenderedRequest{Method: "PUT", URL: "http://new/a", ContentType: "application/x-www-form-urlencoded",
		Headers: map[string]string{"X-New": "2"}, Body: []byte("a=2"), From: "0-1-42"}
	if err := s.Rerender(ctx, "msg_nope", req, now, "alice"); !errors.Is(err, dispatch.ErrNotFound) {
		t.Errorf("re-render of an unknown id: %v, want ErrNotFound", err)
	}
	// A pending delivery (waiting or in flight) is refused and unchanged.
	if err := s.Rerender(ctx, b.ID, req, now, "alice"); !errors.Is(err, dispatch.ErrPending) {
		t.Errorf("re-render of pending b: %v, want ErrPending", err)
	}
	if got, log := get(t, s, b.ID); got.URL != b.URL || string(got.Body) != string(b.Body) || got.Redelivered != 0 || len(log) != 0 {
		t.Errorf("pending b changed: %+v %+v", got, log)
	}
	if err := s.Rerender(ctx, a.ID, req, now, "alice"); err != nil {
		t.Fatalf("re-render a: %v", err)
	}
	got, log := get(t, s, a.ID)
	if got.Status != dispatch.StatusPending || got.Attempts != 0 || got.Redelivered != 1 || !got.NextAt.Equal(now) ||
		!got.UpdatedAt.Equal(now) || got.LastError != "" {
		t.Errorf("after re-render: %+v", got)
	}
	if got.Method != "PUT" || got.URL != "http://new/a" || got.ContentType != "application/x-www-form-urlencoded" ||
		string(got.Body) != "a=2" || len(got.Headers) != 1 || got.Headers["X-New"] != "2" {
		t.Errorf("stored request after re-render: %s %s %s %v %q", got.Method, got.URL, got.ContentType, got.Headers, got.Body)
	}
	// What identifies the delivery and its event stays.
	if got.EventID != a.EventID || got.Webhook != "erp" || !got.EventTime.Equal(a.EventTime) || got.Key != a.Key {
		t.Errorf("re-render changed the delivery's identity: %+v", got)
	}
	if last := log[len(log)-1]; last.Kind != dispatch.KindRedeliver || last.N != 0 || !last.At.Equal(now) ||
		last.Note != "re-rendered by alice at 2026-11-23T10:01:00Z from binlog 0-1-42 (was dead)" {
		t.Errorf("re-render note = %+v", last)
	}
	// No headers and no body are stored as none.
	if err := s.Record(ctx, []dispatch.Result{ok(a.ID, now)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Rerender(ctx, a.ID, dispatch.RenderedRequest{Method: "GET", URL: "http://new/a?x=1", From: "bin.000001:4"}, now, "bob"); err != nil {
		t.Fatalf("re-render a again: %v", err)
	}
	if got, _ := get(t, s, a.ID); got.Method != "GET" || len(got.Headers) != 0 || len(got.Body) != 0 || got.Redelivered != 2 {
		t.Errorf("second re-render: %s %v %q redelivered %d", got.Method, got.Headers, got.Body, got.Redelivered)
	}
}

func testFail(t *testing.T, s dispatch.Store) {
	sub := func(event, id string) dispatch.NewDelivery {
		d := ND(event, dispatch.SubscriptionWebhook)
		d.ID, d.Subscription = dispatch.DeliveryID(time.Time{}, event, dispatch.SubscriptionWebhook, id), id
		return d
	}
	a, b, c, other, erp := sub("a", "sub_1"), sub("b", "sub_1"), sub("c", "sub_1"), sub("a", "sub_2"), ND("a", "erp")
	commit(t, s, a, b, c, other, erp)
	if err := s.Record(ctx, []dispatch.Result{ok(c.ID, T0)}); err != nil {
		t.Fatal(err)
	}
	now := T0.Add(time.Hour)
	n, err := s.Fail(ctx, dispatch.SubscriptionWebhook, "sub_1", "subscription removed", now)
	if err != nil || n != 2 {
		t.Fatalf("fail sub_1: %d (err %v), want 2", n, err)
	}
	for _, d := range []dispatch.NewDelivery{a, b} {
		got, _ := get(t, s, d.ID)
		if got.Status != dispatch.StatusFailed || got.LastError != "subscription removed" || !got.UpdatedAt.Equal(now) {
			t.Errorf("%s after fail: %+v", d.EventID, got)
		}
	}
	for _, d := range []dispatch.NewDelivery{other, erp} {
		if got, _ := get(t, s, d.ID); got.Status != dispatch.StatusPending {
			t.Errorf("%s %s of another queue failed", d.EventID, d.Subscription)
		}
	}
	if got, _ := get(t, s, c.ID); got.Status != dispatch.StatusOK {
		t.Errorf("finished delivery failed: %s", got.Status)
	}
	if n, err := s.Fail(ctx, dispatch.SubscriptionWebhook, "sub_1", "again", now); err != nil || n != 0 {
		t.Errorf("second fail: %d (err %v), want 0", n, err)
	}
}

func testSubscriptions(t *testing.T, s dispatch.Store) {
	if subs, err := s.Subscriptions(ctx); err != nil || len(subs) != 0 {
		t.Fatalf("fresh subscriptions = %v (err %v)", subs, err)
	}
	s1 := dispatch.Subscription{ID: "sub_b", URL: "https://hooks.example.com/x?a=1&b=ü", Event: "NewOpportunity", CreatedAt: T0}
	s2 := dispatch.Subscription{ID: "sub_a", URL: "https://hooks.example.com/y", Event: "*", CreatedAt: T0}
	s3 := dispatch.Subscription{ID: "sub_0", URL: "https://hooks.example.com/z", Event: "X", CreatedAt: T0.Add(time.Second)}
	for _, sub := range []dispatch.Subscription{s3, s1, s2} {
		if err := s.AddSubscription(ctx, sub); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AddSubscription(ctx, s1); err == nil {
		t.Errorf("adding a subscription id twice succeeded")
	}
	subs, err := s.Subscriptions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Ordered by creation time, then id.
	if len(subs) != 3 || subs[0] != s2 || subs[1] != s1 || subs[2] != s3 {
		t.Fatalf("subscriptions = %+v", subs)
	}
	if !subs[0].CreatedAt.Equal(T0) {
		t.Errorf("created_at = %v", subs[0].CreatedAt)
	}
	if err := s.DeleteSubscription(ctx, "sub_b"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSubscription(ctx, "sub_b"); !errors.Is(err, dispatch.ErrNotFound) {
		t.Errorf("second delete: %v, want ErrNotFound", err)
	}
	if subs, _ := s.Subscriptions(ctx); len(subs) != 2 || subs[0].ID != "sub_a" || subs[1].ID != "sub_0" {
		t.Errorf("after delete: %+v", subs)
	}
}

func testWebhookDisabled(t *testing.T, s dispatch.Store) {
	if m, err := s.DisabledWebhooks(ctx); err != nil || len(m) != 0 {
		t.Fatalf("fresh disabled = %v (err %v)", m, err)
	}
	// Clearing a webhook that was never disabled is fine.
	if err := s.SetWebhookDisabled(ctx, "erp", "", T0); err != nil {
		t.Fatal(err)
	}
	for _, set := range [][2]string{{"erp", "410 Gone"}, {"crm", "410 Gone from crm"}, {"erp", "410 Gone again"}} {
		if err := s.SetWebhookDisabled(ctx, set[0], set[1], T0); err != nil {
			t.Fatal(err)
		}
	}
	if m, _ := s.DisabledWebhooks(ctx); !reflect.DeepEqual(m, map[string]string{"erp": "410 Gone again", "crm": "410 Gone from crm"}) {
		t.Errorf("disabled = %v", m)
	}
	if err := s.SetWebhookDisabled(ctx, "erp", "", T0); err != nil {
		t.Fatal(err)
	}
	if m, _ := s.DisabledWebhooks(ctx); !reflect.DeepEqual(m, map[string]string{"crm": "410 Gone from crm"}) {
		t.Errorf("disabled after enable = %v", m)
	}
}

func testStats(t *testing.T, s dispatch.Store) {
	if st, err := s.Stats(ctx); err != nil || len(st) != 0 {
		t.Fatalf("stats of an empty store = %+v (err %v)", st, err)
	}
	var ds []dispatch.NewDelivery
	for i := 0; i < 5; i++ {
		d := ND(fmt.Sprintf("e%d", i), "erp")
		d.CreatedAt = T0.Add(time.Duration(i) * time.Minute)
		ds = append(ds, d)
	}
	crm := ND("e9", "crm")
	crm.CreatedAt = T0.Add(time.Hour)
	failed := ND("bad", "crm")
	failed.Error = "no url"
	commit(t, s, append(ds, crm, failed)...)
	// erp: e0 ok, e1 dead, e2 e3 e4 pending (oldest e2).
	if err := s.Record(ctx, []dispatch.Result{ok(ds[0].ID, T0), {Attempt: dispatch.Attempt{DeliveryID: ds[1].ID, N: 1, At: T0},
		Status: dispatch.StatusDead, Attempts: 1}}); err != nil {
		t.Fatal(err)
	}
	st, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]dispatch.QueueStat{}
	for _, q := range st {
		got[q.Webhook+"/"+string(q.Status)] = q
	}
	want := map[string]dispatch.QueueStat{
		"erp/pending": {Webhook: "erp", Status: dispatch.StatusPending, Count: 3, OldestPending: ds[2].CreatedAt},
		"erp/dead":    {Webhook: "erp", Status: dispatch.StatusDead, Count: 1},
		"crm/pending": {Webhook: "crm", Status: dispatch.StatusPending, Count: 1, OldestPending: crm.CreatedAt},
		"crm/failed":  {Webhook: "crm", Status: dispatch.StatusFailed, Count: 1},
	}
	if len(got) != len(want) {
		t.Errorf("stats = %+v, want %d rows (ok not counted)", st, len(want))
	}
	for k, w := range want {
		g, found := got[k]
		if !found || g.Count != w.Count || !g.OldestPending.Equal(w.OldestPending) {
			t.Errorf("stats %s = %+v, want %+v", k, g, w)
		}
	}
}

func testPrune(t *testing.T, s dispatch.Store) {
	old, fresh, pending, wb, deadOld := ND("old", "erp"), ND("fresh", "erp"), ND("pending", "erp"), ND("wb", "erp"), ND("deadold", "erp")
	commit(t, s, old, fresh, pending, wb, deadOld)
	wbRes := ok(wb.ID, T0)
	wbRes.Writeback = &dispatch.Response{Status: 200}
	if err := s.Record(ctx, []dispatch.Result{ok(old.ID, T0), ok(fresh.ID, T0.Add(48*time.Hour)), wbRes,
		{Attempt: dispatch.Attempt{DeliveryID: deadOld.ID, N: 1, At: T0}, Status: dispatch.StatusDead, Attempts: 1}}); err != nil {
		t.Fatal(err)
	}
	n, err := s.Prune(ctx, T0.Add(24*time.Hour))
	if err != nil || n != 2 {
		t.Fatalf("pruned %d (err %v), want 2", n, err)
	}
	for id, want := range map[string]bool{old.ID: false, deadOld.ID: false, fresh.ID: true, pending.ID: true, wb.ID: true} {
		_, _, err := s.Get(ctx, id)
		if (err == nil) != want {
			t.Errorf("%s present = %v (err %v), want %v", id, err == nil, err, want)
		}
	}
	// The log of a pruned delivery goes with it: a replayed delivery with
	// the same id starts with an empty log.
	if n, err := s.Commit(ctx, CP(2), []dispatch.NewDelivery{old}); err != nil || n != 1 {
		t.Fatalf("re-enqueue pruned id: n=%d err=%v", n, err)
	}
	if _, log := get(t, s, old.ID); len(log) != 0 {
		t.Errorf("log of a pruned delivery survived: %+v", log)
	}
	if n, err := s.Prune(ctx, T0.Add(24*time.Hour)); err != nil || n != 0 {
		t.Errorf("second prune: %d (err %v), want 0", n, err)
	}
}

// testConcurrent runs the dispatcher's access pattern from several
// goroutines: the committer, queue readers, the recorder and the admin API.
func testConcurrent(t *testing.T, s dispatch.Store) {
	const txs = 40
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 1; i <= txs; i++ {
			ds := []dispatch.NewDelivery{ND(fmt.Sprintf("c%d", i), "erp"), ND(fmt.Sprintf("c%d", i), "crm")}
			if _, err := s.Commit(ctx, CP(uint32(i)), ds); err != nil {
				errs <- fmt.Errorf("commit %d: %w", i, err)
				return
			}
		}
	}()
	for _, wh := range []string{"erp", "crm"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			done := 0
			for try := 0; done < txs && try < 10000; try++ {
				rows, err := s.Pending(ctx, dispatch.PendingQuery{Webhook: wh, DueBy: T0, Limit: 7})
				if err != nil {
					errs <- fmt.Errorf("pending %s: %w", wh, err)
					return
				}
				var rs []dispatch.Result
				for _, d := range rows {
					rs = append(rs, ok(d.ID, T0))
				}
				if err := s.Record(ctx, rs); err != nil {
					errs <- fmt.Errorf("record %s: %w", wh, err)
					return
				}
				done += len(rs)
				if _, err := s.List(ctx, dispatch.Filter{Webhook: wh, Limit: 5}); err != nil {
					errs <- fmt.Errorf("list %s: %w", wh, err)
					return
				}
				if len(rs) == 0 {
					time.Sleep(time.Millisecond)
				}
			}
			if done != txs {
				errs <- fmt.Errorf("%s: %d deliveries recorded, want %d", wh, done, txs)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	st, err := s.Stats(ctx)
	if err != nil || len(st) != 0 {
		t.Errorf("stats after every delivery succeeded = %+v (err %v)", st, err)
	}
	if cp, _, _ := s.Checkpoint(ctx); cp.Pos != txs {
		t.Errorf("checkpoint %d, want %d", cp.Pos, txs)
	}
}

// KillTx is transaction i's deliveries (i%3 of them) in the kill tests: a
// child process commits KillTx(i) with CP(i) for i = 1, 2, … until killed.
func KillTx(i int) []dispatch.NewDelivery {
	var ds []dispatch.NewDelivery
	for j := 0; j < i%3; j++ {
		ds = append(ds, ND(fmt.Sprintf("tx%d:%d:r", i, j), "erp"))
	}
	return ds
}

// CheckAfterKill checks a store whose writer was killed mid-stream
// committing KillTx(i) with CP(i): the stored deliveries are exactly those
// of the transactions up to the checkpoint, and replaying the next ones
// (as the reader does after a restart) inserts each delivery once.
func CheckAfterKill(t *testing.T, s dispatch.Store) {
	t.Helper()
	ctx := context.Background()
	c, ok, err := s.Checkpoint(ctx)
	if err != nil || !ok {
		t.Fatalf("checkpoint after kill: ok=%v err=%v", ok, err)
	}
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
	for i := int(c.Pos) + 1; i <= int(c.Pos)+5; i++ {
		if _, err := s.Commit(ctx, CP(uint32(i)), KillTx(i)); err != nil {
			t.Fatal(err)
		}
		if n, _ := s.Commit(ctx, CP(uint32(i)), KillTx(i)); n != 0 {
			t.Fatalf("replay of tx %d inserted %d", i, n)
		}
	}
}
