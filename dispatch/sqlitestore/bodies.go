package sqlitestore

import (
	"container/list"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/klauspost/compress/zstd"

	"github.com/rowhook/rowhook/dispatch"
	"github.com/rowhook/rowhook/dispatch/storesql"
)

// Bodies of large commits are stored compressed, by blocks. A commit of
// blockMin deliveries or more (a catch-up's group commit) puts their
// bodies into rows of the bodies table, up to blockMaxBodies a row,
// compressed together with zstd: bodies of one table's rows share most of
// their bytes (keys, column names), so a block of 256 catch-up bodies of
// 564 bytes takes 9 bytes a body (BenchmarkStore_CatchUp) where each
// body alone would take hundreds. A block decompresses to the number of
// bodies and their lengths (uvarints), then the bodies one after the
// other. Each delivery keeps a reference instead of its body, body_ref =
// block id × 256 + its index in the block, with inline_body NULL (one
// column to bind and a few bytes).
// Smaller commits (one delivery per binlog transaction, the latency path)
// keep their bodies inline, as before (body_ref NULL). Readers decompress
// a block once for the deliveries of a block they read in a row
// (blockCache).
//
// A block's id is never reused (AUTOINCREMENT), so a cached block cannot
// go stale; seq_lo and seq_hi bound the seqs of the deliveries that may
// refer to it (those inserted by its commit), so Prune finds a block's
// references with a range of the deliveries' primary key.
const (
	blockMin       = 32
	blockMaxBodies = 256 // body_ref's factor
	// blockMaxBytes closes a block early: larger blocks compress no
	// better and cost a reader more to decompress for one body.
	blockMaxBytes = 256 << 10
	// blockCacheBytes bounds the decompressed blocks readers keep.
	blockCacheBytes = 4 << 20
	codecZstd       = "zstd"
)

// bodyRef is a delivery's body_ref: its block × blockMaxBodies + its
// index in the block; 0 when the body is inline.
type bodyRef int64

// blockRefs is blockMaxBodies in SQL.
var blockRefs = strconv.Itoa(blockMaxBodies)

func (r bodyRef) block() int64 { return int64(r) / blockMaxBodies }
func (r bodyRef) index() int   { return int(int64(r) % blockMaxBodies) }

var (
	zOnce sync.Once
	zEnc  *zstd.Encoder
	zDec  *zstd.Decoder
	zErr  error
)

func zstdCodec() (*zstd.Encoder, *zstd.Decoder, error) {
	zOnce.Do(func() {
		zEnc, zErr = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1),
			zstd.WithWindowSize(1<<20), zstd.WithLowerEncoderMem(true))
		if zErr != nil {
			return
		}
		zDec, zErr = zstd.NewReader(nil, zstd.WithDecoderConcurrency(4), zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxMemory(64<<20))
	})
	return zEnc, zDec, zErr
}

// putBodies stores the bodies of ds in blocks (when there are blockMin
// deliveries or more) and returns each one's reference, or nil when the
// bodies stay inline. It runs in the commit's transaction, before the
// deliveries are inserted.
func (s *Store) putBodies(ctx context.Context, tx *sql.Tx, ds []dispatch.NewDelivery) ([]bodyRef, error) {
	if len(ds) < blockMin || !s.bodyBlocks {
		return nil, nil
	}
	withBody := 0
	for i := range ds {
		if len(ds[i].Body) > 0 {
			withBody++
		}
	}
	if withBody < blockMin {
		return nil, nil
	}
	enc, _, err := zstdCodec()
	if err != nil {
		return nil, err
	}
	// The deliveries this commit inserts get seqs after the largest so
	// far, at most one each.
	var last int64
	if err := tx.QueryRowContext(ctx, `SELECT seq FROM sqlite_sequence WHERE name = 'deliveries'`).Scan(&last); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, err
	}
	lo, hi := last+1, last+int64(len(ds))
	// Blocks of even size: 300 bodies make two of 150, not 256 and 44.
	blocks := (withBody + blockMaxBodies - 1) / blockMaxBodies
	per := (withBody + blocks - 1) / blocks
	refs := make([]bodyRef, len(ds))
	ins := tx.StmtContext(ctx, s.insBlock)
	raw := s.blockRaw[:0]
	var members []int
	size := 0
	flush := func() error {
		if len(members) == 0 {
			return nil
		}
		raw = binary.AppendUvarint(raw[:0], uint64(len(members)))
		for _, i := range members {
			raw = binary.AppendUvarint(raw, uint64(len(ds[i].Body)))
		}
		for _, i := range members {
			raw = append(raw, ds[i].Body...)
		}
		s.blockZ = enc.EncodeAll(raw, s.blockZ[:0])
		res, err := ins.ExecContext(ctx, codecZstd, s.blockZ, lo, hi)
		if err != nil {
			return fmt.Errorf("insert body block: %w", err)
		}
		id, err := res.LastInsertId()
		if err != nil {
			return err
		}
		for k, i := range members {
			refs[i] = bodyRef(id*blockMaxBodies + int64(k))
		}
		members, size = members[:0], 0
		return nil
	}
	for i := range ds {
		if len(ds[i].Body) == 0 {
			continue
		}
		members = append(members, i)
		size += len(ds[i].Body)
		if len(members) == per || size >= blockMaxBytes {
			if err := flush(); err != nil {
				return nil, err
			}
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	if cap(raw) <= 4*blockMaxBytes {
		s.blockRaw = raw
	}
	if cap(s.blockZ) > 4*blockMaxBytes {
		s.blockZ = nil
	}
	return refs, nil
}

// readDeliveries runs a query of s.sel's columns (stmt, prepared on the
// readers, or query) and returns its deliveries with their bodies. The
// rows and their blocks are read in one read transaction: Prune cannot
// delete a block between the two.
func (s *Store) readDeliveries(ctx context.Context, stmt *sql.Stmt, query string, args ...any) ([]dispatch.Delivery, error) {
	return s.read(ctx, storesql.NewDeliveryScanner, stmt, query, args...)
}

// readPending is readDeliveries for a statement of s.pendingSel's columns.
func (s *Store) readPending(ctx context.Context, stmt *sql.Stmt, args ...any) ([]dispatch.Delivery, error) {
	return s.read(ctx, storesql.NewPendingScanner, stmt, "", args...)
}

func (s *Store) read(ctx context.Context, scanner func(extra ...any) *storesql.DeliveryScanner, stmt *sql.Stmt, query string, args ...any) ([]dispatch.Delivery, error) {
	tx, err := s.r.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	var rows *sql.Rows
	if stmt != nil {
		rows, err = tx.StmtContext(ctx, stmt).QueryContext(ctx, args...)
	} else {
		rows, err = tx.QueryContext(ctx, query, args...)
	}
	if err != nil {
		return nil, err
	}
	var ref sql.NullInt64
	var sc *storesql.DeliveryScanner
	if s.bodyBlocks {
		sc = scanner(&ref)
	} else {
		sc = scanner()
	}
	var out []dispatch.Delivery
	var refs []bodyRef
	for rows.Next() {
		d, err := sc.Scan(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, d)
		refs = append(refs, bodyRef(ref.Int64))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i, r := range refs {
		if r == 0 {
			continue
		}
		if out[i].Body, err = s.blockBody(ctx, tx, r); err != nil {
			return nil, fmt.Errorf("delivery %s body: %w", out[i].ID, err)
		}
	}
	return out, nil
}

// blockBody returns a copy of the body r refers to.
func (s *Store) blockBody(ctx context.Context, tx *sql.Tx, r bodyRef) ([]byte, error) {
	id := r.block()
	b := s.blocks.get(id)
	if b == nil {
		var codec string
		var data []byte
		err := tx.QueryRowContext(ctx, `SELECT codec, data FROM bodies WHERE id = ?`, id).Scan(&codec, &data)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("body block %d is missing", id)
		}
		if err != nil {
			return nil, fmt.Errorf("read body block %d: %w", id, err)
		}
		if b, err = decodeBlock(id, codec, data); err != nil {
			return nil, err
		}
		s.blocks.put(b)
	}
	i := r.index()
	if i >= len(b.offs)-1 {
		return nil, fmt.Errorf("body block %d holds %d bodies, not %d", id, len(b.offs)-1, i+1)
	}
	return append([]byte(nil), b.raw[b.offs[i]:b.offs[i+1]]...), nil
}

// decompress returns data, compressed with codec, as it was; what names
// it in errors ("body block 7").
func decompress(what, codec string, data []byte) ([]byte, error) {
	if codec != codecZstd {
		return nil, fmt.Errorf("%s: unknown codec %q", what, codec)
	}
	_, dec, err := zstdCodec()
	if err != nil {
		return nil, err
	}
	raw, err := dec.DecodeAll(data, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return raw, nil
}

// decodeBlock decompresses a block and finds its bodies.
func decodeBlock(id int64, codec string, data []byte) (*cachedBlock, error) {
	raw, err := decompress(fmt.Sprintf("body block %d", id), codec, data)
	if err != nil {
		return nil, err
	}
	bad := fmt.Errorf("body block %d: malformed", id)
	n, k := binary.Uvarint(raw)
	if k <= 0 || n == 0 || n > blockMaxBodies {
		return nil, bad
	}
	raw = raw[k:]
	offs := make([]int, n+1)
	for i := range int(n) {
		l, k := binary.Uvarint(raw)
		if k <= 0 || l > uint64(len(raw)) {
			return nil, bad
		}
		raw = raw[k:]
		offs[i+1] = offs[i] + int(l)
	}
	if offs[n] != len(raw) {
		return nil, bad
	}
	return &cachedBlock{id: id, raw: raw, offs: offs}, nil
}

// blockCache keeps the blocks readers decompressed last, up to
// blockCacheBytes: a queue reads its deliveries in order, 64 at a time,
// and decompresses each block once.
type blockCache struct {
	mu   sync.Mutex
	size int
	lru  list.List // of *cachedBlock, most recent first
	m    map[int64]*list.Element
}

// cachedBlock is a decompressed block: body i is raw[offs[i]:offs[i+1]].
type cachedBlock struct {
	id   int64
	raw  []byte
	offs []int
}

func (c *cachedBlock) size() int { return len(c.raw) + 8*len(c.offs) }

func (c *blockCache) get(id int64) *cachedBlock {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[id]
	if !ok {
		return nil
	}
	c.lru.MoveToFront(e)
	return e.Value.(*cachedBlock)
}

func (c *blockCache) put(b *cachedBlock) {
	if b.size() > blockCacheBytes/2 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[int64]*list.Element{}
	}
	if _, ok := c.m[b.id]; ok {
		return
	}
	c.m[b.id] = c.lru.PushFront(b)
	c.size += b.size()
	for c.size > blockCacheBytes {
		e := c.lru.Back()
		old := c.lru.Remove(e).(*cachedBlock)
		delete(c.m, old.id)
		c.size -= old.size()
	}
}
