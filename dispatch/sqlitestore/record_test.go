package sqlitestore

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rowhook/rowhook/dispatch"
	"github.com/rowhook/rowhook/dispatch/storesql"
)

// TestStore_RecordStoredValues: Record binds the usual values as integers
// or NULL (the status as a number, an empty error or note and the kind
// "attempt" as NULL) and skips the writeback columns in chunks without a
// writeback; what the file holds must be what one UPDATE and one INSERT
// per result with the values as text stored: the same text, the same
// types, NULL only where the value was nil. Batches of 1, 3 and 70
// results (several statement sizes, a chunk mixing plain results and a
// writeback), every status, a note and a custom kind.
func TestStore_RecordStoredValues(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "state.db"))
	var ds []dispatch.NewDelivery
	for i := range 74 {
		ds = append(ds, nd(fmt.Sprintf("v%d", i), "erp"))
	}
	if _, err := s.Commit(ctx, cp(1), ds); err != nil {
		t.Fatal(err)
	}
	at := t0.Add(time.Second)
	hdr := map[string][]string{"Content-Type": {"application/json"}, "Webhook-Signature": {"[redacted]"}, "X-Empty": {}}
	statuses := []dispatch.Status{dispatch.StatusOK, dispatch.StatusPending, dispatch.StatusFailed, dispatch.StatusDead}
	res := func(i int) dispatch.Result {
		r := dispatch.Result{Attempt: dispatch.Attempt{DeliveryID: ds[i].ID, N: 1, At: at, Duration: 1500 * time.Microsecond,
			Method: "POST", URL: "http://x/", Status: 200}, Status: statuses[i%4], Attempts: 1}
		switch i % 5 {
		case 0:
			r.Attempt.Kind, r.Attempt.RequestHeaders, r.Attempt.ResponseHeaders = dispatch.KindAttempt, hdr, map[string][]string{}
			r.Attempt.ResponseBody = []byte{}
		case 1:
			r.Attempt.Error, r.Attempt.Status = "http 503", 503
			r.NextAt = at.Add(time.Minute)
		case 2:
			r.Attempt.Kind, r.Attempt.Note, r.Attempt.N = "redeliver", "by test", 0
		case 3:
			r.Attempt.RequestBody, r.Attempt.ResponseBody = []byte(`{"a":1}`), []byte("ok")
		}
		if i == 40 {
			r.Status = dispatch.StatusOK
			r.Writeback = &dispatch.Response{Status: 200, Body: []byte(`{"id":9}`)}
		}
		return r
	}
	var all []dispatch.Result
	for _, batch := range [][2]int{{0, 1}, {1, 4}, {4, 74}} {
		var rs []dispatch.Result
		for i := batch[0]; i < batch[1]; i++ {
			rs = append(rs, res(i))
		}
		if err := s.Record(ctx, rs); err != nil {
			t.Fatal(err)
		}
		all = append(all, rs...)
	}
	quote := func(v any) string {
		switch v := v.(type) {
		case nil:
			return "NULL"
		case []byte:
			return "blob:" + string(v)
		default:
			return fmt.Sprint(v)
		}
	}
	rows, err := s.r.Query(`SELECT delivery_id, kind, typeof(kind), n, at, duration_us, method, url, request_headers, typeof(request_headers),
		request_body, status, response_headers, response_body, typeof(response_body), error, typeof(error), note, typeof(note) FROM attempts ORDER BY rowid`)
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	for rows.Next() {
		vals := make([]any, 19)
		ptrs := make([]any, 19)
		for j := range vals {
			ptrs[j] = &vals[j]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		a := all[i].Attempt
		kind := a.Kind
		if kind == "" {
			kind = dispatch.KindAttempt
		}
		hj := func(h map[string][]string) string {
			if h == nil {
				return "NULL"
			}
			return string(headersJSON(h).(string))
		}
		bq := func(b []byte) string {
			if b == nil {
				return "NULL"
			}
			return "blob:" + string(b)
		}
		btype := func(b []byte) string {
			if b == nil {
				return "null"
			}
			return "blob"
		}
		want := []string{a.DeliveryID, kind, "text", fmt.Sprint(a.N), fmt.Sprint(at.UnixNano()), "1500", "POST", "http://x/", hj(a.RequestHeaders),
			strings.ToLower(map[bool]string{true: "null", false: "text"}[a.RequestHeaders == nil]), bq(a.RequestBody), fmt.Sprint(a.Status),
			hj(a.ResponseHeaders), bq(a.ResponseBody), btype(a.ResponseBody), a.Error, "text", a.Note, "text"}
		for j := range want {
			if got := quote(vals[j]); got != want[j] {
				t.Errorf("attempt %d column %d = %s, want %s", i, j, got, want[j])
			}
		}
		i++
	}
	rows.Close()
	if i != len(all) {
		t.Fatalf("%d attempts logged, want %d", i, len(all))
	}
	for i, r := range all {
		var st, stType, lastErr, leType, wb string
		var attempts, lastStatus int
		var next, updated int64
		var resp *string
		err := s.r.QueryRow(`SELECT status, typeof(status), attempts, next_at, updated_at, last_status, last_error, typeof(last_error), writeback, response
			FROM deliveries WHERE id = ?`, r.Attempt.DeliveryID).Scan(&st, &stType, &attempts, &next, &updated, &lastStatus, &lastErr, &leType, &wb, &resp)
		if err != nil {
			t.Fatal(err)
		}
		wantWB, wantResp := "", "<nil>"
		if r.Writeback != nil {
			j, err := storesql.JSONText(r.Writeback)
			if err != nil {
				t.Fatal(err)
			}
			wantWB, wantResp = dispatch.WritebackPending, fmt.Sprint(j)
		}
		gotResp := "<nil>"
		if resp != nil {
			gotResp = *resp
		}
		if st != string(r.Status) || stType != "text" || attempts != 1 || lastStatus != r.Attempt.Status || lastErr != r.Attempt.Error ||
			leType != "text" || updated != at.Add(1500*time.Microsecond).UnixNano() || wb != wantWB || gotResp != wantResp {
			t.Errorf("delivery %d: status %s (%s), attempts %d, last %d %q (%s), updated %d, writeback %q %s; want %s, %d %q, writeback %q %s",
				i, st, stType, attempts, lastStatus, lastErr, leType, updated, wb, gotResp, r.Status, r.Attempt.Status, r.Attempt.Error, wantWB, wantResp)
		}
		if wantNext := storesql.Nanos(r.NextAt); next != wantNext {
			t.Errorf("delivery %d: next_at %d, want %d", i, next, wantNext)
		}
	}
}

// TestStore_PendingSendingFields: Pending reads only the columns sending
// needs (storesql.PendingColumns); each of those fields must be what Get
// reads, for deliveries with inline and block-stored bodies, payload
// headers, a retry already made, and a subscription.
func TestStore_PendingSendingFields(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "state.db"))
	mk := func(n int) []dispatch.NewDelivery {
		var ds []dispatch.NewDelivery
		for i := range n {
			d := nd(fmt.Sprintf("p%d-%d", n, i), "erp")
			d.Key, d.Rule, d.Event = fmt.Sprintf("crm.t:%d", i), "rule-x", "DealWon"
			d.Headers = map[string]string{"SOAPAction": fmt.Sprintf("urn:%d", i)}
			d.Body = fmt.Appendf(nil, `{"n":%d,"i":%d}`, n, i)
			d.EventTime = t0.Add(time.Duration(i) * time.Millisecond)
			if i%3 == 0 {
				d.Subscription = "sub-1"
			}
			ds = append(ds, d)
		}
		return ds
	}
	// 3 deliveries: bodies inline; 40: in a block.
	small, large := mk(3), mk(40)
	for i, ds := range [][]dispatch.NewDelivery{small, large} {
		if _, err := s.Commit(ctx, cp(uint32(i+1)), ds); err != nil {
			t.Fatal(err)
		}
	}
	r := dispatch.Result{Attempt: dispatch.Attempt{DeliveryID: small[1].ID, N: 1, At: t0, Status: 503, Error: "http 503"},
		Status: dispatch.StatusPending, Attempts: 1, NextAt: t0}
	if err := s.Record(ctx, []dispatch.Result{r}); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, sub := range []string{"", "sub-1"} {
		for _, q := range []dispatch.PendingQuery{{Webhook: "erp", Subscription: sub, Limit: 100}, {Webhook: "erp", Subscription: sub, DueBy: t0, Limit: 100}} {
			rows, err := s.Pending(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range rows {
				g, _, err := s.Get(ctx, p.ID)
				if err != nil {
					t.Fatal(err)
				}
				if p.Seq != g.Seq || p.ID != g.ID || p.EventID != g.EventID || p.Rule != g.Rule || p.Event != g.Event || p.Webhook != g.Webhook ||
					p.Subscription != g.Subscription || p.Key != g.Key || p.Method != g.Method || p.URL != g.URL || p.ContentType != g.ContentType ||
					fmt.Sprint(p.Headers) != fmt.Sprint(g.Headers) || string(p.Body) != string(g.Body) || !p.EventTime.Equal(g.EventTime) ||
					!p.CreatedAt.Equal(g.CreatedAt) || !p.NextAt.Equal(g.NextAt) || p.Status != g.Status || p.Attempts != g.Attempts {
					t.Errorf("Pending %+v\nGet     %+v", p, g)
				}
				if len(p.Body) == 0 || p.Headers["SOAPAction"] == "" || p.Status != dispatch.StatusPending {
					t.Errorf("pending %s: body %q headers %v status %s", p.ID, p.Body, p.Headers, p.Status)
				}
				if p.ID == small[1].ID && p.Attempts != 1 {
					t.Errorf("retried delivery read with %d attempts", p.Attempts)
				}
				n++
			}
		}
	}
	if n != 2*43 {
		t.Errorf("%d pending rows read, want %d", n, 2*43)
	}
}
