package sqlitestore

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/bits-and-blooms/bloom/v3"
	"github.com/rowhook/rowhook/internal/jsonx"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rowhook/rowhook/dispatch"
	"github.com/rowhook/rowhook/dispatch/storesql"
)

// Segments: a large commit (a catch-up's group commit) stores its pending
// deliveries as one row of the segments table, not a row each. A
// delivery's own row in deliveries, with its index entries, is what costs
// the store most per delivery (docs/outbox-segments.md); a segment defers
// it from the commit, where it holds up the binlog reader, to when the
// delivery is first read one by one: a queue's Pending reaching it, Get,
// List, Redeliver, Rerender, Fail, or an attempt's Record. Then the
// segment is expanded: its deliveries are inserted as the rows the commit
// would have inserted (same seqs, same columns) and the segment deleted,
// in one transaction. Deliveries that wait in a segment until their queue
// reaches them (a backlog, a scheduled webhook) cost a few bytes and
// about a microsecond each to store.
//
// What every reader must keep:
//   - A segment reserves the seqs seq_lo..seq_hi of its commit (the commit
//     moves sqlite_sequence past them), so its deliveries keep their
//     place in seq order when expanded; the commit's other deliveries
//     (due ones, once and failed ones) are rows at once, with seqs of
//     the same range.
//   - segment_queues holds, per segment and queue, how many deliveries
//     wait and their smallest next_at and created_at: Pending, NextDue
//     and Stats read it instead of the entries.
//   - keys holds a key of each of the segment's delivery ids (idKey, an
//     integer), sorted, 8 bytes each; the writer keeps Bloom filters of
//     them in memory (segIndex): Get, Record, Redeliver and Rerender find
//     the segment a missing id is in, and a commit checks its new ids
//     against the segments' (a replay), so that ids stay unique across
//     rows and segments as the unique index keeps them across rows. Keys
//     may collide: a key found is checked against the segment's ids.
//   - The body blocks of a segment's deliveries are kept while it exists
//     (Prune).
const (
	// segmentMin is the smallest commit stored as a segment: a live
	// commit of a few deliveries keeps its rows (they are read at once).
	segmentMin = 256
)

// segment column lists.
const segmentSchema = `
CREATE TABLE IF NOT EXISTS segments (
	id     INTEGER PRIMARY KEY AUTOINCREMENT,
	seq_lo INTEGER NOT NULL,
	seq_hi INTEGER NOT NULL,
	n      INTEGER NOT NULL,
	codec  TEXT NOT NULL,
	data   BLOB NOT NULL,
	keys   BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS segment_queues (
	webhook      TEXT NOT NULL,
	subscription TEXT NOT NULL,
	next_min     INTEGER NOT NULL,
	segment      INTEGER NOT NULL,
	seq_lo       INTEGER NOT NULL,
	n            INTEGER NOT NULL,
	created_min  INTEGER NOT NULL,
	PRIMARY KEY (webhook, subscription, next_min, segment)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS segment_queues_segment ON segment_queues (segment);
`

// idSets caches the id sets of the segments a commit's keys were last
// found in (a replay reads the same few segments again and again). A
// segment never changes; its id is never reused.
type idSets struct {
	ids  []int64
	sets []map[string]struct{}
}

func (c *idSets) get(id int64) map[string]struct{} {
	if i := slices.Index(c.ids, id); i >= 0 {
		return c.sets[i]
	}
	return nil
}

func (c *idSets) put(id int64, set map[string]struct{}) {
	if len(c.ids) >= 4 {
		c.ids, c.sets = c.ids[1:], c.sets[1:]
	}
	c.ids, c.sets = append(c.ids, id), append(c.sets, set)
}

// idKey is delivery id's key in a keys column: the low 24 bits of its
// commit second (for ids of DeliveryID's form; 0 for others), so that a
// commit's keys land together in the index, then 39 bits of its FNV-1a
// hash. (A variable: a test makes every key collide.)
var idKey = idKeyOf

func idKeyOf(id string) int64 {
	// FNV-1a, as hash/fnv's, without its allocation.
	h := uint64(14695981039346656037)
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i])
		h *= 1099511628211
	}
	var sec int64
	if t, ok := strings.CutPrefix(id, "msg_"); ok && len(t) >= 8 {
		for _, c := range []byte(t[:8]) {
			var v byte
			switch {
			case '0' <= c && c <= '9':
				v = c - '0'
			case 'a' <= c && c <= 'v':
				v = c - 'a' + 10
			}
			sec = sec<<5 | int64(v)
		}
	}
	return (sec&(1<<24-1))<<39 | int64(h&(1<<39-1))
}

// segIndex says which ids a commit must look up, as stored already, and
// which segments may hold an id. It is a Bloom filter of every key of the
// segments and of the deliveries stored as rows since it was built, one
// filter per segment of its keys, and rowsBound, the largest delivery id
// stored before it was built (ids grow with their commit second: reading
// forward, new ids are past it). The writer builds it at its first commit
// of deliveries (by then a standby of an HA pair is the active one), and
// again once as many keys were added as it was sized for; another process
// (rowhook deliveries show) at its first look for an id. The filters of
// segments expanded stay until then (a segment found in them and not in
// the file costs a look). Only rowhook run, the file's one writer of
// deliveries, adds them; so its index covers every segment and row.
//
// It replaced a table of keys (segment_ids): inserting 2,000 keys per
// commit into its index cost ~3.5 µs per delivery, a third of what
// enqueueing cost in all (docs/outbox-segments.md).
type segIndex struct {
	mu         sync.Mutex
	loaded     bool
	all        *bloom.BloomFilter
	added, cap uint
	segs       map[int64]*bloom.BloomFilter
	rowsBound  sql.NullString
}

const segIndexFP = 0.001

// segIndexMin is the fewest keys the index is sized for: 1.8 MB at
// segIndexFP. (A variable: a test makes it fill up.)
var segIndexMin uint = 1 << 20

// querier is a connection pool, a connection or a transaction.
type querier interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}

func keyBytes(b *[8]byte, key int64) []byte {
	binary.LittleEndian.PutUint64(b[:], uint64(key))
	return b[:]
}

// load builds the index from the file (q). x.mu is held.
func (x *segIndex) load(ctx context.Context, q querier) error {
	var n uint
	if err := q.QueryRowContext(ctx, `SELECT coalesce(sum(n), 0) FROM segments`).Scan(&n); err != nil {
		return fmt.Errorf("read segments: %w", err)
	}
	x.cap, x.added = max(2*n, segIndexMin), 0
	x.all = bloom.NewWithEstimates(x.cap, segIndexFP)
	x.segs = map[int64]*bloom.BloomFilter{}
	if err := q.QueryRowContext(ctx, `SELECT max(id) FROM deliveries`).Scan(&x.rowsBound); err != nil {
		return fmt.Errorf("read delivery ids: %w", err)
	}
	rows, err := q.QueryContext(ctx, `SELECT id, keys FROM segments`)
	if err != nil {
		return fmt.Errorf("read segments: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var keys []byte
		if err := rows.Scan(&id, &keys); err != nil {
			return fmt.Errorf("read segments: %w", err)
		}
		x.addSegment(id, keys)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read segments: %w", err)
	}
	x.loaded = true
	return nil
}

// ensure loads the index unless it is. x.mu is held.
func (x *segIndex) ensure(ctx context.Context, q querier) error {
	if x.loaded {
		return nil
	}
	return x.load(ctx, q)
}

// addSegment notes segment id's keys (its keys column). x.mu is held.
func (x *segIndex) addSegment(id int64, keys []byte) {
	f := bloom.NewWithEstimates(uint(max(len(keys)/8, 64)), segIndexFP)
	for i := 0; i+8 <= len(keys); i += 8 {
		f.Add(keys[i : i+8])
		x.all.Add(keys[i : i+8])
		x.added++
	}
	x.segs[id] = f
}

// addRows notes the keys of deliveries stored as rows. x.mu is held.
func (x *segIndex) addRows(keys []int64) {
	var b [8]byte
	for _, k := range keys {
		x.all.Add(keyBytes(&b, k))
		x.added++
	}
}

// test reports whether key may be stored. x.mu is held.
func (x *segIndex) test(key int64) bool {
	var b [8]byte
	return x.loaded && x.all.Test(keyBytes(&b, key))
}

// holders returns the segments whose filter may hold key, in order.
// x.mu is held.
func (x *segIndex) holders(key int64) []int64 {
	var b [8]byte
	k := keyBytes(&b, key)
	if !x.loaded || !x.all.Test(k) {
		return nil
	}
	var out []int64
	for id, f := range x.segs {
		if f.Test(k) {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

func (x *segIndex) full() bool { return x.loaded && x.added >= x.cap }

// holding returns the segments of the file that hold key (their keys
// column has it), read with q.
func (s *Store) holding(ctx context.Context, q querier, key int64) ([]int64, error) {
	s.idx.mu.Lock()
	err := s.idx.ensure(ctx, q)
	cand := s.idx.holders(key)
	s.idx.mu.Unlock()
	if err != nil {
		return nil, err
	}
	var out []int64
	for _, id := range cand {
		keys, err := segmentKeys(ctx, q, id)
		if err != nil {
			return nil, err
		}
		if hasKey(keys, key) {
			out = append(out, id)
		}
	}
	return out, nil
}

// segmentKeys reads segment id's keys column: none when the segment was
// expanded since the index noted it.
func segmentKeys(ctx context.Context, q querier, id int64) ([]byte, error) {
	var keys []byte
	err := q.QueryRowContext(ctx, `SELECT keys FROM segments WHERE id = ?`, id).Scan(&keys)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read segment %d: %w", id, err)
	}
	return keys, nil
}

// hasKey reports whether keys (a keys column: sorted, 8 bytes each) has
// key.
func hasKey(keys []byte, key int64) bool {
	n := len(keys) / 8
	lo, hi := 0, n
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		v := int64(binary.LittleEndian.Uint64(keys[8*m:]))
		switch {
		case v == key:
			return true
		case v < key:
			lo = m + 1
		default:
			hi = m
		}
	}
	return false
}

// idsIn is an SQL condition on segments.id: id among ids.
func idsIn(ids []int64) string {
	if len(ids) == 0 {
		return "0"
	}
	b := []byte("id IN (")
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, id, 10)
	}
	return string(append(b, ')'))
}

// segmentable reports whether ds is committed as a segment.
//
// It also marks in s.deferred which of ds go into it: a delivery that will
// wait. One that is due and whose queue's pump will reach it within
// seconds is a row at once: expanding it, moments later, would cost the
// pump the row insert plus the segment's encoding and decoding, and the
// pump, not the reader, bounds how fast a backlog to a live endpoint is
// delivered (rowhook bench deliver: 0.66 → 0.51 with every backlog in
// segments). So a delivery waits when it is due more than a second after
// it was created (a scheduled or delayed webhook), or when its queue has
// deferAhead pending rows ahead of it (backlogAhead).
func (s *Store) segmentable(ctx context.Context, tx *sql.Tx, ds []dispatch.NewDelivery) (bool, error) {
	if !s.segments || s.segmentMin <= 0 || len(ds) < s.segmentMin {
		return false, nil
	}
	s.deferred = slices.Grow(s.deferred[:0], len(ds))[:len(ds)]
	var far map[[2]string]bool
	n := 0
	for i := range ds {
		d := &ds[i]
		s.deferred[i] = false
		if d.Once || d.Error != "" {
			continue
		}
		if d.NextAt.Sub(d.CreatedAt) <= time.Second {
			q := [2]string{d.Webhook, d.Subscription}
			behind, ok := far[q]
			if !ok {
				ahead, err := s.backlogAhead(ctx, tx, q)
				if err != nil {
					return false, err
				}
				if far == nil {
					far = map[[2]string]bool{}
				}
				behind = ahead >= s.deferAhead
				far[q] = behind
			}
			if !behind {
				continue
			}
		}
		s.deferred[i] = true
		n++
	}
	return n >= s.segmentMin, nil
}

// deferAheadDefault is how many pending rows a queue has ahead before its
// due deliveries go into segments: several seconds of sending at the
// rates rowhook reaches on two cores (15,000 – 20,000 deliveries/s).
const deferAheadDefault = 100_000

// backlog is what the writer knows of a queue's pending rows: n when
// counted at (a count stops at deferAhead), plus the rows it has added
// since. Deliveries sent since are not subtracted: the estimate is high,
// never low, until the next count, at most a second later.
type backlog struct {
	n  int64
	at time.Time
}

// backlogAhead returns the pending rows of queue q, counted up to
// s.deferAhead (an index range of the queue's pending entries).
func (s *Store) backlogAhead(ctx context.Context, tx *sql.Tx, q [2]string) (int64, error) {
	if s.deferAhead <= 0 {
		return 0, nil
	}
	b := s.backlogs[q]
	if b != nil && time.Since(b.at) < time.Second {
		return b.n, nil
	}
	var n int64
	err := tx.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM deliveries INDEXED BY deliveries_due
		WHERE status = 'pending' AND webhook = ? AND subscription = ? LIMIT ?)`, q[0], q[1], s.deferAhead).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count the pending deliveries of %s: %w", storesql.QueueName(q[0], q[1]), err)
	}
	if s.backlogs == nil {
		s.backlogs = map[[2]string]*backlog{}
	}
	s.backlogs[q] = &backlog{n: n, at: time.Now()}
	return n, nil
}

// addedRows notes the pending rows a commit added (ds but those in its
// segment, deferred; nil: all of ds).
func (s *Store) addedRows(ds []dispatch.NewDelivery, deferred []bool) {
	for i := range ds {
		if ds[i].Error != "" || (deferred != nil && deferred[i]) {
			continue
		}
		if b := s.backlogs[[2]string{ds[i].Webhook, ds[i].Subscription}]; b != nil {
			b.n++
		}
	}
}

// commitSegment stores ds (with bodies in blocks, refs) as a segment in
// tx: its pending deliveries in the segment, its once and failed ones as
// rows with seqs of the segment's range. It drops the deliveries whose
// id is stored already (a replay) and returns how many it stored.
func (s *Store) commitSegment(ctx context.Context, tx *sql.Tx, ds []dispatch.NewDelivery, ref func(int) bodyRef) (int, error) {
	var last int64
	if err := tx.QueryRowContext(ctx, `SELECT seq FROM sqlite_sequence WHERE name = 'deliveries'`).Scan(&last); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("read seq: %w", err)
	}
	lo, hi := last+1, last+int64(len(ds))
	dup, keys, err := s.duplicates(ctx, tx, ds, true)
	if err != nil {
		return 0, err
	}
	raw := s.segRaw[:0]
	type queueAgg struct{ n, nextMin, createdMin int64 }
	queues := map[[2]string]*queueAgg{}
	var qorder [][2]string
	n, stored := 0, 0
	segKeys := s.segKeys[:0]
	onceSeen := map[[2]string]string{}
	var one *sql.Stmt
	args := make([]any, 0, insertCols+1)
	for i := range ds {
		d := &ds[i]
		if dup[i] {
			continue
		}
		seq := lo + int64(i)
		if !s.deferred[i] {
			if args, err = appendDeliveryArgs(append(args[:0], seq), d, ref(i)); err != nil {
				return 0, fmt.Errorf("delivery %s: %w", d.ID, err)
			}
			if one == nil {
				one = tx.StmtContext(ctx, s.insDeliverySeq)
			}
			ok, err := s.insertOne(ctx, tx, one, onceSeen, d, args)
			if err != nil {
				return 0, err
			}
			if ok {
				stored++
			}
			s.idx.mu.Lock()
			s.idx.addRows(keys[i : i+1])
			s.idx.mu.Unlock()
			continue
		}
		if raw, err = appendEntry(raw, seq-lo, d, ref(i)); err != nil {
			return 0, fmt.Errorf("delivery %s: %w", d.ID, err)
		}
		n++
		segKeys = append(segKeys, keys[i])
		k := [2]string{d.Webhook, d.Subscription}
		next, created := storesql.Nanos(d.NextAt), storesql.Nanos(d.CreatedAt)
		if q := queues[k]; q == nil {
			queues[k] = &queueAgg{1, next, created}
			qorder = append(qorder, k)
		} else {
			q.n++
			q.nextMin = min(q.nextMin, next)
			q.createdMin = min(q.createdMin, created)
		}
	}
	if n > 0 {
		enc, _, err := zstdCodec()
		if err != nil {
			return 0, err
		}
		s.segZ = enc.EncodeAll(raw, s.segZ[:0])
		// The keys, sorted, 8 bytes each (segIndex).
		slices.Sort(segKeys)
		kb := s.keysBuf[:0]
		for _, k := range segKeys {
			kb = binary.LittleEndian.AppendUint64(kb, uint64(k))
		}
		s.keysBuf = kb
		res, err := tx.StmtContext(ctx, s.insSegment).ExecContext(ctx, lo, hi, n, codecZstd, s.segZ, kb)
		if err != nil {
			return 0, fmt.Errorf("insert segment: %w", err)
		}
		id, err := res.LastInsertId()
		if err != nil {
			return 0, err
		}
		insQ := tx.StmtContext(ctx, s.insSegmentQueue)
		for _, k := range qorder {
			q := queues[k]
			if _, err := insQ.ExecContext(ctx, k[0], k[1], q.nextMin, id, lo, q.n, q.createdMin); err != nil {
				return 0, fmt.Errorf("insert segment queue: %w", err)
			}
		}
		// Into the index now: if tx does not commit, the index has a
		// segment the file has not, which costs a look, nothing else.
		s.idx.mu.Lock()
		s.idx.addSegment(id, kb)
		s.idx.mu.Unlock()
		stored += n
	}
	if cap(raw) <= 4*blockMaxBytes {
		s.segRaw = raw[:0]
	}
	if cap(segKeys) <= 1<<16 {
		s.segKeys = segKeys[:0]
	}
	if cap(s.segZ) > 4*blockMaxBytes {
		s.segZ = nil
	}
	// The range is the segment's even where its last deliveries were
	// rows or dropped.
	res, err := tx.StmtContext(ctx, s.updSequence).ExecContext(ctx, hi)
	if err != nil {
		return 0, fmt.Errorf("move seq: %w", err)
	}
	if k, _ := res.RowsAffected(); k == 0 {
		// No delivery was ever inserted: the file's first commit.
		if _, err := tx.ExecContext(ctx, `INSERT INTO sqlite_sequence (name, seq) VALUES ('deliveries', ?)`, hi); err != nil {
			return 0, fmt.Errorf("move seq: %w", err)
		}
	}
	return stored, nil
}

// duplicates marks the deliveries of ds whose id is stored already in a
// segment or, with checkRows, as a row, or (with checkRows) repeats an
// earlier one of ds; it returns the ids' keys (idKey). Commits of rows
// leave rows, and repeats among them, to the unique index.
func (s *Store) duplicates(ctx context.Context, tx *sql.Tx, ds []dispatch.NewDelivery, checkRows bool) ([]bool, []int64, error) {
	dup := make([]bool, len(ds))
	keys := make([]int64, len(ds))
	lo := ds[0].ID
	for i := range ds {
		keys[i] = idKey(ds[i].ID)
		lo = min(lo, ds[i].ID)
	}
	if checkRows {
		// Repeats within ds: only a replay has them, and their keys
		// are equal.
		seen := make(map[int64]int, len(ds)) // key → its first delivery
		for i, k := range keys {
			j, ok := seen[k]
			switch {
			case !ok:
				seen[k] = i
			case ds[j].ID == ds[i].ID:
				dup[i] = true
			default: // a key collision: compare with every earlier id
				for j := range i {
					if keys[j] == k && ds[j].ID == ds[i].ID {
						dup[i] = true
						break
					}
				}
			}
		}
		// Rows: those stored before the filter was built have ids up to
		// rowsBound; those since, keys in the filter.
		s.idx.mu.Lock()
		maxRow := s.idx.rowsBound
		maybe := make([]bool, len(ds))
		some := false
		for i := range ds {
			maybe[i] = !dup[i] && ((maxRow.Valid && ds[i].ID <= maxRow.String) || s.idx.test(keys[i]))
			some = some || maybe[i]
		}
		s.idx.mu.Unlock()
		if some {
			buf := []byte{'['}
			for i := range ds {
				if maybe[i] {
					if len(buf) > 1 {
						buf = append(buf, ',')
					}
					buf = jsonx.AppendString(buf, ds[i].ID)
				}
			}
			stored := map[string]bool{}
			rows, err := tx.QueryContext(ctx, `SELECT id FROM deliveries WHERE id IN (SELECT value FROM json_each(?))`, string(append(buf, ']')))
			if err != nil {
				return nil, nil, fmt.Errorf("check ids: %w", err)
			}
			for rows.Next() {
				var id string
				if err := rows.Scan(&id); err != nil {
					rows.Close()
					return nil, nil, fmt.Errorf("check ids: %w", err)
				}
				stored[id] = true
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return nil, nil, fmt.Errorf("check ids: %w", err)
			}
			for i := range ds {
				dup[i] = dup[i] || stored[ds[i].ID]
			}
		}
	}
	// Segments: those whose filter may hold a key; a key their keys
	// column has is checked against their ids.
	cands := map[int64][]int{} // segment → deliveries of ds
	s.idx.mu.Lock()
	for i, k := range keys {
		if dup[i] {
			continue
		}
		for _, seg := range s.idx.holders(k) {
			cands[seg] = append(cands[seg], i)
		}
	}
	s.idx.mu.Unlock()
	for seg, is := range cands {
		kb, err := segmentKeys(ctx, tx, seg)
		if err != nil {
			return nil, nil, fmt.Errorf("check ids: %w", err)
		}
		var set map[string]struct{}
		for _, i := range is {
			if dup[i] || !hasKey(kb, keys[i]) {
				continue
			}
			if set == nil {
				if set = s.idSets.get(seg); set == nil {
					es, err := s.readSegment(ctx, tx, seg)
					if err != nil {
						return nil, nil, err
					}
					set = make(map[string]struct{}, len(es))
					for _, e := range es {
						set[e.id] = struct{}{}
					}
					s.idSets.put(seg, set)
				}
			}
			if _, ok := set[ds[i].ID]; ok {
				dup[i] = true
			}
		}
	}
	return dup, keys, nil
}

// A segment's data decompresses to its deliveries (n of them), each one's
// fields: its seq's offset from seq_lo, ten strings (id, event
// id, rule, event, webhook, subscription, record key, method, url,
// content type), headers and change (NULL or text), event time, created
// and next at (nanoseconds), and its body: NULL, inline, or a reference
// to a body block.
const (
	bodyNull   = 0
	bodyInline = 1
	bodyRefd   = 2
)

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// appendNullable appends v (nil, or a string) as its length + 1, 0 for
// nil.
func appendNullable(b []byte, v any) []byte {
	if v == nil {
		return append(b, 0)
	}
	s := v.(string)
	return append(binary.AppendUvarint(b, uint64(len(s))+1), s...)
}

func appendEntry(b []byte, off int64, d *dispatch.NewDelivery, r bodyRef) ([]byte, error) {
	headers, change, _, err := storesql.InsertValues(d)
	if err != nil {
		return b, err
	}
	b = binary.AppendUvarint(b, uint64(off))
	for _, s := range [...]string{d.ID, d.EventID, d.Rule, d.Event, d.Webhook, d.Subscription, d.Key, d.Method, d.URL, d.ContentType} {
		b = appendString(b, s)
	}
	b = appendNullable(b, headers)
	b = appendNullable(b, change)
	b = binary.AppendVarint(b, storesql.Nanos(d.EventTime))
	b = binary.AppendVarint(b, storesql.Nanos(d.CreatedAt))
	b = binary.AppendVarint(b, storesql.Nanos(d.NextAt))
	switch {
	case r != 0:
		b = binary.AppendUvarint(append(b, bodyRefd), uint64(r))
	case d.Body == nil:
		b = append(b, bodyNull)
	default:
		b = append(binary.AppendUvarint(append(b, bodyInline), uint64(len(d.Body))), d.Body...)
	}
	return b, nil
}

// entry is a decoded segment delivery.
type entry struct {
	seq                                                                   int64
	id, eventID, rule, event, webhook, subscription, key, method, url, ct string
	headers, change                                                       any
	eventTime, created, next                                              int64
	body                                                                  any // nil or []byte
	ref                                                                   any // nil or int64
}

// args appends e's insert parameters (insDeliverySeq's).
func (e *entry) args(a []any) []any {
	return append(a, e.seq, e.id, e.eventID, e.rule, e.event, e.webhook, e.subscription, e.key,
		e.method, e.url, e.ct, e.headers, e.body, e.change, e.eventTime, e.created,
		e.next, e.created, string(dispatch.StatusPending), "", e.ref)
}

// decodeSegment decodes a segment's data.
func decodeSegment(id, seqLo int64, n int, codec string, data []byte) ([]entry, error) {
	raw, err := decompress(fmt.Sprintf("segment %d", id), codec, data)
	if err != nil {
		return nil, err
	}
	bad := func(what string) error { return fmt.Errorf("segment %d: malformed (%s)", id, what) }
	p := raw
	uv := func() (uint64, bool) {
		v, k := binary.Uvarint(p)
		if k <= 0 {
			return 0, false
		}
		p = p[k:]
		return v, true
	}
	str := func() (string, bool) {
		l, ok := uv()
		if !ok || l > uint64(len(p)) {
			return "", false
		}
		s := string(p[:l])
		p = p[l:]
		return s, true
	}
	nullable := func() (any, bool) {
		l, ok := uv()
		if !ok || l > uint64(len(p))+1 {
			return nil, false
		}
		if l == 0 {
			return nil, true
		}
		s := string(p[:l-1])
		p = p[l-1:]
		return s, true
	}
	sv := func() (int64, bool) {
		v, k := binary.Varint(p)
		if k <= 0 {
			return 0, false
		}
		p = p[k:]
		return v, true
	}
	out := make([]entry, 0, n)
	for len(p) > 0 {
		out = append(out, entry{})
		e := &out[len(out)-1]
		off, ok := uv()
		if !ok {
			return nil, bad("seq")
		}
		e.seq = seqLo + int64(off)
		for _, dst := range [...]*string{&e.id, &e.eventID, &e.rule, &e.event, &e.webhook, &e.subscription, &e.key, &e.method, &e.url, &e.ct} {
			if *dst, ok = str(); !ok {
				return nil, bad("text")
			}
		}
		if e.headers, ok = nullable(); !ok {
			return nil, bad("headers")
		}
		if e.change, ok = nullable(); !ok {
			return nil, bad("change")
		}
		for _, dst := range [...]*int64{&e.eventTime, &e.created, &e.next} {
			if *dst, ok = sv(); !ok {
				return nil, bad("time")
			}
		}
		if len(p) == 0 {
			return nil, bad("body")
		}
		kind := p[0]
		p = p[1:]
		switch kind {
		case bodyNull:
		case bodyInline:
			b, ok := str()
			if !ok {
				return nil, bad("body")
			}
			e.body = []byte(b)
		case bodyRefd:
			r, ok := uv()
			if !ok {
				return nil, bad("body")
			}
			e.ref = int64(r)
		default:
			return nil, bad("body kind")
		}
	}
	if len(out) != n {
		return nil, bad(fmt.Sprintf("%d deliveries, not %d", len(out), n))
	}
	return out, nil
}

// readSegment reads and decodes segment id.
func (s *Store) readSegment(ctx context.Context, tx *sql.Tx, id int64) ([]entry, error) {
	var seqLo int64
	var n int
	var codec string
	var data []byte
	err := tx.QueryRowContext(ctx, `SELECT seq_lo, n, codec, data FROM segments WHERE id = ?`, id).Scan(&seqLo, &n, &codec, &data)
	if err != nil {
		return nil, fmt.Errorf("read segment %d: %w", id, err)
	}
	return decodeSegment(id, seqLo, n, codec, data)
}

// expandIDs expands the segments in tx whose deliveries are ids, in
// order; it returns how many it expanded.
func (s *Store) expandIDs(ctx context.Context, tx *sql.Tx, segs []int64) (int, error) {
	args := make([]any, 0, insertChunk*(insertCols+1))
	for _, id := range segs {
		es, err := s.readSegment(ctx, tx, id)
		if err != nil {
			return 0, err
		}
		var chunk, one *sql.Stmt
		for i := 0; i < len(es); {
			if i+insertChunk <= len(es) {
				if chunk == nil {
					chunk = tx.StmtContext(ctx, s.insDeliveriesSeq)
				}
				args = args[:0]
				for j := i; j < i+insertChunk; j++ {
					args = es[j].args(args)
				}
				if _, err := chunk.ExecContext(ctx, args...); err != nil {
					return 0, fmt.Errorf("expand segment %d: %w", id, err)
				}
				i += insertChunk
				continue
			}
			if one == nil {
				one = tx.StmtContext(ctx, s.insDeliverySeq)
			}
			if _, err := one.ExecContext(ctx, es[i].args(args[:0])...); err != nil {
				return 0, fmt.Errorf("expand segment %d: %w", id, err)
			}
			i++
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM segment_queues WHERE segment = ?`, id); err != nil {
			return 0, fmt.Errorf("expand segment %d: %w", id, err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM segments WHERE id = ?`, id); err != nil {
			return 0, fmt.Errorf("expand segment %d: %w", id, err)
		}
	}
	return len(segs), nil
}

// segmentIDs runs q (selecting segment ids) in tx.
func segmentIDs(ctx context.Context, tx *sql.Tx, q string, args ...any) ([]int64, error) {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// expandWhere expands the segments q selects (q: a query of segment
// ids, with args), one a transaction so that commits are not held up for
// long, until it selects none. It reports whether it expanded any.
func (s *Store) expandWhere(ctx context.Context, q string, args ...any) (bool, error) {
	expanded := false
	for {
		ok, err := s.expandFirst(ctx, q, args...)
		if err != nil || !ok {
			return expanded, err
		}
		expanded = true
	}
}

// expandFirst expands the first segment q selects, if any (a look on a
// reader first: most calls find none and never wait for the writer).
func (s *Store) expandFirst(ctx context.Context, q string, args ...any) (bool, error) {
	if !s.segments {
		return false, nil
	}
	var id int64
	err := s.r.QueryRowContext(ctx, q+` LIMIT 1`, args...).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read segments: %w", err)
	}
	// It may be expanded by another already: q is asked again anyway.
	if _, err := s.expandOnce(ctx, q+` LIMIT 1`, args...); err != nil {
		return false, err
	}
	return true, nil
}

// expandOnce expands the segments q selects in one write transaction.
func (s *Store) expandOnce(ctx context.Context, q string, args ...any) (int, error) {
	tx, end, err := s.beginWrite(ctx)
	if err != nil {
		return 0, fmt.Errorf("expand segments: %w", err)
	}
	defer end()
	n, err := s.expandTx(ctx, tx, q, args...)
	if err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("expand segments: %w", err)
	}
	return n, nil
}

// expandTx expands the segments q selects in tx.
func (s *Store) expandTx(ctx context.Context, tx *sql.Tx, q string, args ...any) (int, error) {
	if !s.segments {
		return 0, nil
	}
	segs, err := segmentIDs(ctx, tx, q, args...)
	if err != nil {
		return 0, fmt.Errorf("read segments: %w", err)
	}
	if len(segs) == 0 {
		return 0, nil
	}
	return s.expandIDs(ctx, tx, segs)
}

// expandHolding expands in tx the segments that hold id's key, and
// reports whether there were any.
func (s *Store) expandHolding(ctx context.Context, tx *sql.Tx, id string) (bool, error) {
	segs, err := s.holding(ctx, tx, idKey(id))
	if err != nil || len(segs) == 0 {
		return false, err
	}
	n, err := s.expandTx(ctx, tx, `SELECT id FROM segments WHERE `+idsIn(segs))
	return n > 0, err
}

// queueSegments selects a queue's segments (webhook ?1, subscription
// ?2) in the order of their earliest delivery due.
const queueSegments = `SELECT segment FROM segment_queues WHERE webhook = ?1 AND subscription = ?2`

// segmentStats adds the deliveries waiting in segments to stats.
func (s *Store) segmentStats(ctx context.Context, stats []dispatch.QueueStat) ([]dispatch.QueueStat, error) {
	if !s.segmentTables {
		return stats, nil
	}
	rows, err := s.r.QueryContext(ctx, `SELECT webhook, sum(n), min(created_min) FROM segment_queues GROUP BY webhook`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var webhook string
		var n, oldest int64
		if err := rows.Scan(&webhook, &n, &oldest); err != nil {
			return nil, err
		}
		at := storesql.FromNanos(oldest)
		i := slices.IndexFunc(stats, func(q dispatch.QueueStat) bool {
			return q.Webhook == webhook && q.Status == dispatch.StatusPending
		})
		if i < 0 {
			stats = append(stats, dispatch.QueueStat{Webhook: webhook, Status: dispatch.StatusPending, Count: n, OldestPending: at})
			continue
		}
		stats[i].Count += n
		if stats[i].OldestPending.IsZero() || at.Before(stats[i].OldestPending) {
			stats[i].OldestPending = at
		}
	}
	return stats, rows.Err()
}
