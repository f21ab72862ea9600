package sqlitestore

import (
	"container/list"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"

	"github.com/klauspost/compress/zstd"

	"github.com/rowhook/rowhook/dispatch"
	"github.com/rowhook/rowhook/dispatch/storesql"
)

// Bodies of large commits are stored compressed, by blocks. A commit of
// blockMin deliveries or more (a catch-up's group commit) puts their
// bodies, concatenated, into rows of the bodies table, up to
// blockMaxBodies a row, compressed together with zstd: bodies of one
// table's rows share most of their bytes (keys, column names), so a block
// of a hundred 564-byte bodies takes about 11 bytes a body where each body
// alone would take hundreds. Each delivery keeps a reference instead of
// its body: body_block (the bodies row), body_off and body_len (its bytes
// in the decompressed block), with body NULL. Smaller commits (one
// delivery per binlog transaction, the latency path) keep their bodies
// inline, as before. Readers decompress a block once for the deliveries
// of a block they read in a row (blockCache).
//
// A block's id is never reused (AUTOINCREMENT), so a cached block cannot
// go stale; seq_lo and seq_hi bound the seqs of the deliveries that may
// reference it (those inserted by its commit), so Prune finds a block's
// references with a range of the deliveries' primary key.
const (
	blockMin       = 32
	blockMaxBodies = 256
	// blockMaxBytes closes a block early: larger blocks compress no
	// better and cost a reader more to decompress for one body.
	blockMaxBytes = 256 << 10
	// blockCacheBytes bounds the decompressed blocks readers keep.
	blockCacheBytes = 4 << 20
	codecZstd       = "zstd"
)

// bodyRef is where a delivery's body is in a block (block 0: inline).
type bodyRef struct {
	block  int64
	off, n int
}

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
	flush := func() error {
		if len(members) == 0 {
			return nil
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
		for _, i := range members {
			refs[i].block = id
		}
		raw, members = raw[:0], members[:0]
		return nil
	}
	for i := range ds {
		b := ds[i].Body
		if len(b) == 0 {
			continue
		}
		refs[i] = bodyRef{off: len(raw), n: len(b)}
		raw = append(raw, b...)
		members = append(members, i)
		if len(members) == per || len(raw) >= blockMaxBytes {
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

// refScanner scans a row of the deliveries columns followed by
// body_block, body_off and body_len.
type refScanner struct {
	rows            *sql.Rows
	block, off, len *sql.NullInt64
}

func (r refScanner) Scan(dest ...any) error {
	return r.rows.Scan(append(dest, r.block, r.off, r.len)...)
}

// readDeliveries runs a query of s.sel's columns (stmt, prepared on the
// readers, or query) and returns its deliveries with their bodies. The
// rows and their blocks are read in one read transaction: Prune cannot
// delete a block between the two.
func (s *Store) readDeliveries(ctx context.Context, stmt *sql.Stmt, query string, args ...any) ([]dispatch.Delivery, error) {
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
	if !s.bodyBlocks {
		return storesql.ScanDeliveries(rows)
	}
	var out []dispatch.Delivery
	var refs []bodyRef
	var block, off, n sql.NullInt64
	sc := refScanner{rows, &block, &off, &n}
	for rows.Next() {
		d, err := storesql.ScanDelivery(sc)
		if err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, d)
		refs = append(refs, bodyRef{block: block.Int64, off: int(off.Int64), n: int(n.Int64)})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i, r := range refs {
		if r.block == 0 {
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
	raw := s.blocks.get(r.block)
	if raw == nil {
		var codec string
		var data []byte
		err := tx.QueryRowContext(ctx, `SELECT codec, data FROM bodies WHERE id = ?`, r.block).Scan(&codec, &data)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("body block %d is missing", r.block)
		}
		if err != nil {
			return nil, fmt.Errorf("read body block %d: %w", r.block, err)
		}
		if codec != codecZstd {
			return nil, fmt.Errorf("body block %d: unknown codec %q", r.block, codec)
		}
		_, dec, err := zstdCodec()
		if err != nil {
			return nil, err
		}
		if raw, err = dec.DecodeAll(data, nil); err != nil {
			return nil, fmt.Errorf("body block %d: %w", r.block, err)
		}
		s.blocks.put(r.block, raw)
	}
	if r.off < 0 || r.n < 0 || r.off+r.n > len(raw) {
		return nil, fmt.Errorf("body block %d holds %d bytes, not %d at %d", r.block, len(raw), r.n, r.off)
	}
	return append([]byte(nil), raw[r.off:r.off+r.n]...), nil
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

type cachedBlock struct {
	id  int64
	raw []byte
}

func (c *blockCache) get(id int64) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[id]
	if !ok {
		return nil
	}
	c.lru.MoveToFront(e)
	return e.Value.(*cachedBlock).raw
}

func (c *blockCache) put(id int64, raw []byte) {
	if len(raw) > blockCacheBytes/2 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[int64]*list.Element{}
	}
	if _, ok := c.m[id]; ok {
		return
	}
	c.m[id] = c.lru.PushFront(&cachedBlock{id, raw})
	c.size += len(raw)
	for c.size > blockCacheBytes {
		e := c.lru.Back()
		b := c.lru.Remove(e).(*cachedBlock)
		delete(c.m, b.id)
		c.size -= len(b.raw)
	}
}
