package sqlitestore

import (
	"context"
	"database/sql"
	"sync"
	"sync/atomic"
	"time"

	sqlite "modernc.org/sqlite"
)

// The WAL is checkpointed off the commit path. SQLite's own automatic
// checkpoint (wal_autocheckpoint, every 1,000 pages) runs inside the
// commit that crosses the threshold: that commit copies the WAL's pages
// into the database and fsyncs it before it returns (~10% of the CPU of a
// catch-up, and the tail of the commit→receiver latency). The writer
// connection has it off (wal_autocheckpoint=0); instead each write
// transaction counts the pages it wrote to the WAL (SQLite's cache-write
// counter) and, past walSoftBytes, signals a checkpointer goroutine that
// runs PRAGMA wal_checkpoint(PASSIVE) on its own connection: it copies
// what no reader still needs and never waits for anyone.
//
// The WAL stays bounded: when walHardBytes were written and not
// checkpointed (readers kept pinning old pages, or the checkpointer fell
// behind), or the WAL holds that much though it was copied (readers kept
// it from starting over), the writer runs a checkpoint(TRUNCATE) after its
// commit, which waits (busy_timeout) for the readers and empties the
// file: commits slow down instead of the WAL growing without end. journal_size_limit truncates a WAL that grew past walLimitBytes
// whenever it starts over.
var (
	walSoftBytes  int64 = 4 << 20
	walHardBytes  int64 = 64 << 20
	walLimitBytes int64 = 16 << 20
	// walTick checkpoints what trickled in below walSoftBytes.
	walTick = time.Second
	// walHold, set by a test, is the hold of the next checkpointers.
	walHold chan struct{}
)

type checkpointer struct {
	db       *sql.DB // its own read-write connection
	pageSize int64
	signal   chan struct{}
	stop     chan struct{}
	done     sync.WaitGroup
	closed   sync.Once
	// mu is held by each checkpoint: SQLite does not wait for another
	// checkpoint to end (it reports busy), so the writer's truncating one
	// waits here for the checkpointer's.
	mu sync.Mutex
	// pending counts the pages written to the WAL since the last
	// checkpoint that copied all of it.
	pending atomic.Int64
	// For tests: checkpoints run by the goroutine, TRUNCATE checkpoints
	// run (by either side), and whether one is waiting for readers now.
	runs, truncates atomic.Int64
	waiting         atomic.Bool
	// truncate asks the writer for a truncating checkpoint.
	truncate atomic.Bool
	// hold, when set by a test, keeps the goroutine from checkpointing
	// until it is closed.
	hold chan struct{}
}

func newCheckpointer(db *sql.DB, pageSize int64) *checkpointer {
	return &checkpointer{db: db, pageSize: pageSize, signal: make(chan struct{}, 1), stop: make(chan struct{}), hold: walHold}
}

func (c *checkpointer) start() {
	c.done.Add(1)
	go c.loop()
}

// close stops the goroutine and closes its connection.
func (c *checkpointer) close() error {
	c.closed.Do(func() { close(c.stop) })
	c.done.Wait()
	return c.db.Close()
}

func (c *checkpointer) loop() {
	defer c.done.Done()
	t := time.NewTicker(walTick)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-c.signal:
		case <-t.C:
			if c.pending.Load() == 0 {
				continue
			}
		}
		if c.hold != nil {
			select {
			case <-c.hold:
			case <-c.stop:
				return
			}
		}
		c.checkpoint()
	}
}

// checkpoint runs a passive checkpoint. When it leaves a WAL longer than
// walHardBytes, though copied (readers kept it from starting over), it
// asks the writer to truncate it: the writer's own truncating checkpoint
// needs no lock that commits would keep taking from it. Errors are left
// to the next run (a failing file fails the writer's commits, which
// report it).
func (c *checkpointer) checkpoint() {
	c.mu.Lock()
	before := c.pending.Load()
	busy, log, done, err := walCheckpoint(context.Background(), c.db, "PASSIVE")
	c.mu.Unlock()
	c.runs.Add(1)
	if err != nil {
		return
	}
	if busy == 0 && log == done {
		c.forget(before)
	}
	if int64(log)*c.pageSize >= walHardBytes {
		c.truncate.Store(true)
	}
}

// forget takes n pages off pending, the pages a complete checkpoint copied.
func (c *checkpointer) forget(n int64) {
	if c.pending.Add(-n) < 0 {
		c.pending.Store(0)
	}
}

// wrote notes the pages the writer connection wrote since the last call
// (after a write transaction), signals the checkpointer past
// walSoftBytes, and past walHardBytes checkpoints itself, waiting for the
// readers.
func (c *checkpointer) wrote(ctx context.Context, conn *sql.Conn) {
	var pages int
	if err := conn.Raw(func(dc any) error {
		st, ok := dc.(sqlite.DBStatus)
		if !ok {
			return nil
		}
		pages, _, _ = st.Status(sqlite.DBStatusCacheWrite, true)
		return nil
	}); err != nil || pages == 0 {
		return
	}
	p := c.pending.Add(int64(pages)) * c.pageSize
	// Once per walSoftBytes written.
	if p/walSoftBytes != (p-int64(pages)*c.pageSize)/walSoftBytes {
		select {
		case c.signal <- struct{}{}:
		default:
		}
	}
	if p < walHardBytes && !c.truncate.Load() {
		return
	}
	// busy when a reader outlasted busy_timeout: the next write tries
	// again.
	c.mu.Lock()
	c.waiting.Store(true)
	busy, _, _, err := walCheckpoint(ctx, conn, "TRUNCATE")
	c.waiting.Store(false)
	c.mu.Unlock()
	c.truncates.Add(1)
	if err == nil && busy == 0 {
		c.pending.Store(0)
		c.truncate.Store(false)
	}
}

type queryRower interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// walCheckpoint runs PRAGMA wal_checkpoint(mode): busy is 1 when it could
// not finish, log the WAL's frames, done the frames copied.
func walCheckpoint(ctx context.Context, db queryRower, mode string) (busy, log, done int, err error) {
	err = db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(`+mode+`)`).Scan(&busy, &log, &done)
	return
}
