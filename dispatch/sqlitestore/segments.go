package sqlitestore

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

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
//     place in seq order when expanded; the commit's once and failed
//     deliveries are rows at once, with seqs of the same range.
//   - segment_queues holds, per segment and queue, how many deliveries
//     wait and their smallest next_at and created_at: Pending, NextDue
//     and Stats read it instead of the entries.
//   - id_lo and id_hi bound the segment's delivery ids (ids sort by their
//     commit second): Get, Record, Redeliver and Rerender find the one
//     segment a missing id may be in, and a commit checks its new ids
//     against the segments they may repeat. Ids stay unique across rows
//     and segments, as the unique index keeps them across rows.
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
	id_lo  TEXT NOT NULL,
	id_hi  TEXT NOT NULL,
	n      INTEGER NOT NULL,
	codec  TEXT NOT NULL,
	data   BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS segments_id_hi ON segments (id_hi);
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

// lastSegment is the ids of the segment the writer stored last: the next
// commit's first ids share its last commit second, and are checked
// against it without decoding it.
type lastSegment struct {
	id  int64
	ids map[string]struct{}
}

// segmentable reports whether ds is committed as a segment.
func (s *Store) segmentable(ds []dispatch.NewDelivery) bool {
	return s.segments && s.segmentMin > 0 && len(ds) >= s.segmentMin
}

// commitSegment stores ds (with bodies in blocks, refs) as a segment in
// tx: its pending deliveries in the segment, its once and failed ones as
// rows with seqs of the segment's range. It drops the deliveries whose
// id is stored already (a replay) and returns how many it stored. When
// it returns without error, s.pendingSeg is the segment's id set, for
// lastSeg once tx commits.
func (s *Store) commitSegment(ctx context.Context, tx *sql.Tx, ds []dispatch.NewDelivery, ref func(int) bodyRef) (int, error) {
	var last int64
	if err := tx.QueryRowContext(ctx, `SELECT seq FROM sqlite_sequence WHERE name = 'deliveries'`).Scan(&last); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("read seq: %w", err)
	}
	lo, hi := last+1, last+int64(len(ds))
	dup, ids, err := s.duplicates(ctx, tx, ds, true)
	if err != nil {
		return 0, err
	}
	raw := s.segRaw[:0]
	type queueAgg struct{ n, nextMin, createdMin int64 }
	queues := map[[2]string]*queueAgg{}
	var qorder [][2]string
	n, stored := 0, 0
	idLo, idHi := "", ""
	onceSeen := map[[2]string]string{}
	var one *sql.Stmt
	args := make([]any, 0, insertCols+1)
	for i := range ds {
		d := &ds[i]
		if dup[i] {
			continue
		}
		seq := lo + int64(i)
		if d.Once || d.Error != "" {
			if d.Once {
				ok, err := s.onceAllows(ctx, tx, onceSeen, d)
				if err != nil {
					return 0, fmt.Errorf("once marker %s %s: %w", d.Rule, d.Key, err)
				}
				if !ok {
					continue
				}
			}
			if one == nil {
				one = tx.StmtContext(ctx, s.insDeliverySeq)
			}
			if args, err = appendDeliveryArgs(append(args[:0], seq), d, ref(i)); err != nil {
				return 0, fmt.Errorf("delivery %s: %w", d.ID, err)
			}
			res, err := one.ExecContext(ctx, args...)
			if err != nil {
				return 0, fmt.Errorf("insert delivery %s: %w", d.ID, err)
			}
			if k, _ := res.RowsAffected(); k > 0 {
				stored++
			}
			continue
		}
		if raw, err = appendEntry(raw, seq-lo, d, ref(i)); err != nil {
			return 0, fmt.Errorf("delivery %s: %w", d.ID, err)
		}
		n++
		if idLo == "" || d.ID < idLo {
			idLo = d.ID
		}
		if d.ID > idHi {
			idHi = d.ID
		}
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
	s.pendingSeg = lastSegment{}
	if n > 0 {
		enc, _, err := zstdCodec()
		if err != nil {
			return 0, err
		}
		s.segZ = enc.EncodeAll(raw, s.segZ[:0])
		res, err := tx.StmtContext(ctx, s.insSegment).ExecContext(ctx, lo, hi, idLo, idHi, n, codecZstd, s.segZ)
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
		s.pendingSeg = lastSegment{id: id, ids: ids}
		stored += n
	}
	if cap(raw) <= 4*blockMaxBytes {
		s.segRaw = raw[:0]
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
// segment or, with rows, as a row, or repeats an earlier one of ds. It
// returns the set of ds's ids. (Commits of rows leave the rows to the
// unique index.)
func (s *Store) duplicates(ctx context.Context, tx *sql.Tx, ds []dispatch.NewDelivery, checkRows bool) ([]bool, map[string]struct{}, error) {
	dup := make([]bool, len(ds))
	var ids map[string]struct{}
	if checkRows {
		ids = make(map[string]struct{}, len(ds))
	}
	lo, hi := ds[0].ID, ds[0].ID
	for i := range ds {
		id := ds[i].ID
		lo, hi = min(lo, id), max(hi, id)
		if ids == nil {
			continue
		}
		if _, ok := ids[id]; ok {
			dup[i] = true
			continue
		}
		ids[id] = struct{}{}
	}
	// Rows: only ids up to the largest stored may be there (ids grow
	// with their commit second; reading forward, none is).
	var maxRow sql.NullString
	if checkRows {
		if err := tx.QueryRowContext(ctx, `SELECT max(id) FROM deliveries`).Scan(&maxRow); err != nil {
			return nil, nil, fmt.Errorf("check ids: %w", err)
		}
	}
	if maxRow.Valid && maxRow.String >= lo {
		sel := tx.StmtContext(ctx, s.selSeq)
		for i := range ds {
			if dup[i] || ds[i].ID > maxRow.String {
				continue
			}
			var seq int64
			err := sel.QueryRowContext(ctx, ds[i].ID).Scan(&seq)
			switch {
			case err == nil:
				dup[i] = true
			case !errors.Is(err, sql.ErrNoRows):
				return nil, nil, fmt.Errorf("check id %s: %w", ds[i].ID, err)
			}
		}
	}
	// Segments whose id range meets the commit's: reading forward, the
	// last one, at the second the two commits share.
	rows, err := tx.QueryContext(ctx, `SELECT id, id_lo, id_hi FROM segments WHERE id_hi >= ? AND id_lo <= ?`, lo, hi)
	if err != nil {
		return nil, nil, fmt.Errorf("check ids: %w", err)
	}
	type span struct {
		id     int64
		lo, hi string
	}
	var spans []span
	for rows.Next() {
		var sp span
		if err := rows.Scan(&sp.id, &sp.lo, &sp.hi); err != nil {
			rows.Close()
			return nil, nil, fmt.Errorf("check ids: %w", err)
		}
		spans = append(spans, sp)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("check ids: %w", err)
	}
	for _, sp := range spans {
		set := s.lastSeg.ids
		if s.lastSeg.id != sp.id || set == nil {
			es, err := s.readSegment(ctx, tx, sp.id)
			if err != nil {
				return nil, nil, err
			}
			set = make(map[string]struct{}, len(es))
			for _, e := range es {
				set[e.id] = struct{}{}
			}
		}
		for i := range ds {
			id := ds[i].ID
			if dup[i] || id < sp.lo || id > sp.hi {
				continue
			}
			if _, ok := set[id]; ok {
				dup[i] = true
			}
		}
	}
	return dup, ids, nil
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
	if codec != codecZstd {
		return nil, fmt.Errorf("segment %d: unknown codec %q", id, codec)
	}
	_, dec, err := zstdCodec()
	if err != nil {
		return nil, err
	}
	raw, err := dec.DecodeAll(data, nil)
	if err != nil {
		return nil, fmt.Errorf("segment %d: %w", id, err)
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
	s.lastSeg = lastSegment{} // it may be one of them
	return s.expandIDs(ctx, tx, segs)
}

// segmentsHolding selects the segments that may hold delivery id.
const segmentsHolding = `SELECT id FROM segments WHERE id_hi >= ?1 AND id_lo <= ?1`

// expandHolding expands in tx the segments that may hold one of ids.
func (s *Store) expandHolding(ctx context.Context, tx *sql.Tx, ids ...string) (int, error) {
	n := 0
	for _, id := range ids {
		k, err := s.expandTx(ctx, tx, segmentsHolding, id)
		if err != nil {
			return n, err
		}
		n += k
	}
	return n, nil
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
