package sqlitestore

import (
	"context"
	"database/sql"
	"sync"
	"sync/atomic"
	"time"

	sqlite "modernc.org/sqlite"
)

// The WAL is checkpointed mostly off the commit path. SQLite's own
// automatic checkpoint (wal_autocheckpoint, every 1,000 pages) runs inside
// the commit that crosses the threshold: that commit copies the WAL's
// pages into the database and fsyncs both before it returns (~10% of the
// CPU of a catch-up, and the tail of the commit→receiver latency). The
// writer connection has it off (wal_autocheckpoint=0). Instead each write
// transaction counts the pages it wrote to the WAL (SQLite's cache-write
// counter) and, every walSoftBytes, signals a checkpointer goroutine that
// runs PRAGMA wal_checkpoint(PASSIVE) on its own connection: it copies
// what no reader still needs, fsyncs, and waits for no one.
//
// A checkpoint that runs beside commits never catches up with them: the
// WAL starts over (is written again from its start) only after a
// checkpoint copied all of it and before the next commit. So every
// walFinishBytes the writer runs a PASSIVE checkpoint itself, after its
// commit, when the checkpointer is not running: it copies only what was
// committed since the checkpointer's last run, and the next commit starts
// the WAL over. A commit waits for that short copy and its fsyncs a
// quarter as often as it waited for SQLite's checkpoint, which copied all.
//
// The WAL stays bounded: when the writer finds it longer than walHardBytes
// (readers kept it from starting over), or walHardBytes were written while
// the checkpointer could not run or the writer could not finish, it runs
// a checkpoint(TRUNCATE), which
// waits (busy_timeout) for the readers and empties the file: commits slow
// down rather than the WAL growing without end. journal_size_limit
// truncates a WAL longer than walLimitBytes when it starts over.
var (
	walSoftBytes   int64 = 4 << 20
	walFinishBytes int64 = 16 << 20
	walHardBytes   int64 = 64 << 20
	walLimitBytes  int64 = 64 << 20
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
	// checkpoint to end (it reports busy). The writer's finishing
	// checkpoint only tries it; its truncating one waits.
	mu sync.Mutex
	// The writer's counts of pages written to the WAL: since it last
	// signalled, since its last finishing checkpoint, and since the
	// checkpointer last ran (which the checkpointer resets).
	sinceSignal, sinceFinish int64
	sinceRun                 atomic.Int64
	// For tests: checkpoints run by the goroutine and by the writer,
	// truncating ones, and whether one is waiting for readers now.
	runs, finishes, truncates atomic.Int64
	waiting                   atomic.Bool
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
			if c.sinceRun.Load() == 0 {
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
		c.mu.Lock()
		c.sinceRun.Store(0)
		// An error is left to the next run (a failing file fails the
		// writer's commits, which report it).
		walCheckpoint(context.Background(), c.db, "PASSIVE")
		c.mu.Unlock()
		c.runs.Add(1)
	}
}

// wrote notes the pages the writer connection wrote since the last call
// (after a write transaction), signals the checkpointer every
// walSoftBytes, finishes a checkpoint every walFinishBytes and truncates
// the WAL past walHardBytes.
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
	n := int64(pages) * c.pageSize
	c.sinceSignal += n
	c.sinceFinish += n
	unrun := c.sinceRun.Add(n)
	if c.sinceSignal >= walSoftBytes {
		c.sinceSignal = 0
		select {
		case c.signal <- struct{}{}:
		default:
		}
	}
	// Past walHardBytes without a finished checkpoint (the checkpointer
	// kept running, or could not run), truncate.
	truncate := unrun >= walHardBytes || c.sinceFinish >= walHardBytes
	if !truncate && c.sinceFinish >= walFinishBytes && c.mu.TryLock() {
		// The checkpointer is not running: what it left is short.
		_, log, _, err := walCheckpoint(ctx, conn, "PASSIVE")
		c.mu.Unlock()
		c.finishes.Add(1)
		// Tried once per walFinishBytes even when readers kept it
		// from copying all (busy): each try may copy and fsync.
		c.sinceFinish = 0
		truncate = err == nil && int64(log)*c.pageSize >= walHardBytes
	}
	if !truncate {
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
	c.sinceFinish = 0
	if err == nil && busy == 0 {
		c.sinceRun.Store(0)
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
