package sqlitestore

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/rowhook/rowhook/dispatch"
)

// schemaV1 is the state file's schema before bodies were stored by
// blocks (rowhook before issue 18): the body inline, no body_ref.
const schemaV1 = `
CREATE TABLE IF NOT EXISTS checkpoint (
	id   INTEGER PRIMARY KEY CHECK (id = 1),
	data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
	seq          INTEGER PRIMARY KEY AUTOINCREMENT,
	id           TEXT NOT NULL UNIQUE,
	event_id     TEXT NOT NULL,
	rule         TEXT NOT NULL,
	event        TEXT NOT NULL,
	webhook      TEXT NOT NULL,
	subscription TEXT NOT NULL DEFAULT '',
	record_key   TEXT NOT NULL,
	method       TEXT NOT NULL,
	url          TEXT NOT NULL,
	content_type TEXT NOT NULL,
	headers      TEXT,
	body         BLOB,
	change       TEXT,
	event_time   INTEGER NOT NULL,
	created_at   INTEGER NOT NULL,
	next_at      INTEGER NOT NULL,
	updated_at   INTEGER NOT NULL,
	status       TEXT NOT NULL,
	attempts     INTEGER NOT NULL DEFAULT 0,
	last_status  INTEGER NOT NULL DEFAULT 0,
	last_error   TEXT NOT NULL DEFAULT '',
	redelivered  INTEGER NOT NULL DEFAULT 0,
	writeback    TEXT NOT NULL DEFAULT '',
	writeback_error TEXT NOT NULL DEFAULT '',
	response     TEXT
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (webhook, subscription, next_at, seq) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS deliveries_created ON deliveries (created_at);
CREATE INDEX IF NOT EXISTS deliveries_writeback ON deliveries (seq) WHERE writeback = 'pending';
CREATE TABLE IF NOT EXISTS attempts (
	delivery_id      TEXT NOT NULL,
	delivery_seq     INTEGER,
	n                INTEGER NOT NULL,
	kind             TEXT NOT NULL,
	at               INTEGER NOT NULL,
	duration_us      INTEGER NOT NULL,
	method           TEXT NOT NULL DEFAULT '',
	url              TEXT NOT NULL DEFAULT '',
	request_headers  TEXT,
	request_body     BLOB,
	status           INTEGER NOT NULL DEFAULT 0,
	response_headers TEXT,
	response_body    BLOB,
	error            TEXT NOT NULL DEFAULT '',
	note             TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS once_markers (
	rule       TEXT NOT NULL,
	record_key TEXT NOT NULL,
	event_id   TEXT NOT NULL,
	PRIMARY KEY (rule, record_key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS subscriptions (
	id         TEXT PRIMARY KEY,
	url        TEXT NOT NULL,
	event      TEXT NOT NULL,
	created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS webhook_state (
	webhook         TEXT PRIMARY KEY,
	disabled_reason TEXT NOT NULL,
	at              INTEGER NOT NULL
);
`

// oldFile makes a state file as the previous version did, 4 KiB pages
// and WAL, with the deliveries ds (bodies inline) and a checkpoint.
func oldFile(t *testing.T, ds []dispatch.NewDelivery) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(wal)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(schemaV1); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO checkpoint (id, data) VALUES (1, '{"flavor":"mariadb","file":"bin.000001","pos":4}')`); err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if _, err := db.Exec(`INSERT INTO deliveries (id, event_id, rule, event, webhook, record_key, method, url, content_type,
			body, event_time, created_at, next_at, updated_at, status) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,'pending')`,
			d.ID, d.EventID, d.Rule, d.Event, d.Webhook, d.Key, d.Method, d.URL, d.ContentType, d.Body,
			d.EventTime.UnixNano(), d.CreatedAt.UnixNano(), d.NextAt.UnixNano(), d.CreatedAt.UnixNano()); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

func batch(prefix string, n int) []dispatch.NewDelivery {
	var ds []dispatch.NewDelivery
	for i := range n {
		d := nd(fmt.Sprintf("%s%d", prefix, i), "erp")
		d.Body = fmt.Appendf(nil, `{"prefix":%q,"i":%d,"name":"row %d of a batch"}`, prefix, i, i)
		ds = append(ds, d)
	}
	return ds
}

func bodiesOf(t *testing.T, s *Store) map[string][]byte {
	t.Helper()
	ds, err := s.Pending(context.Background(), dispatch.PendingQuery{Webhook: "erp", Limit: 100_000})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, d := range ds {
		out[d.ID] = d.Body
	}
	return out
}

func count(t *testing.T, s *Store, q string) int {
	t.Helper()
	var n int
	if err := s.r.QueryRow(q).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestStore_BodyBlocks: a large commit's bodies go to blocks (rows with
// no inline body), a small commit's stay inline, nil and empty bodies come
// back as they went in, and Prune deletes the blocks nothing refers to.
func TestStore_BodyBlocks(t *testing.T) {
	ctx := context.Background()
	s := openSeg(t, filepath.Join(t.TempDir(), "state.db"))
	big := batch("big", 300)
	big[7].Body, big[8].Body = nil, []byte{}
	if _, err := s.Commit(ctx, cp(1), big); err != nil {
		t.Fatal(err)
	}
	small := batch("small", blockMin-1)
	if _, err := s.Commit(ctx, cp(2), small); err != nil {
		t.Fatal(err)
	}
	if n := count(t, s, `SELECT count(*) FROM bodies`); n != 2 {
		t.Errorf("%d body blocks, want 2 (298 bodies, at most %d a block)", n, blockMaxBodies)
	}
	// The large commit waits in a segment; listing expands it into rows
	// that refer to its blocks.
	if n := count(t, s, `SELECT count(*) FROM segments`); n != 1 {
		t.Errorf("%d segments, want 1", n)
	}
	if ds, err := s.List(ctx, dispatch.Filter{Limit: 1000}); err != nil || len(ds) != len(big)+len(small) {
		t.Fatalf("List: %d deliveries, %v; want %d", len(ds), err, len(big)+len(small))
	}
	if n := count(t, s, `SELECT count(*) FROM segments`); n != 0 {
		t.Errorf("%d segments after List, want 0", n)
	}
	if n := count(t, s, `SELECT count(*) FROM deliveries WHERE body_ref IS NOT NULL AND body_inline IS NULL`); n != 298 {
		t.Errorf("%d deliveries refer to a block, want 298", n)
	}
	if n := count(t, s, `SELECT count(*) FROM deliveries WHERE body_ref IS NULL AND body_inline IS NOT NULL`); n != len(small)+1 {
		t.Errorf("%d deliveries with an inline body, want %d (the small commit's and an empty body)", n, len(small)+1)
	}
	got := bodiesOf(t, s)
	for _, d := range append(big, small...) {
		if !bytes.Equal(got[d.ID], d.Body) {
			t.Errorf("%s body = %q, want %q", d.EventID, got[d.ID], d.Body)
		}
	}
	if got[big[7].ID] != nil {
		t.Errorf("nil body read back as %q", got[big[7].ID])
	}
	// A block is deleted with the last delivery that refers to it: the
	// first holds the bodies of big[:151] but 7 and 8.
	var rs []dispatch.Result
	for _, d := range big[:151] {
		rs = append(rs, dispatch.Result{Attempt: dispatch.Attempt{DeliveryID: d.ID, N: 1, At: t0, Status: 200}, Status: dispatch.StatusOK, Attempts: 1})
	}
	if err := s.Record(ctx, rs); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Prune(ctx, t0.Add(1e12)); err != nil {
		t.Fatal(err)
	}
	if n := count(t, s, `SELECT count(*) FROM bodies`); n != 1 {
		t.Errorf("%d body blocks after the first block's deliveries were pruned, want 1", n)
	}
	got = bodiesOf(t, s)
	for _, d := range big[151:] {
		if !bytes.Equal(got[d.ID], d.Body) {
			t.Errorf("after prune: %s body = %q, want %q", d.EventID, got[d.ID], d.Body)
		}
	}
}

// TestStore_BodyBlocksMigrate: a file of the previous version (bodies
// inline, no block columns, 4 KiB pages) opens read-only as it is, is
// migrated by a read-write open, keeps its page size and bodies, and takes
// blocks for its new large commits.
func TestStore_BodyBlocksMigrate(t *testing.T) {
	ctx := context.Background()
	old := batch("old", 50)
	path := oldFile(t, old)
	ro, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if ro.bodyBlocks {
		t.Error("a read-only open of a file without body_ref reads blocks")
	}
	got := bodiesOf(t, ro)
	for _, d := range old {
		if !bytes.Equal(got[d.ID], d.Body) {
			t.Errorf("read-only, not migrated: %s body = %q, want %q", d.EventID, got[d.ID], d.Body)
		}
	}
	ro.Close()
	s := open(t, path)
	if !s.bodyBlocks {
		t.Fatal("migrated file has no body_ref")
	}
	var ps int
	if err := s.w.QueryRow(`PRAGMA page_size`).Scan(&ps); err != nil || ps != 4096 {
		t.Errorf("migrated file's page_size = %d (%v), want 4096 as it was", ps, err)
	}
	fresh := batch("fresh", 100)
	if _, err := s.Commit(ctx, cp(10), fresh); err != nil {
		t.Fatal(err)
	}
	if n := count(t, s, `SELECT count(*) FROM deliveries WHERE body_ref IS NOT NULL`); n != 100 {
		t.Errorf("%d deliveries in blocks after a large commit, want 100", n)
	}
	s.Close()
	s = open(t, path)
	got = bodiesOf(t, s)
	for _, d := range append(old, fresh...) {
		if !bytes.Equal(got[d.ID], d.Body) {
			t.Errorf("after migration: %s body = %q, want %q", d.EventID, got[d.ID], d.Body)
		}
	}
	for _, d := range []dispatch.NewDelivery{old[3], fresh[42]} {
		g, _, err := s.Get(ctx, d.ID)
		if err != nil || !bytes.Equal(g.Body, d.Body) {
			t.Errorf("get %s = %q (%v), want %q", d.EventID, g.Body, err, d.Body)
		}
	}
}

// TestStore_BlockCacheBounded: the readers' cache of decompressed blocks
// stays within blockCacheBytes, dropping the least recently used.
func TestStore_BlockCacheBounded(t *testing.T) {
	var c blockCache
	block := make([]byte, blockCacheBytes/10)
	for id := int64(1); id <= 40; id++ {
		c.put(&cachedBlock{id: id, raw: block, offs: []int{0, len(block)}})
		c.get(1) // keeps block 1
		if c.size > blockCacheBytes {
			t.Fatalf("cache holds %d bytes after %d blocks, more than %d", c.size, id, blockCacheBytes)
		}
	}
	if c.get(1) == nil || c.get(40) == nil || c.get(2) != nil {
		t.Error("cache did not drop the least recently used")
	}
	c.put(&cachedBlock{id: 99, raw: make([]byte, blockCacheBytes)})
	if c.get(99) != nil {
		t.Error("a block larger than half the cache was cached")
	}
}

// TestDecodeBlock_Refuses: a block of another codec, or whose lengths do
// not add up, is an error, never bodies read wrong.
func TestDecodeBlock_Refuses(t *testing.T) {
	enc, _, err := zstdCodec()
	if err != nil {
		t.Fatal(err)
	}
	good := enc.EncodeAll([]byte("\x02\x01\x02abc"), nil)
	if b, err := decodeBlock(1, codecZstd, good); err != nil || string(b.raw[b.offs[1]:b.offs[2]]) != "bc" {
		t.Fatalf("good block: %+v, %v", b, err)
	}
	for name, tc := range map[string]struct {
		codec string
		data  []byte
	}{
		"unknown codec":     {"zstd2", good},
		"not zstd":          {codecZstd, []byte("\x02\x01\x02abc")},
		"lengths too long":  {codecZstd, enc.EncodeAll([]byte("\x02\x01\x05abc"), nil)},
		"lengths too short": {codecZstd, enc.EncodeAll([]byte("\x02\x01\x01abc"), nil)},
		"no bodies":         {codecZstd, enc.EncodeAll([]byte("\x00"), nil)},
	} {
		if _, err := decodeBlock(1, tc.codec, tc.data); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
