package sqlitestore

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rowhook/rowhook/dispatch"
)

// TestSegments_SameAsRows drives two stores with the same random
// operations, one storing every commit as rows and one every commit of
// two deliveries or more as a segment, and compares what each method
// returns: commits with replayed and repeated ids, once deliveries,
// failed ones, scheduled ones, pages of Pending by due time, after a
// cursor and in seq order, results recorded for deliveries still in
// segments, NextDue, Stats, List pages, Get, Redeliver, Fail.
func TestSegments_SameAsRows(t *testing.T) {
	for seed := uint64(1); seed <= 6; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { sameAsRows(t, seed) })
	}
}

// TestSegments_KeyCollisions: with every id's key the same (colliding
// keys are rare, so the paths that handle them are run this way), replays
// are still refused and ids found exactly.
func TestSegments_KeyCollisions(t *testing.T) {
	defer func(f func(string) int64) { idKey = f }(idKey)
	idKey = func(id string) int64 { return int64(len(id) % 2) }
	sameAsRows(t, 7)
	ctx := context.Background()
	s := openSeg(t, filepath.Join(t.TempDir(), "state.db"))
	a, b := batch("a", 300), batch("b", 300)
	for _, ds := range [][]dispatch.NewDelivery{a, b, a, b[:5]} {
		if _, err := s.Commit(ctx, cp(1), ds); err != nil {
			t.Fatal(err)
		}
	}
	if st, err := s.Stats(ctx); err != nil || len(st) != 1 || st[0].Count != 600 {
		t.Errorf("stats = %+v, %v; want 600 pending", st, err)
	}
	if d, _, err := s.Get(ctx, b[7].ID); err != nil || d.ID != b[7].ID {
		t.Errorf("get %s: %s, %v", b[7].ID, d.ID, err)
	}
}

// TestSegments_KeyFilterRebuilt: with filters sized for a few keys, the
// writer rebuilds its index from the segments over and over, and misses
// no replay.
func TestSegments_KeyFilterRebuilt(t *testing.T) {
	defer func(n uint) { segIndexMin = n }(segIndexMin)
	segIndexMin = 16
	sameAsRows(t, 8)
}

func sameAsRows(t *testing.T, seed uint64) {
	ctx := context.Background()
	dir := t.TempDir()
	rows := open(t, filepath.Join(dir, "rows.db"))
	rows.segmentMin = 0
	segs := openSeg(t, filepath.Join(dir, "segs.db"))
	segs.segmentMin = 2
	rng := rand.New(rand.NewPCG(seed, 99))
	webhooks := []string{"erp", "crm"}
	subs := []string{"", "sub_1"}
	var all []dispatch.NewDelivery
	now := t0
	both := func(what string, f func(s *Store) (any, error)) {
		t.Helper()
		a, errA := f(rows)
		b, errB := f(segs)
		if (errA == nil) != (errB == nil) {
			t.Fatalf("%s: rows err %v, segments err %v", what, errA, errB)
		}
		if !reflect.DeepEqual(a, b) {
			sa, sb := fmt.Sprint(a), fmt.Sprint(b)
			i := 0
			for i < len(sa) && i < len(sb) && sa[i] == sb[i] {
				i++
			}
			from := max(0, i-200)
			t.Fatalf("%s differs at byte %d:\nrows     …%.400s\nsegments …%.400s", what, i, sa[from:], sb[from:])
		}
	}
	ids := func(ds []dispatch.Delivery) any {
		out := make([]string, len(ds))
		for i, d := range ds {
			out[i] = fmt.Sprintf("%s %s a%d %s %s", d.ID, d.Status, d.Attempts, d.NextAt.Format(time.RFC3339Nano), d.Body)
		}
		return out
	}
	for round := range 60 {
		now = now.Add(time.Duration(rng.IntN(3000)) * time.Millisecond)
		// A commit: new deliveries, some repeating earlier ones (a
		// replay) or each other.
		var ds []dispatch.NewDelivery
		n := rng.IntN(40)
		if rng.IntN(4) == 0 {
			n = 300 + rng.IntN(200)
		}
		for i := range n {
			if len(all) > 0 && rng.IntN(10) == 0 {
				ds = append(ds, all[rng.IntN(len(all))])
				continue
			}
			if len(ds) > 0 && rng.IntN(30) == 0 {
				ds = append(ds, ds[rng.IntN(len(ds))])
				continue
			}
			wh, sub := webhooks[rng.IntN(2)], subs[rng.IntN(2)]
			ev := fmt.Sprintf("r%d:%d", round, i)
			// Event times step back now and then: ids of a commit
			// mix seconds, and meet earlier commits' ranges.
			et := now.Add(-time.Duration(rng.IntN(5)) * time.Second)
			d := dispatch.NewDelivery{
				ID: dispatch.DeliveryID(et, ev, wh, sub), EventID: ev, Rule: "r", Event: "E", Webhook: wh, Subscription: sub,
				Key: fmt.Sprintf("crm.t:%d", rng.IntN(20)), Method: "POST", URL: "http://x/" + wh, ContentType: "application/json",
				Body:      fmt.Appendf(nil, `{"round":%d,"i":%d}`, round, i),
				EventTime: et, CreatedAt: now, NextAt: now.Add(time.Duration(rng.IntN(4000)) * time.Millisecond),
			}
			switch rng.IntN(20) {
			case 0:
				d.Once, d.Rule = true, "once"
			case 1:
				d.Error = "no value for {{id}}"
			case 2:
				d.Body = nil
			case 3:
				d.Headers = map[string]string{"X-Kind": "k"}
				d.Change = []byte(`{"row":{"id":1}}`)
			}
			ds = append(ds, d)
		}
		all = append(all, ds...)
		both(fmt.Sprintf("round %d commit of %d", round, len(ds)), func(s *Store) (any, error) {
			return s.Commit(ctx, cp(uint32(round+1)), ds)
		})
		// Reads and changes, in random order.
		for range 4 {
			wh, sub := webhooks[rng.IntN(2)], subs[rng.IntN(2)]
			due := now.Add(time.Duration(rng.IntN(3000)-1000) * time.Millisecond)
			limit := 1 + rng.IntN(50)
			switch rng.IntN(9) {
			case 0:
				both("pending by due", func(s *Store) (any, error) {
					ds, err := s.Pending(ctx, dispatch.PendingQuery{Webhook: wh, Subscription: sub, DueBy: due, Limit: limit})
					return ids(ds), err
				})
			case 1:
				both("pending in seq order", func(s *Store) (any, error) {
					ds, err := s.Pending(ctx, dispatch.PendingQuery{Webhook: wh, Subscription: sub, Limit: limit})
					return ids(ds), err
				})
			case 2:
				// Pages after a cursor: the cursor is the same delivery
				// in both (its seq read from each).
				both("pending pages", func(s *Store) (any, error) {
					var out []any
					q := dispatch.PendingQuery{Webhook: wh, Subscription: sub, DueBy: due, Limit: 1 + limit/5}
					for range 5 {
						ds, err := s.Pending(ctx, q)
						if err != nil || len(ds) == 0 {
							return out, err
						}
						out = append(out, ids(ds))
						last := ds[len(ds)-1]
						q.AfterNextAt, q.AfterSeq = last.NextAt, last.Seq
					}
					return out, nil
				})
			case 3:
				// Results for deliveries by id, as a queue that was
				// handed them from memory records them.
				var rs []dispatch.Result
				for range 1 + rng.IntN(5) {
					d := all[rng.IntN(len(all))]
					st, next := dispatch.StatusOK, time.Time{}
					if rng.IntN(3) == 0 {
						st, next = dispatch.StatusPending, now.Add(time.Second)
					}
					rs = append(rs, dispatch.Result{Attempt: dispatch.Attempt{DeliveryID: d.ID, N: 1, At: now, Status: 200}, Status: st, Attempts: 1, NextAt: next})
				}
				both("record", func(s *Store) (any, error) { return nil, s.Record(ctx, rs) })
			case 4:
				both("next due", func(s *Store) (any, error) {
					at, ok, err := s.NextDue(ctx, wh, sub, due)
					return fmt.Sprint(at, ok), err
				})
			case 5:
				both("stats", func(s *Store) (any, error) {
					st, err := s.Stats(ctx)
					slices.SortFunc(st, func(a, b dispatch.QueueStat) int {
						return strings.Compare(a.Webhook+string(a.Status), b.Webhook+string(b.Status))
					})
					return st, err
				})
			case 6:
				f := dispatch.Filter{Limit: limit}
				if rng.IntN(2) == 0 {
					f.Webhook = wh
				}
				if rng.IntN(3) == 0 {
					f.Key = fmt.Sprintf("crm.t:%d", rng.IntN(20))
				}
				if rng.IntN(4) == 0 {
					f.ID = all[rng.IntN(len(all))].ID
				}
				both("list pages", func(s *Store) (any, error) {
					f := f
					var out []any
					for range 3 {
						ds, err := s.List(ctx, f)
						if err != nil || len(ds) == 0 {
							return out, err
						}
						out = append(out, ids(ds))
						f.AfterSeq = ds[len(ds)-1].Seq
					}
					return out, nil
				})
			case 7:
				id := all[rng.IntN(len(all))].ID
				both("get", func(s *Store) (any, error) {
					d, as, err := s.Get(ctx, id)
					return fmt.Sprint(ids([]dispatch.Delivery{d}), len(as)), err
				})
				both("redeliver", func(s *Store) (any, error) {
					return s.Redeliver(ctx, []string{id}, dispatch.Filter{}, now, "test")
				})
			case 8:
				if rng.IntN(4) == 0 {
					both("fail", func(s *Store) (any, error) { return s.Fail(ctx, wh, sub, "gone", now) })
				}
			}
		}
	}
	// In the end every delivery is where it would be as a row.
	both("everything", func(s *Store) (any, error) {
		ds, err := s.List(ctx, dispatch.Filter{Limit: 100_000})
		return ids(ds), err
	})
	if n := count(t, segs, `SELECT count(*) FROM segments`); n != 0 {
		t.Errorf("%d segments left after listing everything", n)
	}
}

// TestSegments_CommitStoresOneRow: a catch-up's commit writes one segment
// row and no delivery rows; its deliveries are counted, due and listed,
// and their bodies survive a prune until they are expanded.
func TestSegments_CommitStoresOneRow(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "state.db"))
	ds := batch("big", 1000)
	for i := range ds {
		ds[i].NextAt = t0.Add(time.Hour) // a scheduled webhook
	}
	if n, err := s.Commit(ctx, cp(1), ds); err != nil || n != len(ds) {
		t.Fatalf("commit: %d, %v", n, err)
	}
	if n := count(t, s, `SELECT count(*) FROM deliveries`); n != 0 {
		t.Errorf("%d delivery rows, want 0", n)
	}
	if n := count(t, s, `SELECT count(*) FROM segments`); n != 1 {
		t.Errorf("%d segments, want 1", n)
	}
	st, err := s.Stats(ctx)
	if err != nil || len(st) != 1 || st[0].Count != 1000 || !st[0].OldestPending.Equal(t0) {
		t.Errorf("stats = %+v, %v; want 1000 pending since %v", st, err, t0)
	}
	if at, ok, err := s.NextDue(ctx, "erp", "", t0); err != nil || !ok || !at.Equal(t0.Add(time.Hour)) {
		t.Errorf("next due = %v %v %v, want %v", at, ok, err, t0.Add(time.Hour))
	}
	if ds, err := s.Pending(ctx, dispatch.PendingQuery{Webhook: "erp", DueBy: t0, Limit: 10}); err != nil || len(ds) != 0 {
		t.Errorf("pending now: %d, %v; want none", len(ds), err)
	}
	if n := count(t, s, `SELECT count(*) FROM segments`); n != 1 {
		t.Errorf("reads before the deliveries are due expanded the segment")
	}
	// Prune must keep the blocks of the bodies the segment refers to.
	if _, err := s.Prune(ctx, t0.Add(48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	got, err := s.Pending(ctx, dispatch.PendingQuery{Webhook: "erp", DueBy: t0.Add(time.Hour), Limit: 2000})
	if err != nil || len(got) != len(ds) {
		t.Fatalf("pending when due: %d, %v", len(got), err)
	}
	for i, d := range got {
		if d.ID != ds[i].ID || !bytes.Equal(d.Body, ds[i].Body) {
			t.Fatalf("delivery %d = %s %q, want %s %q", i, d.ID, d.Body, ds[i].ID, ds[i].Body)
		}
	}
}

// TestSegments_ReplayRefused: a replay of a segment's commit, after the
// segment's deliveries were sent or while they wait, stores nothing new.
func TestSegments_ReplayRefused(t *testing.T) {
	ctx := context.Background()
	s := openSeg(t, filepath.Join(t.TempDir(), "state.db"))
	ds := batch("big", 600)
	if n, err := s.Commit(ctx, cp(1), ds); err != nil || n != 600 {
		t.Fatalf("commit: %d, %v", n, err)
	}
	// Reopened: the check reads the segment, not the writer's memory.
	s = reopenSeg(t, s)
	if n, err := s.Commit(ctx, cp(1), ds); err != nil || n != 0 {
		t.Errorf("replay while waiting in the segment: stored %d, %v; want 0", n, err)
	}
	if n, err := s.Commit(ctx, cp(1), ds[:10]); err != nil || n != 0 {
		t.Errorf("replay of ten as rows: stored %d, %v; want 0", n, err)
	}
	if _, err := s.List(ctx, dispatch.Filter{Limit: 10}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Commit(ctx, cp(1), ds); err != nil || n != 0 {
		t.Errorf("replay after expansion: stored %d, %v; want 0", n, err)
	}
	if n := count(t, s, `SELECT count(*) FROM deliveries`); n != 600 {
		t.Errorf("%d rows, want 600", n)
	}
}

// TestSegments_Corrupt: a damaged segment is an error that names it, not
// deliveries lost or made up.
func TestSegments_Corrupt(t *testing.T) {
	ctx := context.Background()
	s := openSeg(t, filepath.Join(t.TempDir(), "state.db"))
	if _, err := s.Commit(ctx, cp(1), batch("big", 300)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.Exec(`UPDATE segments SET data = substr(data, 1, length(data) / 2)`); err != nil {
		t.Fatal(err)
	}
	_, err := s.Pending(ctx, dispatch.PendingQuery{Webhook: "erp", DueBy: t0, Limit: 10})
	if err == nil || !strings.Contains(err.Error(), "segment 1") {
		t.Fatalf("pending of a damaged segment: %v, want an error naming segment 1", err)
	}
	if n := count(t, s, `SELECT count(*) FROM segments`); n != 1 {
		t.Errorf("the damaged segment is gone")
	}
}

// TestSegments_EarlierVersionRefused: the version before segments
// (01c34b0), which would not see the deliveries waiting in them, fails
// to open a file this version wrote or migrated.
func TestSegments_EarlierVersionRefused(t *testing.T) {
	// Its reader's statement (prepared by every open) and its insert.
	const (
		prevSelect = `SELECT seq, id, event_id, rule, event, webhook, subscription, record_key, method, url, content_type,
	headers, inline_body, event_time, created_at, next_at, status, attempts, body_ref FROM deliveries INDEXED BY deliveries_due
		WHERE status = 'pending' AND webhook = ? AND subscription = ? AND next_at <= ? ORDER BY next_at, seq LIMIT ?`
		prevInsert = `INSERT INTO deliveries
		(id, event_id, rule, event, webhook, subscription, record_key, method, url, content_type,
		 headers, inline_body, change, event_time, created_at, next_at, updated_at, status, last_error,
		 body_ref)
		VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (id) DO NOTHING`
	)
	ctx := context.Background()
	fresh := filepath.Join(t.TempDir(), "state.db")
	s := openSeg(t, fresh)
	if _, err := s.Commit(ctx, cp(1), batch("big", 300)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// A file of that version: this one's, its column named as then.
	prev := filepath.Join(t.TempDir(), "prev.db")
	p := open(t, prev)
	if _, err := p.Commit(ctx, cp(1), batch("small", 5)); err != nil {
		t.Fatal(err)
	}
	p.Close()
	db, err := sql.Open("sqlite", "file:"+prev)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`ALTER TABLE deliveries RENAME COLUMN body_inline TO inline_body`); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{prevSelect, prevInsert} {
		st, err := db.Prepare(q)
		if err != nil {
			t.Fatalf("the previous version's statement fails on its own file: %v", err)
		}
		st.Close()
	}
	db.Close()
	m := open(t, prev) // migrates it
	if got := bodiesOf(t, m); len(got) != 5 {
		t.Errorf("%d bodies after migration, want 5", len(got))
	}
	m.Close()
	for name, path := range map[string]string{"new file": fresh, "migrated file": prev} {
		db, err := sql.Open("sqlite", "file:"+path)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{prevSelect, prevInsert} {
			st, err := db.Prepare(q)
			if err == nil {
				st.Close()
				t.Errorf("%s: the previous version prepares %.40q…", name, q)
			} else if !strings.Contains(err.Error(), "inline_body") {
				t.Errorf("%s: %.40q… fails with %v, want no such column inline_body", name, q, err)
			}
		}
		db.Close()
	}
}

// TestIDKey_FNV: idKey's hash is hash/fnv's FNV-1a, and its time bits are
// the id's commit second.
func TestIDKey_FNV(t *testing.T) {
	at := time.Date(2026, 12, 3, 19, 0, 0, 0, time.UTC)
	for _, id := range []string{"", "x", "msg_short", dispatch.DeliveryID(at, "0-1-5:0:r", "erp", "")} {
		h := fnv.New64a()
		h.Write([]byte(id))
		want := int64(h.Sum64() & (1<<39 - 1))
		if strings.HasPrefix(id, "msg_") && len(id) > 12 {
			want |= (at.Unix() & (1<<24 - 1)) << 39
		}
		if got := idKeyOf(id); got != want {
			t.Errorf("idKey(%q) = %x, want %x", id, got, want)
		}
	}
}

// TestSegments_ReplayOfRows: deliveries stored as rows by small commits,
// then replayed within a large commit (a reader set back to an earlier
// position catching up), are refused; the new ones are stored.
func TestSegments_ReplayOfRows(t *testing.T) {
	ctx := context.Background()
	s := openSeg(t, filepath.Join(t.TempDir(), "state.db"))
	old := batch("a", 400)
	for i := 0; i < len(old); i += 40 { // live commits: rows
		if n, err := s.Commit(ctx, cp(1), old[i:i+40]); err != nil || n != 40 {
			t.Fatalf("commit: %d, %v", n, err)
		}
	}
	all := append(slices.Clone(old), batch("b", 300)...)
	if n, err := s.Commit(ctx, cp(2), all); err != nil || n != 300 {
		t.Fatalf("replay with 300 new: stored %d, %v; want 300", n, err)
	}
	// Again after a reopen: the rows are older than the filter now.
	s = reopenSeg(t, s)
	if n, err := s.Commit(ctx, cp(3), all); err != nil || n != 0 {
		t.Fatalf("replay after reopen: stored %d, %v; want 0", n, err)
	}
	st, err := s.Stats(ctx)
	if err != nil || len(st) != 1 || st[0].Count != 700 {
		t.Errorf("stats = %+v, %v; want 700 pending", st, err)
	}
}

// openSeg opens a store that stores every large commit as a segment, due
// deliveries too (no queue needs a backlog first).
func openSeg(t *testing.T, path string) *Store {
	t.Helper()
	s := open(t, path)
	s.deferAhead = 0
	return s
}

// TestSegments_WhoWaits: a large commit of due deliveries whose queue has
// few pending is stored as rows (its pump reads them at once); once the
// queue has deferAhead pending rows, its next large commits go into
// segments; deliveries due later (a scheduled webhook) go into segments at
// once; so do the due ones again after the queue drained below the bound
// and a second passed.
func TestSegments_WhoWaits(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "state.db"))
	s.deferAhead = 500
	segs := func() int { return count(t, s, `SELECT count(*) FROM segments`) }
	mk := func(prefix string, n int, later time.Duration) []dispatch.NewDelivery {
		ds := batch(prefix, n)
		for i := range ds {
			ds[i].NextAt = ds[i].CreatedAt.Add(later)
		}
		return ds
	}
	if _, err := s.Commit(ctx, cp(1), mk("a", 300, 0)); err != nil || segs() != 0 {
		t.Fatalf("300 due, none ahead: %d segments, %v; want rows", segs(), err)
	}
	if _, err := s.Commit(ctx, cp(2), mk("b", 300, 0)); err != nil || segs() != 0 {
		t.Fatalf("300 due, 300 ahead: %d segments, %v; want rows", segs(), err)
	}
	if _, err := s.Commit(ctx, cp(3), mk("c", 300, 0)); err != nil || segs() != 1 {
		t.Fatalf("300 due, 600 ahead: %d segments, %v; want 1", segs(), err)
	}
	if n := count(t, s, `SELECT count(*) FROM deliveries`); n != 600 {
		t.Errorf("%d rows, want 600", n)
	}
	ds := mk("d", 300, time.Hour)
	for i := range ds {
		ds[i].Webhook = "later"
	}
	if _, err := s.Commit(ctx, cp(4), ds); err != nil || segs() != 2 {
		t.Fatalf("300 due in an hour: %d segments, %v; want 2", segs(), err)
	}
	// The queue drains: its count is read again a second later.
	if _, err := s.Fail(ctx, "erp", "", "drained", t0); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	if _, err := s.Commit(ctx, cp(5), mk("e", 300, 0)); err != nil || segs() != 1 {
		t.Fatalf("300 due after the queue drained: %d segments, %v; want 1 (the scheduled one)", segs(), err)
	}
}

// TestSegments_AnotherProcessFinds: a second store on the file (rowhook
// deliveries show while rowhook run writes) builds its own index from the
// file and finds a delivery waiting in a segment by its id; the writer
// then goes on committing.
func TestSegments_AnotherProcessFinds(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	w := openSeg(t, path)
	ds := batch("a", 400)
	if _, err := w.Commit(ctx, cp(1), ds); err != nil {
		t.Fatal(err)
	}
	cli := open(t, path)
	if d, _, err := cli.Get(ctx, ds[123].ID); err != nil || d.ID != ds[123].ID {
		t.Fatalf("get from another store: %s, %v", d.ID, err)
	}
	got, err := cli.List(ctx, dispatch.Filter{ID: ds[7].ID})
	if err != nil || len(got) != 1 || got[0].ID != ds[7].ID {
		t.Fatalf("list --id from another store: %d, %v", len(got), err)
	}
	if _, _, err := cli.Get(ctx, "msg_nosuchdelivery"); !errors.Is(err, dispatch.ErrNotFound) {
		t.Errorf("get of no delivery: %v, want not found", err)
	}
	if n, err := w.Commit(ctx, cp(2), ds); err != nil || n != 0 {
		t.Errorf("the writer's replay after the other store expanded: stored %d, %v; want 0", n, err)
	}
}

// reopenSeg closes s and opens its file again as openSeg does.
func reopenSeg(t *testing.T, s *Store) *Store {
	t.Helper()
	path := s.Path()
	s.Close()
	return openSeg(t, path)
}
