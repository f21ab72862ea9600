// Package sqlitestore is rowhook's default state store: one SQLite file in
// WAL mode (pure Go driver), holding the checkpoint, the outbox, the
// delivery log, once markers, subscriptions and webhook state.
package sqlitestore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/dispatch"
	"github.com/rowhook/rowhook/dispatch/storesql"
	"github.com/rowhook/rowhook/internal/jsonx"
)

// Options tunes the store.
type Options struct {
	// Synchronous is SQLite's synchronous setting: "normal" (default) or
	// "full". In WAL mode, normal survives a process crash and may lose the
	// last transactions on power loss; the outbox guarantee holds either way
	// because the checkpoint is lost with them and the binlog is replayed.
	Synchronous string
	// ReadOnly opens the file without creating or migrating it.
	ReadOnly bool
	// Init lets Open create rowhook's tables in an existing file that has
	// none (an empty file, say): for `rowhook position --set`, which
	// stores a checkpoint in it at once. Without Init such a file is
	// refused with dispatch.ErrNoState: only a missing file is a fresh
	// start.
	Init bool
}

// Store is a dispatch.Store in a SQLite file.
type Store struct {
	w    *sql.DB // one connection: SQLite has one writer
	r    *sql.DB
	path string
	// Prepared statements of the hot paths (parsing costs more than
	// running them).
	insDelivery, insDeliveries, upsCheckpoint, insAttempt, selSeq, selOnce, insOnce *sql.Stmt
	// Record's, of 1, 2, 4 … recordChunk rows (record.go).
	insAttempts, updResults, updPlain [recordChunkBits + 1]*sql.Stmt
	// attemptsBySeq: the file has attempts.delivery_seq (a read-only open
	// of a file not yet migrated has not).
	pendingDue, pendingOrder, pendingAfter *sql.Stmt
	attemptsBySeq                          bool
	// bodyBlocks: the file has deliveries.body_ref (bodies.go; a
	// read-only open of a file not yet migrated has not). sel, get,
	// writebacks and rerenderSet are shared's statements with the file's
	// body column (inlineBody, or body in a file not yet migrated) and
	// the block reference when it has.
	bodyBlocks                        bool
	sel, get, writebacks, rerenderSet string
	// pendingSel selects shared.PendingColumns (and body_ref): Pending
	// reads what sending needs.
	pendingSel       string
	insBlock         *sql.Stmt
	blockRaw, blockZ []byte // the writer's buffers
	blocks           blockCache
	// ckpt checkpoints the WAL off the commit path (wal.go); nil when
	// read-only.
	ckpt *checkpointer
	// Segments (segments.go): segmentTables when the file has them,
	// segments when this open writes and expands them too (not
	// read-only). segmentMin is the smallest commit stored as one.
	segmentTables, segments bool
	segmentMin              int
	insSegment, insSegmentQueue, updSequence,
	insDeliverySeq, insDeliveriesSeq *sql.Stmt
	segRaw, segZ  []byte // the writer's buffers
	insSegmentIDs *sql.Stmt
	segKeys       []int64
	keysBuf       []byte
	// idSets, deferred and backlogs are the writer's (used while holding
	// its connection); idx has its own lock. deferAhead: backlogAhead.
	idSets     idSets
	idx        segIndex
	deferred   []bool
	backlogs   map[[2]string]*backlog
	deferAhead int64
}

var _ dispatch.Store = (*Store)(nil)

const schema = `
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
	body_inline  BLOB,
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
	response     TEXT,
	body_ref     INTEGER
);
CREATE TABLE IF NOT EXISTS bodies (
	id     INTEGER PRIMARY KEY AUTOINCREMENT,
	codec  TEXT NOT NULL,
	data   BLOB NOT NULL,
	seq_lo INTEGER NOT NULL,
	seq_hi INTEGER NOT NULL
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
` + segmentSchema

// Open opens (creating and migrating unless read-only) the state file at path.
func Open(path string, opts Options) (*Store, error) {
	sync := strings.ToLower(opts.Synchronous)
	if sync == "" {
		sync = "normal"
	}
	if sync != "normal" && sync != "full" {
		return nil, fmt.Errorf("open state %s: synchronous must be normal or full, got %q", path, opts.Synchronous)
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "foreign_keys(on)")
	q.Add("_pragma", "synchronous("+sync+")")
	// 4 MB of page cache on the writer. SQLite's pages cost this allocator
	// about three times their size: 32 MB of cache held 80 MB and was most
	// of the resident size with a million pending, and made no measurable
	// difference to commits (rowhook bench --only rss, catchup, deliver;
	// docs/benchmarks.md).
	q.Add("_pragma", "cache_size(-4000)")
	q.Add("_pragma", "temp_store(memory)")
	if opts.ReadOnly {
		q.Add("mode", "ro")
	} else {
		q.Add("_pragma", "journal_mode(wal)")
		// Commits do not checkpoint: the checkpointer does (wal.go).
		q.Add("_pragma", "wal_autocheckpoint(0)")
		q.Add("_pragma", fmt.Sprintf("journal_size_limit(%d)", walLimitBytes))
		q.Add("_txlock", "immediate")
	}
	fi, statErr := os.Stat(path)
	switch {
	case statErr == nil && fi.Size() == 0 && !opts.Init:
		return nil, fmt.Errorf("open state %s: %w: the file exists but is empty (0 bytes)", path, dispatch.ErrNoState)
	case errors.Is(statErr, fs.ErrNotExist) && !opts.ReadOnly:
		if err := create(path); err != nil {
			return nil, fmt.Errorf("open state %s: %w", path, err)
		}
	case statErr == nil && !opts.Init:
		// Before the writer's pragmas touch the file.
		if err := hasState(path); err != nil {
			return nil, fmt.Errorf("open state %s: %w", path, err)
		}
	}
	dsn := "file:" + path + "?" + q.Encode()
	w, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open state %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetConnMaxIdleTime(0)
	w.SetConnMaxLifetime(0)
	s := &Store{w: w, path: path}
	if !opts.ReadOnly {
		if _, err := w.Exec(schema); err != nil {
			w.Close()
			return nil, fmt.Errorf("open state %s: create schema: %w", path, err)
		}
		if err := migrate(w); err != nil {
			w.Close()
			return nil, fmt.Errorf("open state %s: migrate: %w", path, err)
		}
	} else if err := w.Ping(); err != nil {
		w.Close()
		return nil, fmt.Errorf("open state %s: %w", path, err)
	}
	rq := url.Values{}
	rq.Add("_pragma", "busy_timeout(10000)")
	// Readers lose their cache whenever the writer commits (WAL): 1 MB.
	rq.Add("_pragma", "cache_size(-1000)")
	rq.Add("mode", "ro")
	r, err := sql.Open("sqlite", "file:"+path+"?"+rq.Encode())
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open state %s: %w", path, err)
	}
	r.SetMaxOpenConns(4)
	s.r = r
	if s.attemptsBySeq, err = hasColumn(w, "attempts", "delivery_seq"); err != nil {
		s.Close()
		return nil, fmt.Errorf("open state %s: %w", path, err)
	}
	if s.bodyBlocks, err = hasColumn(w, "deliveries", "body_ref"); err != nil {
		s.Close()
		return nil, fmt.Errorf("open state %s: %w", path, err)
	}
	// A read-only open of a file not yet migrated reads its body column
	// by its earlier name.
	bodyCol := "body"
	for _, col := range []string{"inline_body", inlineBody} {
		if has, err := hasColumn(w, "deliveries", col); err != nil {
			s.Close()
			return nil, fmt.Errorf("open state %s: %w", path, err)
		} else if has {
			bodyCol = col
		}
	}
	if s.segmentTables, err = hasTable(w, "segments"); err != nil {
		s.Close()
		return nil, fmt.Errorf("open state %s: %w", path, err)
	}
	s.segments = s.segmentTables && !opts.ReadOnly
	s.segmentMin, s.deferAhead = segmentMin, deferAheadDefault
	sel := `SELECT ` + withBodyColumn(shared.DeliveryColumns, bodyCol)
	if s.bodyBlocks {
		sel += `, body_ref`
	}
	sel += ` FROM deliveries`
	s.sel, s.get, s.writebacks = sel, withSelect(shared.Get, sel), withSelect(shared.Writebacks, sel)
	s.pendingSel = `SELECT ` + withBodyColumn(shared.PendingColumns, bodyCol)
	if s.bodyBlocks {
		s.pendingSel += `, body_ref`
	}
	s.pendingSel += ` FROM deliveries`
	s.rerenderSet = withBodyColumn(shared.RerenderSet, bodyCol)
	if err := s.prepare(opts.ReadOnly); err != nil {
		s.Close()
		return nil, fmt.Errorf("open state %s: %w", path, err)
	}
	if !opts.ReadOnly {
		if err := s.startCheckpointer(sync); err != nil {
			s.Close()
			return nil, fmt.Errorf("open state %s: %w", path, err)
		}
	}
	return s, nil
}

// startCheckpointer opens the checkpointer's connection and starts it.
func (s *Store) startCheckpointer(sync string) error {
	var pageSize int64
	if err := s.w.QueryRow(`PRAGMA page_size`).Scan(&pageSize); err != nil {
		return err
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	// Its checkpoints sync as the writer's commits do.
	q.Add("_pragma", "synchronous("+sync+")")
	q.Add("_pragma", "cache_size(-100)")
	db, err := sql.Open("sqlite", "file:"+s.path+"?"+q.Encode())
	if err != nil {
		return err
	}
	db.SetMaxOpenConns(1)
	db.SetConnMaxIdleTime(0)
	db.SetConnMaxLifetime(0)
	if err := db.Ping(); err != nil {
		db.Close()
		return err
	}
	s.ckpt = newCheckpointer(db, pageSize)
	s.ckpt.start()
	return nil
}

// beginWrite begins a write transaction on the writer's connection. end,
// deferred by the caller, rolls it back unless committed and notes the
// pages it wrote to the WAL for the checkpointer.
func (s *Store) beginWrite(ctx context.Context) (*sql.Tx, func(), error) {
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return nil, nil, err
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	return tx, func() {
		tx.Rollback()
		if s.ckpt != nil {
			s.ckpt.wrote(context.WithoutCancel(ctx), conn)
		}
		conn.Close()
	}, nil
}

// hasState returns dispatch.ErrNoState unless the file at path holds
// rowhook's tables. It opens the file read-only: a refused file is left
// as it was.
func hasState(path string) error {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return err
	}
	defer db.Close()
	var tables int
	if err := db.QueryRow(`SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'checkpoint'`).Scan(&tables); err != nil {
		if strings.Contains(err.Error(), "not a database") {
			return fmt.Errorf("%w: the file is not a SQLite database (%v)", dispatch.ErrNoState, err)
		}
		return err
	}
	if tables == 0 {
		return fmt.Errorf("%w: the file has no rowhook tables", dispatch.ErrNoState)
	}
	return nil
}

// create makes a new state file at path with rowhook's tables, atomically:
// the tables are built in a temporary file that is then renamed, so a
// crash leaves no file (a fresh start next time) or a complete one, never
// an empty file that Open would refuse.
func create(path string) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".new-*")
	if err != nil {
		return fmt.Errorf("create the file: %w", err)
	}
	name := tmp.Name()
	tmp.Close()
	defer os.Remove(name)
	// SQLite's default 4 KiB pages. 16 KiB pages took 7% less CPU per
	// delivery catching up, but a commit of one delivery writes its
	// pages whole to the WAL: 50% more CPU per such commit, the live
	// path (BenchmarkStore_Commit/batch=1; docs/benchmarks.md).
	db, err := sql.Open("sqlite", "file:"+name+"?_pragma=journal_mode(delete)")
	if err != nil {
		return fmt.Errorf("create the file: %w", err)
	}
	_, err = db.Exec("BEGIN;\n" + schema + "COMMIT;")
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("create the file: create schema: %w", err)
	}
	if err := syncFile(name); err != nil {
		return fmt.Errorf("create the file: %w", err)
	}
	if err := os.Rename(name, path); err != nil {
		return fmt.Errorf("create the file: %w", err)
	}
	return syncFile(dir)
}

func syncFile(name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// migrate brings a state file written by an earlier version up to date.
//
// Attempts are keyed by their delivery's seq (delivery_seq) rather than by
// its id: ids are hashes, so an index on them takes each new attempt to a
// random page, and a batch of results dirtied a page per result (measured:
// 8% of delivery throughput). Seqs grow, so new entries share the last
// pages. Files from before keep delivery_id and gain delivery_seq here.
func migrate(db *sql.DB) error {
	has, err := hasColumn(db, "attempts", "delivery_seq")
	if err != nil {
		return err
	}
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if !has {
		if _, err := tx.Exec(`ALTER TABLE attempts ADD COLUMN delivery_seq INTEGER`); err != nil {
			return err
		}
		if _, err := tx.Exec(`UPDATE attempts SET delivery_seq = (SELECT seq FROM deliveries WHERE id = attempts.delivery_id)`); err != nil {
			return err
		}
	}
	if _, err := tx.Exec(`CREATE INDEX IF NOT EXISTS attempts_delivery_seq ON attempts (delivery_seq, at);
		DROP INDEX IF EXISTS attempts_delivery`); err != nil {
		return err
	}
	// Bodies by blocks (bodies.go): the table is in schema, the
	// deliveries' references are added to files from before. Their
	// deliveries keep their bodies inline (body_ref NULL). The inline
	// body's column is renamed (inlineBody) whenever this version's
	// file format changes: an earlier rowhook, which would read the
	// deliveries whose bodies are in blocks as having none (versions
	// before body blocks, whose column was body) or would not see the
	// deliveries waiting in segments (versions before segments, whose
	// column was inline_body), fails to open the file instead.
	for _, old := range []string{"body", "inline_body"} {
		if has, err := hasColumnTx(tx, "deliveries", old); err != nil {
			return err
		} else if has {
			if _, err := tx.Exec(`ALTER TABLE deliveries RENAME COLUMN ` + old + ` TO ` + inlineBody); err != nil {
				return err
			}
		}
	}
	if has, err := hasColumnTx(tx, "deliveries", "body_ref"); err != nil {
		return err
	} else if !has {
		if _, err := tx.Exec(`ALTER TABLE deliveries ADD COLUMN body_ref INTEGER`); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// inlineBody is the column of the deliveries' inline bodies, named body
// before bodies were stored by blocks and inline_body before segments. Every version before prepares,
// when it opens a state file, statements that name deliveries.body: on a
// file this version wrote they fail ("no such column: body"), so that
// version stops at once rather than send the bodies stored in blocks
// empty (TestStore_EarlierVersionRefused).
const inlineBody = "body_inline"

// bodyWord is the body column's name in shared's statements.
var bodyWord = regexp.MustCompile(`\bbody\b`)

// withBodyColumn is q, one of shared's statements, naming the body
// column col.
func withBodyColumn(q, col string) string {
	if n := len(bodyWord.FindAllStringIndex(q, -1)); n != 1 {
		panic(fmt.Sprintf("sqlitestore: %d body columns in %s", n, q))
	}
	return bodyWord.ReplaceAllLiteralString(q, col)
}

// withSelect is q, a statement of shared.SelectDeliveries, with sel (a
// SELECT … FROM deliveries) instead.
func withSelect(q, sel string) string {
	rest, ok := strings.CutPrefix(q, shared.SelectDeliveries)
	if !ok {
		panic("sqlitestore: not a SelectDeliveries statement: " + q)
	}
	return sel + rest
}

// hasTable reports whether the file has table name.
func hasTable(db *sql.DB, name string) (bool, error) {
	var n int
	err := db.QueryRow(`SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?`, name).Scan(&n)
	return n > 0, err
}

// hasColumn reports whether table has column col.
func hasColumn(db *sql.DB, table, col string) (bool, error) {
	return hasColumnTx(db, table, col)
}

func hasColumnTx(db interface {
	Query(string, ...any) (*sql.Rows, error)
}, table, col string) (bool, error) {
	rows, err := db.Query(`SELECT name FROM pragma_table_info(?)`, table)
	if err != nil {
		return false, err
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return false, err
		}
		if name == col {
			return true, nil
		}
	}
	return false, rows.Err()
}

func (s *Store) prepare(readOnly bool) error {
	var err error
	prep := func(db *sql.DB, dst **sql.Stmt, q string) {
		if err == nil {
			*dst, err = db.Prepare(q)
		}
	}
	prep(s.r, &s.pendingDue, s.pendingSel+` INDEXED BY deliveries_due
		WHERE status = 'pending' AND webhook = ? AND subscription = ? AND next_at <= ? ORDER BY next_at, seq LIMIT ?`)
	prep(s.r, &s.pendingAfter, s.pendingSel+` INDEXED BY deliveries_due
		WHERE status = 'pending' AND webhook = ? AND subscription = ? AND next_at <= ?
		AND next_at >= ? AND (next_at > ? OR seq > ?) ORDER BY next_at, seq LIMIT ?`)
	prep(s.r, &s.pendingOrder, s.pendingSel+` INDEXED BY deliveries_due
		WHERE status = 'pending' AND webhook = ? AND subscription = ? ORDER BY seq LIMIT ?`)
	if readOnly {
		return err
	}
	const cols = `(id, event_id, rule, event, webhook, subscription, record_key, method, url, content_type,
		 headers, ` + inlineBody + `, change, event_time, created_at, next_at, updated_at, status, last_error,
		 body_ref)`
	prep(s.w, &s.insDelivery, `INSERT INTO deliveries `+cols+` VALUES `+insertRow+` ON CONFLICT (id) DO NOTHING`)
	prep(s.w, &s.insDeliveries, `INSERT INTO deliveries `+cols+`
		VALUES `+strings.TrimSuffix(strings.Repeat(insertRow+",", insertChunk), ",")+` ON CONFLICT (id) DO NOTHING`)
	// The same with the seq given: a segment's deliveries have theirs.
	seqRow := "(?," + strings.TrimPrefix(insertRow, "(")
	seqCols := "(seq, " + strings.TrimPrefix(cols, "(")
	prep(s.w, &s.insDeliverySeq, `INSERT INTO deliveries `+seqCols+` VALUES `+seqRow+` ON CONFLICT (id) DO NOTHING`)
	prep(s.w, &s.insDeliveriesSeq, `INSERT INTO deliveries `+seqCols+`
		VALUES `+strings.TrimSuffix(strings.Repeat(seqRow+",", insertChunk), ",")+` ON CONFLICT (id) DO NOTHING`)
	prep(s.w, &s.insSegment, `INSERT INTO segments (seq_lo, seq_hi, n, codec, data, keys) VALUES (?,?,?,?,?,?)`)
	prep(s.w, &s.insSegmentQueue, `INSERT INTO segment_queues (webhook, subscription, next_min, segment, seq_lo, n, created_min)
		VALUES (?,?,?,?,?,?,?)`)
	prep(s.w, &s.updSequence, `UPDATE sqlite_sequence SET seq = max(seq, ?1) WHERE name = 'deliveries'`)
	prep(s.w, &s.insBlock, `INSERT INTO bodies (codec, data, seq_lo, seq_hi) VALUES (?,?,?,?)`)
	prep(s.w, &s.upsCheckpoint, `INSERT INTO checkpoint (id, data) VALUES (1, ?)
		ON CONFLICT (id) DO UPDATE SET data = excluded.data`)
	// ?15 is the delivery's seq when the caller knows it (0 when not).
	prep(s.w, &s.insAttempt, `INSERT INTO attempts (delivery_id, delivery_seq, n, kind, at, duration_us, method, url,
		request_headers, request_body, status, response_headers, response_body, error, note)
		VALUES (?1,CASE WHEN ?15 != 0 THEN ?15 ELSE (SELECT seq FROM deliveries WHERE id = ?1) END,
		?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14)`)
	prep(s.w, &s.selSeq, `SELECT seq FROM deliveries WHERE id = ?`)
	prep(s.w, &s.selOnce, `SELECT event_id FROM once_markers WHERE rule = ? AND record_key = ?`)
	prep(s.w, &s.insOnce, `INSERT INTO once_markers (rule, record_key, event_id) VALUES (?,?,?)`)
	if err != nil {
		return err
	}
	return s.prepareRecord()
}

// Path returns the state file's path.
func (s *Store) Path() string { return s.path }

// Close closes the file. The writer's connection closes last and, the
// file's last connection, checkpoints the WAL into it and removes it.
func (s *Store) Close() error {
	var cerr error
	if s.ckpt != nil {
		cerr = s.ckpt.close()
	}
	return errors.Join(cerr, s.r.Close(), s.w.Close())
}

// headersJSON is h as JSON text, or NULL when h is nil.
func headersJSON(h map[string][]string) any {
	if h == nil {
		return nil
	}
	return string(jsonx.AppendHeaders(make([]byte, 0, 256), h))
}

// Commit implements dispatch.Store. Its errors name the state file: a
// full disk or a read-only file stops rowhook with this error, and the
// operator must know which file.
func (s *Store) Commit(ctx context.Context, cp cdc.Checkpoint, ds []dispatch.NewDelivery) (int, error) {
	n, err := s.commit(ctx, cp, ds)
	if err != nil {
		return 0, fmt.Errorf("state %s: %w", s.path, err)
	}
	return n, nil
}

func (s *Store) commit(ctx context.Context, cp cdc.Checkpoint, ds []dispatch.NewDelivery) (int, error) {
	tx, end, err := s.beginWrite(ctx)
	if err != nil {
		return 0, fmt.Errorf("commit: begin: %w", err)
	}
	defer end()
	refs, err := s.putBodies(ctx, tx, ds)
	if err != nil {
		return 0, fmt.Errorf("commit: %w", err)
	}
	ref := func(i int) bodyRef {
		if refs == nil {
			return 0
		}
		return refs[i]
	}
	inserted := 0
	// The index is built by the first commit (segments.go), not at
	// open: a standby opens the file long before it writes to it.
	if s.segments && len(ds) > 0 {
		s.idx.mu.Lock()
		var err error
		if !s.idx.loaded || s.idx.full() {
			err = s.idx.load(ctx, tx)
		}
		s.idx.mu.Unlock()
		if err != nil {
			return 0, fmt.Errorf("commit: %w", err)
		}
	}
	segment, err := s.segmentable(ctx, tx, ds)
	if err != nil {
		return 0, fmt.Errorf("commit: %w", err)
	}
	if segment {
		if inserted, err = s.commitSegment(ctx, tx, ds, ref); err != nil {
			return 0, fmt.Errorf("commit: %w", err)
		}
	} else if inserted, err = s.commitRows(ctx, tx, ds, ref); err != nil {
		return 0, err
	}
	if !cp.IsZero() {
		b, err := json.Marshal(cp)
		if err != nil {
			return 0, fmt.Errorf("commit: %w", err)
		}
		if _, err := tx.StmtContext(ctx, s.upsCheckpoint).ExecContext(ctx, string(b)); err != nil {
			return 0, fmt.Errorf("commit: checkpoint: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("commit: %w", err)
	}
	if s.segments {
		var deferred []bool
		if segment {
			deferred = s.deferred
		}
		s.addedRows(ds, deferred)
	}
	return inserted, nil
}

// commitRows inserts ds as rows, in tx.
func (s *Store) commitRows(ctx context.Context, tx *sql.Tx, ds []dispatch.NewDelivery, ref func(int) bodyRef) (int, error) {
	// The unique index refuses ids stored as rows; those in segments
	// are checked here.
	var dup []bool
	if s.segments && len(ds) > 0 {
		var keys []int64
		var err error
		if dup, keys, err = s.duplicates(ctx, tx, ds, false); err != nil {
			return 0, fmt.Errorf("commit: %w", err)
		}
		// The rows' keys, for later commits' checks (segments.go); a key
		// of a delivery refused or of a commit that fails costs a look.
		s.idx.mu.Lock()
		s.idx.addRows(keys)
		s.idx.mu.Unlock()
	}
	isDup := func(i int) bool { return dup != nil && dup[i] }
	inserted := 0
	onceSeen := map[[2]string]string{}
	var one, chunk *sql.Stmt
	var err error
	args := make([]any, 0, insertChunk*insertCols)
	for i := 0; i < len(ds); {
		// Runs of insertChunk deliveries without a once marker go in one
		// statement (parsed once, bound once: about a third less CPU per
		// delivery while catching up; docs/benchmarks.md).
		if i+insertChunk <= len(ds) && !anyOnce(ds[i:i+insertChunk]) && (dup == nil || !slices.Contains(dup[i:i+insertChunk], true)) {
			if chunk == nil {
				chunk = tx.StmtContext(ctx, s.insDeliveries)
			}
			args = args[:0]
			for j := i; j < i+insertChunk; j++ {
				if args, err = appendDeliveryArgs(args, &ds[j], ref(j)); err != nil {
					return 0, fmt.Errorf("commit: delivery %s: %w", ds[j].ID, err)
				}
			}
			res, err := chunk.ExecContext(ctx, args...)
			if err != nil {
				return 0, fmt.Errorf("commit: insert deliveries %s to %s: %w", ds[i].ID, ds[i+insertChunk-1].ID, err)
			}
			n, _ := res.RowsAffected()
			inserted += int(n)
			i += insertChunk
			continue
		}
		d, r := &ds[i], ref(i)
		if isDup(i) {
			i++
			continue
		}
		i++
		if args, err = appendDeliveryArgs(args[:0], d, r); err != nil {
			return 0, fmt.Errorf("commit: delivery %s: %w", d.ID, err)
		}
		if one == nil {
			one = tx.StmtContext(ctx, s.insDelivery)
		}
		ok, err := s.insertOne(ctx, tx, one, onceSeen, d, args)
		if err != nil {
			return 0, fmt.Errorf("commit: %w", err)
		}
		if ok {
			inserted++
		}
	}
	return inserted, nil
}

const (
	// insertChunk is the number of deliveries of a multi-row INSERT.
	insertChunk = 64
	// insertCols is the number of parameters per delivery.
	insertCols = 20
	insertRow  = "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)

// insertOne inserts delivery d with st and its parameters args, after
// checking its once marker; it reports whether d was stored (not a
// repeat, not refused by its marker).
func (s *Store) insertOne(ctx context.Context, tx *sql.Tx, st *sql.Stmt, onceSeen map[[2]string]string, d *dispatch.NewDelivery, args []any) (bool, error) {
	if d.Once {
		ok, err := s.onceAllows(ctx, tx, onceSeen, d)
		if err != nil {
			return false, fmt.Errorf("once marker %s %s: %w", d.Rule, d.Key, err)
		}
		if !ok {
			return false, nil
		}
	}
	res, err := st.ExecContext(ctx, args...)
	if err != nil {
		return false, fmt.Errorf("insert delivery %s: %w", d.ID, err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// anyOnce reports whether a delivery of ds carries a once marker (those
// are inserted one by one, after their marker is checked).
func anyOnce(ds []dispatch.NewDelivery) bool {
	for i := range ds {
		if ds[i].Once {
			return true
		}
	}
	return false
}

// appendDeliveryArgs appends the insert parameters of d, whose body is
// inline or in a block (r).
func appendDeliveryArgs(args []any, d *dispatch.NewDelivery, r bodyRef) ([]any, error) {
	headers, change, status, err := storesql.InsertValues(d)
	if err != nil {
		return nil, err
	}
	var body, ref any = d.Body, nil
	if r != 0 {
		body, ref = nil, int64(r)
	}
	return append(args, d.ID, d.EventID, d.Rule, d.Event, d.Webhook, d.Subscription, d.Key,
		d.Method, d.URL, d.ContentType, headers, body, change, storesql.Nanos(d.EventTime), storesql.Nanos(d.CreatedAt),
		storesql.Nanos(d.NextAt), storesql.Nanos(d.CreatedAt), status, d.Error, ref), nil
}

// onceAllows checks and sets the (rule, key) marker of a once delivery. The
// deliveries of one event share the marker, so an event for two webhooks,
// or the replay of an event, passes.
func (s *Store) onceAllows(ctx context.Context, tx *sql.Tx, seen map[[2]string]string, d *dispatch.NewDelivery) (bool, error) {
	k := [2]string{d.Rule, d.Key}
	if ev, ok := seen[k]; ok {
		return ev == d.EventID, nil
	}
	var ev string
	err := tx.StmtContext(ctx, s.selOnce).QueryRowContext(ctx, d.Rule, d.Key).Scan(&ev)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if _, err := tx.StmtContext(ctx, s.insOnce).ExecContext(ctx, d.Rule, d.Key, d.EventID); err != nil {
			return false, err
		}
		seen[k] = d.EventID
		return true, nil
	case err != nil:
		return false, err
	}
	seen[k] = ev
	return ev == d.EventID, nil
}

// Checkpoint implements dispatch.Store.
func (s *Store) Checkpoint(ctx context.Context) (cdc.Checkpoint, bool, error) {
	var data string
	err := s.r.QueryRowContext(ctx, `SELECT data FROM checkpoint WHERE id = 1`).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return cdc.Checkpoint{}, false, nil
	}
	if err != nil {
		return cdc.Checkpoint{}, false, fmt.Errorf("read checkpoint: %w", err)
	}
	var cp cdc.Checkpoint
	if err := json.Unmarshal([]byte(data), &cp); err != nil {
		return cdc.Checkpoint{}, false, fmt.Errorf("read checkpoint: %w", err)
	}
	return cp, true, nil
}

// shared holds the statements both stores run (dispatch/storesql), for
// this file's tables.
var shared = storesql.New(storesql.Tables{Deliveries: "deliveries", Attempts: "attempts",
	Subscriptions: "subscriptions", WebhookState: "webhook_state", Change: "change"})

// Pending implements dispatch.Store. Its deliveries carry what sending
// needs (storesql.PendingColumns): not their change, the fields of their
// last result, their writeback or response, which a pending delivery
// being sent does not use (Get and List read whole deliveries). Each
// column read costs the driver a call or two and often an allocation,
// and the pump reads every delivery it sends.
func (s *Store) Pending(ctx context.Context, q dispatch.PendingQuery) ([]dispatch.Delivery, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	for {
		out, err := s.pending(ctx, q, limit)
		if err != nil {
			return nil, fmt.Errorf("read pending deliveries of %s: %w", storesql.QueueName(q.Webhook, q.Subscription), err)
		}
		// Deliveries of segments that sort among those read are
		// expanded, then the queue read again.
		if !s.segments {
			return out, nil
		}
		sel, args := queueSegments, []any{q.Webhook, q.Subscription}
		full := len(out) >= limit
		if q.DueBy.IsZero() {
			if full {
				sel += ` AND seq_lo <= ?3`
				args = append(args, out[len(out)-1].Seq)
			}
			sel += ` ORDER BY seq_lo`
		} else {
			bound := storesql.Nanos(q.DueBy)
			if full {
				bound = min(bound, storesql.Nanos(out[len(out)-1].NextAt))
			}
			sel += ` AND next_min <= ?3 ORDER BY next_min`
			args = append(args, bound)
		}
		expanded, err := s.expandFirst(ctx, sel, args...)
		if err != nil {
			return nil, fmt.Errorf("read pending deliveries of %s: %w", storesql.QueueName(q.Webhook, q.Subscription), err)
		}
		if !expanded {
			return out, nil
		}
	}
}

func (s *Store) pending(ctx context.Context, q dispatch.PendingQuery, limit int) ([]dispatch.Delivery, error) {
	switch {
	case q.DueBy.IsZero():
		return s.readPending(ctx, s.pendingOrder, q.Webhook, q.Subscription, limit)
	case q.AfterSeq != 0:
		after := storesql.Nanos(q.AfterNextAt)
		return s.readPending(ctx, s.pendingAfter, q.Webhook, q.Subscription, storesql.Nanos(q.DueBy), after, after, q.AfterSeq, limit)
	default:
		return s.readPending(ctx, s.pendingDue, q.Webhook, q.Subscription, storesql.Nanos(q.DueBy), limit)
	}
}

// NextDue implements dispatch.Store.
func (s *Store) NextDue(ctx context.Context, webhook, subscription string, after time.Time) (time.Time, bool, error) {
	// A segment with a delivery due by after may hold others due after
	// it, earlier than its rows': it is expanded. Those left have only
	// deliveries due after it, the earliest their next_min.
	if _, err := s.expandWhere(ctx, queueSegments+` AND next_min <= ?3 ORDER BY next_min`, webhook, subscription, storesql.Nanos(after)); err != nil {
		return time.Time{}, false, fmt.Errorf("read next due of %s: %w", storesql.QueueName(webhook, subscription), err)
	}
	var next, seg sql.NullInt64
	err := s.r.QueryRowContext(ctx, `SELECT min(next_at) FROM deliveries INDEXED BY deliveries_due
		WHERE status = 'pending' AND webhook = ? AND subscription = ? AND next_at > ?`, webhook, subscription, storesql.Nanos(after)).Scan(&next)
	if err == nil && s.segmentTables {
		err = s.r.QueryRowContext(ctx, `SELECT min(next_min) FROM segment_queues WHERE webhook = ? AND subscription = ? AND next_min > ?`,
			webhook, subscription, storesql.Nanos(after)).Scan(&seg)
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("read next due of %s: %w", storesql.QueueName(webhook, subscription), err)
	}
	if seg.Valid && (!next.Valid || seg.Int64 < next.Int64) {
		next = seg
	}
	if !next.Valid {
		return time.Time{}, false, nil
	}
	return time.Unix(0, next.Int64).UTC(), true, nil
}

func (s *Store) insertAttempt(ctx context.Context, tx *sql.Tx, a *dispatch.Attempt) error {
	reqH, respH := headersJSON(a.RequestHeaders), headersJSON(a.ResponseHeaders)
	kind := a.Kind
	if kind == "" {
		kind = dispatch.KindAttempt
	}
	_, err := tx.StmtContext(ctx, s.insAttempt).ExecContext(ctx, a.DeliveryID, a.N, kind, storesql.Nanos(a.At), a.Duration.Microseconds(),
		a.Method, a.URL, reqH, a.RequestBody, a.Status, respH, a.ResponseBody, a.Error, a.Note, a.DeliverySeq)
	return err
}

// Writebacks implements dispatch.Store.
func (s *Store) Writebacks(ctx context.Context, limit int) ([]dispatch.Delivery, error) {
	if limit <= 0 {
		limit = 100
	}
	out, err := s.readDeliveries(ctx, nil, s.writebacks, limit)
	if err != nil {
		return nil, fmt.Errorf("read pending writebacks: %w", err)
	}
	return out, nil
}

// FinishWriteback implements dispatch.Store.
func (s *Store) FinishWriteback(ctx context.Context, id, status, errMsg string, at time.Time) error {
	tx, end, err := s.beginWrite(ctx)
	if err != nil {
		return fmt.Errorf("finish writeback of %s: %w", id, err)
	}
	defer end()
	res, err := tx.ExecContext(ctx, shared.FinishWriteback, status, errMsg, id)
	if err != nil {
		return fmt.Errorf("finish writeback of %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("finish writeback of %s: %w", id, dispatch.ErrNotFound)
	}
	note := "writeback " + status
	if err := s.insertAttempt(ctx, tx, &dispatch.Attempt{DeliveryID: id, Kind: dispatch.KindWriteback, At: at, Error: errMsg, Note: note}); err != nil {
		return fmt.Errorf("finish writeback of %s: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("finish writeback of %s: %w", id, err)
	}
	return nil
}

// List implements dispatch.Store.
func (s *Store) List(ctx context.Context, f dispatch.Filter) ([]dispatch.Delivery, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	where, args := storesql.FilterWhere(f)
	for {
		out, err := s.readDeliveries(ctx, nil, s.sel+where+` ORDER BY seq DESC LIMIT ?`, append(args, limit)...)
		if err != nil {
			return nil, fmt.Errorf("list deliveries: %w", err)
		}
		// Segments hold pending deliveries only. Those whose seqs
		// reach the page (all that match, when it is not full) are
		// expanded, then the page read again.
		if !s.segments || (f.Status != "" && f.Status != dispatch.StatusPending) {
			return out, nil
		}
		sel, sargs := `SELECT id FROM segments WHERE 1=1`, []any{}
		if f.ID != "" {
			segs, err := s.holding(ctx, s.r, idKey(f.ID))
			if err != nil {
				return nil, fmt.Errorf("list deliveries: %w", err)
			}
			sel += ` AND ` + idsIn(segs)
		}
		if f.Webhook != "" {
			sel += ` AND id IN (SELECT segment FROM segment_queues WHERE webhook = ?)`
			sargs = append(sargs, f.Webhook)
		}
		if f.AfterSeq > 0 {
			sel += ` AND seq_lo < ?`
			sargs = append(sargs, f.AfterSeq)
		}
		if len(out) >= limit {
			sel += ` AND seq_hi >= ?`
			sargs = append(sargs, out[len(out)-1].Seq)
		}
		expanded, err := s.expandWhere(ctx, sel+` ORDER BY seq_hi DESC`, sargs...)
		if err != nil {
			return nil, fmt.Errorf("list deliveries: %w", err)
		}
		if !expanded {
			return out, nil
		}
	}
}

// Get implements dispatch.Store.
func (s *Store) Get(ctx context.Context, id string) (dispatch.Delivery, []dispatch.Attempt, error) {
	ds, err := s.readDeliveries(ctx, nil, s.get, id)
	if err == nil && len(ds) == 0 && s.segments {
		var segs []int64
		if segs, err = s.holding(ctx, s.r, idKey(id)); err == nil && len(segs) > 0 {
			var expanded bool
			if expanded, err = s.expandWhere(ctx, `SELECT id FROM segments WHERE `+idsIn(segs)); err == nil && expanded {
				ds, err = s.readDeliveries(ctx, nil, s.get, id)
			}
		}
	}
	if err != nil {
		return dispatch.Delivery{}, nil, fmt.Errorf("get delivery %s: %w", id, err)
	}
	if len(ds) == 0 {
		return dispatch.Delivery{}, nil, fmt.Errorf("get delivery %s: %w", id, dispatch.ErrNotFound)
	}
	d := ds[0]
	byAttempts := `delivery_id = ?`
	key := any(id)
	if s.attemptsBySeq {
		byAttempts, key = `delivery_seq = ?`, d.Seq
	}
	rows, err := s.r.QueryContext(ctx, shared.SelectAttempts+` WHERE `+byAttempts+` ORDER BY at, rowid`, key)
	if err != nil {
		return d, nil, fmt.Errorf("get delivery %s attempts: %w", id, err)
	}
	out, err := storesql.ScanAttempts(rows, id)
	if err != nil {
		return d, nil, fmt.Errorf("get delivery %s attempts: %w", id, err)
	}
	return d, out, nil
}

// Redeliver implements dispatch.Store.
func (s *Store) Redeliver(ctx context.Context, ids []string, f dispatch.Filter, now time.Time, actor string) ([]string, error) {
	tx, end, err := s.beginWrite(ctx)
	if err != nil {
		return nil, fmt.Errorf("redeliver: %w", err)
	}
	defer end()
	if len(ids) == 0 {
		where, args := storesql.FilterWhere(f)
		rows, err := tx.QueryContext(ctx, `SELECT id FROM deliveries`+where+` AND status != 'pending' ORDER BY seq`, args...)
		if err != nil {
			return nil, fmt.Errorf("redeliver: %w", err)
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, fmt.Errorf("redeliver: %w", err)
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("redeliver: %w", err)
		}
	}
	var done []string
	for _, id := range ids {
		status, err := s.statusOf(ctx, tx, id)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("redeliver %s: %w", id, dispatch.ErrNotFound)
		}
		if err != nil {
			return nil, fmt.Errorf("redeliver %s: %w", id, err)
		}
		if status == string(dispatch.StatusPending) {
			continue
		}
		if _, err := tx.ExecContext(ctx, `UPDATE deliveries `+shared.RedeliverSet+` WHERE id = ?`, storesql.Nanos(now), storesql.Nanos(now), id); err != nil {
			return nil, fmt.Errorf("redeliver %s: %w", id, err)
		}
		note := dispatch.RedeliverNote(actor, dispatch.Status(status), now)
		if err := s.insertAttempt(ctx, tx, &dispatch.Attempt{DeliveryID: id, Kind: dispatch.KindRedeliver, At: now, Note: note}); err != nil {
			return nil, fmt.Errorf("redeliver %s: %w", id, err)
		}
		done = append(done, id)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("redeliver: %w", err)
	}
	return done, nil
}

// statusOf reads the status of delivery id in tx, expanding the segment
// it is in if it is in one.
func (s *Store) statusOf(ctx context.Context, tx *sql.Tx, id string) (string, error) {
	var status string
	err := tx.QueryRowContext(ctx, `SELECT status FROM deliveries WHERE id = ?`, id).Scan(&status)
	if errors.Is(err, sql.ErrNoRows) && s.segments {
		expanded, xerr := s.expandHolding(ctx, tx, id)
		if xerr != nil {
			return "", xerr
		}
		if expanded {
			err = tx.QueryRowContext(ctx, `SELECT status FROM deliveries WHERE id = ?`, id).Scan(&status)
		}
	}
	return status, err
}

// Rerender implements dispatch.Store.
func (s *Store) Rerender(ctx context.Context, id string, req dispatch.RenderedRequest, now time.Time, actor string) error {
	args, err := storesql.RerenderArgs(req, now)
	if err != nil {
		return fmt.Errorf("re-render %s: %w", id, err)
	}
	tx, end, err := s.beginWrite(ctx)
	if err != nil {
		return fmt.Errorf("re-render %s: %w", id, err)
	}
	defer end()
	status, err := s.statusOf(ctx, tx, id)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("re-render %s: %w", id, dispatch.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("re-render %s: %w", id, err)
	}
	if status == string(dispatch.StatusPending) {
		return fmt.Errorf("re-render %s: %w", id, dispatch.ErrPending)
	}
	// The new body is inline; a block the old one was in is pruned once
	// nothing refers to it.
	set := s.rerenderSet
	if s.bodyBlocks {
		set += `, body_ref = NULL`
	}
	if _, err := tx.ExecContext(ctx, `UPDATE deliveries `+set+` WHERE id = ?`, append(args, id)...); err != nil {
		return fmt.Errorf("re-render %s: %w", id, err)
	}
	note := dispatch.RerenderNote(actor, req.From, dispatch.Status(status), now)
	if err := s.insertAttempt(ctx, tx, &dispatch.Attempt{DeliveryID: id, Kind: dispatch.KindRedeliver, At: now, Note: note}); err != nil {
		return fmt.Errorf("re-render %s: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("re-render %s: %w", id, err)
	}
	return nil
}

// Fail implements dispatch.Store.
func (s *Store) Fail(ctx context.Context, webhook, subscription, reason string, now time.Time) (int, error) {
	// The queue's segments first: their deliveries are pending too.
	if _, err := s.expandWhere(ctx, queueSegments+` ORDER BY next_min`, webhook, subscription); err != nil {
		return 0, fmt.Errorf("fail deliveries of %s: %w", storesql.QueueName(webhook, subscription), err)
	}
	res, err := s.w.ExecContext(ctx, shared.Fail, reason, storesql.Nanos(now), webhook, subscription)
	if err != nil {
		return 0, fmt.Errorf("fail deliveries of %s: %w", storesql.QueueName(webhook, subscription), err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// AddSubscription implements dispatch.Store.
func (s *Store) AddSubscription(ctx context.Context, sub dispatch.Subscription) error {
	if _, err := s.w.ExecContext(ctx, shared.AddSubscription,
		sub.ID, sub.URL, sub.Event, storesql.Nanos(sub.CreatedAt)); err != nil {
		return fmt.Errorf("add subscription: %w", err)
	}
	return nil
}

// DeleteSubscription implements dispatch.Store.
func (s *Store) DeleteSubscription(ctx context.Context, id string) error {
	res, err := s.w.ExecContext(ctx, shared.DeleteSubscription, id)
	if err != nil {
		return fmt.Errorf("delete subscription %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("delete subscription %s: %w", id, dispatch.ErrNotFound)
	}
	return nil
}

// Subscriptions implements dispatch.Store.
func (s *Store) Subscriptions(ctx context.Context) ([]dispatch.Subscription, error) {
	rows, err := s.r.QueryContext(ctx, shared.Subscriptions)
	if err != nil {
		return nil, fmt.Errorf("list subscriptions: %w", err)
	}
	return storesql.ScanSubscriptions(rows)
}

// SetWebhookDisabled implements dispatch.Store.
func (s *Store) SetWebhookDisabled(ctx context.Context, webhook, reason string, at time.Time) error {
	var err error
	if reason == "" {
		_, err = s.w.ExecContext(ctx, shared.EnableWebhook, webhook)
	} else {
		_, err = s.w.ExecContext(ctx, `INSERT INTO webhook_state (webhook, disabled_reason, at) VALUES (?,?,?)
			ON CONFLICT (webhook) DO UPDATE SET disabled_reason = excluded.disabled_reason, at = excluded.at`, webhook, reason, storesql.Nanos(at))
	}
	if err != nil {
		return fmt.Errorf("set webhook %s state: %w", webhook, err)
	}
	return nil
}

// DisabledWebhooks implements dispatch.Store.
func (s *Store) DisabledWebhooks(ctx context.Context) (map[string]string, error) {
	rows, err := s.r.QueryContext(ctx, shared.DisabledWebhooks)
	if err != nil {
		return nil, fmt.Errorf("read webhook state: %w", err)
	}
	return storesql.ScanDisabledWebhooks(rows)
}

// Stats implements dispatch.Store.
func (s *Store) Stats(ctx context.Context) ([]dispatch.QueueStat, error) {
	rows, err := s.r.QueryContext(ctx, shared.Stats)
	if err != nil {
		return nil, fmt.Errorf("read queue stats: %w", err)
	}
	stats, err := storesql.ScanStats(rows)
	if err == nil {
		stats, err = s.segmentStats(ctx, stats)
	}
	if err != nil {
		return nil, fmt.Errorf("read queue stats: %w", err)
	}
	return stats, nil
}

// Prune implements dispatch.Store.
func (s *Store) Prune(ctx context.Context, cutoff time.Time) (int, error) {
	tx, end, err := s.beginWrite(ctx)
	if err != nil {
		return 0, fmt.Errorf("prune delivery log: %w", err)
	}
	defer end()
	// created_at (indexed) narrows the scan: a delivery updated before the
	// cutoff was created before it too.
	const finished = `created_at < ? AND updated_at < ? AND status IN ('ok', 'failed', 'dead') AND writeback != 'pending'`
	if _, err := tx.ExecContext(ctx, `DELETE FROM attempts WHERE delivery_seq IN (SELECT seq FROM deliveries WHERE `+finished+`)`, storesql.Nanos(cutoff), storesql.Nanos(cutoff)); err != nil {
		return 0, fmt.Errorf("prune delivery log: %w", err)
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM deliveries WHERE `+finished, storesql.Nanos(cutoff), storesql.Nanos(cutoff))
	if err != nil {
		return 0, fmt.Errorf("prune delivery log: %w", err)
	}
	// The body blocks no delivery refers to any more: one look at the
	// seqs of its commit's deliveries each.
	if _, err := tx.ExecContext(ctx, `DELETE FROM bodies WHERE NOT EXISTS (SELECT 1 FROM deliveries
		WHERE seq BETWEEN bodies.seq_lo AND bodies.seq_hi AND body_ref BETWEEN bodies.id * `+blockRefs+` AND bodies.id * `+blockRefs+` + `+blockRefs+` - 1)
		AND NOT EXISTS (SELECT 1 FROM segments WHERE segments.seq_lo <= bodies.seq_hi AND segments.seq_hi >= bodies.seq_lo)`); err != nil {
		return 0, fmt.Errorf("prune body blocks: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("prune delivery log: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}
