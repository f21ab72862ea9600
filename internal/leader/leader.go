// Package leader elects one active rowhook among several with a named lock
// on a MySQL/MariaDB server (GET_LOCK). The lock lives in one session on a
// dedicated connection: the server releases it when that session ends, so
// a dead process's lock goes away by itself. The holder keeps the session
// busy with a probe that blocks for one interval and re-checks ownership;
// the session's wait_timeout is a few intervals, so a holder that vanishes
// without closing its connection (power loss, partition) loses the lock
// after a bounded time, and a holder that cannot complete a probe stops
// before the server would release it. docs/ha.md has the timing argument.
package leader

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/prometheus/client_golang/prometheus"
)

// Metric names are namespace_subsystem_name (prometheus.BuildFQName).
const (
	namespace = "rowhook"
	subsystem = "ha"
)

// Config says which lock to take, where, and how often to check it.
type Config struct {
	// Server is the MySQL/MariaDB server holding the lock. Locks are per
	// server: every process of one deployment must use the same server.
	Server *mysql.Config
	// Name is the lock's name (at most 64 characters).
	Name string
	// Interval is how often a standby tries the lock and how long each
	// of the holder's probes blocks. At least 100ms.
	Interval time.Duration
}

// Deps are the elector's collaborators.
type Deps struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Sentinel errors.
var (
	// ErrNotOurs means the server reports the lock held by another session
	// (or by none) while this one believed it held it.
	ErrNotOurs = errors.New("leader: the lock is no longer held by this session")
)

// MinInterval is the shortest probe interval accepted.
const MinInterval = 100 * time.Millisecond

// WaitTimeout is the lock session's wait_timeout for a probe interval:
// three intervals, rounded up to whole seconds (the server's unit). The
// server ends a silent session, and releases its lock, that long after
// the last probe's answer.
func WaitTimeout(interval time.Duration) time.Duration {
	return time.Duration(math.Ceil((3 * interval).Seconds())) * time.Second
}

// ProbeDeadline is how long the holder waits for a probe's answer (which
// takes one interval on the server) before it gives the lock up: half of
// wait_timeout beyond the interval. The server releases the lock no
// earlier than one interval plus wait_timeout after receiving the probe,
// which leaves the holder half of wait_timeout (at least 500ms) to stop.
func ProbeDeadline(interval time.Duration) time.Duration {
	return interval + WaitTimeout(interval)/2
}

// Bound is the longest time from the holder's death to the lock being
// free again: the running probe ends (one interval), then the server waits
// wait_timeout for the next command. A process killed outright (its
// connection closed) frees the lock after at most one interval.
func Bound(interval time.Duration) time.Duration {
	return interval + WaitTimeout(interval)
}

// Status is what the elector last saw.
type Status struct {
	// Leader is true while this process holds the lock.
	Leader bool
	// Holder is the connection id holding the lock, 0 when free or
	// unknown.
	Holder int64
	// Err is the last error talking to the lock server, nil when the last
	// attempt worked.
	Err error
}

// Elector takes and keeps one named lock.
type Elector struct {
	cfg    Config
	db     *sql.DB
	logger *slog.Logger
	m      *metrics

	mu     sync.Mutex
	status Status
}

// New checks the configuration and prepares the connection pool (nothing
// is dialled until Acquire).
func New(cfg Config, deps Deps) (*Elector, error) {
	if cfg.Server == nil {
		return nil, errors.New("leader: no server configured")
	}
	if cfg.Name == "" || len(cfg.Name) > 64 {
		return nil, fmt.Errorf("leader: lock name must be 1 to 64 characters, got %d", len(cfg.Name))
	}
	if cfg.Interval < MinInterval {
		return nil, fmt.Errorf("leader: interval %s is below %s", cfg.Interval, MinInterval)
	}
	logger := deps.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	reg := deps.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	dcfg := cfg.Server.Clone()
	if dcfg.Params == nil {
		dcfg.Params = map[string]string{}
	}
	// The fence: the server ends this session, releasing the lock, when it
	// has been silent for wait_timeout.
	dcfg.Params["wait_timeout"] = fmt.Sprint(int(WaitTimeout(cfg.Interval) / time.Second))
	// One round trip per probe: the driver quotes the lock name itself.
	dcfg.InterpolateParams = true
	dcfg.MultiStatements = false
	// Dial and I/O bounded so a partitioned server is noticed even where a
	// context is not watched.
	if dcfg.Timeout == 0 || dcfg.Timeout > 2*cfg.Interval {
		dcfg.Timeout = max(2*cfg.Interval, time.Second)
	}
	ioTimeout := ProbeDeadline(cfg.Interval) + time.Second
	dcfg.ReadTimeout, dcfg.WriteTimeout = ioTimeout, ioTimeout
	lg := logger.With("component", "ha", "lock", cfg.Name)
	dcfg.Logger = driverLogger{lg}
	conn, err := mysql.NewConnector(dcfg)
	if err != nil {
		return nil, fmt.Errorf("leader: lock server: %v", err)
	}
	db := sql.OpenDB(conn)
	// A connection handed back is closed, never parked in the pool: a
	// parked session could keep the lock.
	db.SetMaxIdleConns(0)
	return &Elector{cfg: cfg, db: db, logger: lg, m: m}, nil
}

// Close closes the connection pool. A held lock is released with its
// session.
func (e *Elector) Close() error { return e.db.Close() }

// Status returns what the elector last saw.
func (e *Elector) Status() Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.status
}

func (e *Elector) setStatus(s Status) {
	e.mu.Lock()
	e.status = s
	e.mu.Unlock()
}

// Acquire blocks until this process holds the lock or ctx ends (then it
// returns ctx's error). Connection failures are retried every interval;
// Status reports them and who holds the lock meanwhile.
func (e *Elector) Acquire(ctx context.Context) (*Lease, error) {
	var conn *sql.Conn
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	lastHolder := int64(-1)
	for {
		if conn == nil {
			c, err := e.db.Conn(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				e.fail(fmt.Errorf("connect to lock server %s: %w", e.cfg.Server.Addr, err))
			} else {
				conn = c
			}
		}
		if conn != nil {
			l, holder, err := e.try(ctx, conn)
			switch {
			case ctx.Err() != nil:
				return nil, ctx.Err()
			case err != nil:
				e.fail(err)
				conn.Close()
				conn = nil
			case l != nil:
				conn = nil // the lease owns it
				return l, nil
			default:
				e.setStatus(Status{Holder: holder})
				if holder != lastHolder {
					e.logger.Info("standby: lock held by another session", "holder_connection", holder)
					lastHolder = holder
				}
			}
		}
		t := time.NewTimer(e.cfg.Interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// fail records a failed attempt; it is logged when it differs from the
// previous one, not at every interval.
func (e *Elector) fail(err error) {
	e.mu.Lock()
	repeated := e.status.Err != nil && e.status.Err.Error() == err.Error()
	e.status = Status{Err: err}
	e.mu.Unlock()
	if !repeated {
		e.logger.Warn("lock server", "error", err)
	}
}

// try attempts the lock once on conn: a Lease when taken, else the
// holder's connection id.
func (e *Elector) try(ctx context.Context, conn *sql.Conn) (*Lease, int64, error) {
	qctx, cancel := context.WithTimeout(ctx, 2*e.cfg.Interval+time.Second)
	defer cancel()
	var got sql.NullInt64
	if err := conn.QueryRowContext(qctx, "SELECT /* rowhook */ GET_LOCK(?, 0)", e.cfg.Name).Scan(&got); err != nil {
		return nil, 0, fmt.Errorf("GET_LOCK(%q) on %s: %w", e.cfg.Name, e.cfg.Server.Addr, err)
	}
	if !got.Valid {
		return nil, 0, fmt.Errorf("GET_LOCK(%q) on %s returned NULL", e.cfg.Name, e.cfg.Server.Addr)
	}
	if got.Int64 != 1 {
		var holder sql.NullInt64
		if err := conn.QueryRowContext(qctx, "SELECT /* rowhook */ IS_USED_LOCK(?)", e.cfg.Name).Scan(&holder); err != nil {
			return nil, 0, fmt.Errorf("IS_USED_LOCK(%q) on %s: %w", e.cfg.Name, e.cfg.Server.Addr, err)
		}
		return nil, holder.Int64, nil
	}
	var id int64
	if err := conn.QueryRowContext(qctx, "SELECT /* rowhook */ CONNECTION_ID()").Scan(&id); err != nil {
		return nil, 0, fmt.Errorf("CONNECTION_ID() on %s: %w", e.cfg.Server.Addr, err)
	}
	l := &Lease{e: e, conn: conn, id: id, lost: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	e.setStatus(Status{Leader: true, Holder: id})
	e.m.leader.Set(1)
	e.m.takeovers.Inc()
	e.logger.Info("lock acquired: this process is active", "connection", id)
	go l.watch()
	return l, id, nil
}

// Lease is a held lock. Lost is closed when it may no longer be held.
type Lease struct {
	e    *Elector
	conn *sql.Conn
	id   int64

	lost     chan struct{}
	lostErr  atomic.Pointer[error]
	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
}

// Lost is closed as soon as the lock may no longer be this process's: a
// probe failed, did not answer within ProbeDeadline, or the server names
// another holder. The caller must stop working at once.
func (l *Lease) Lost() <-chan struct{} { return l.lost }

// Err says why the lease was lost (nil while held).
func (l *Lease) Err() error {
	if p := l.lostErr.Load(); p != nil {
		return *p
	}
	return nil
}

// watch probes the lock until released or lost. Each probe blocks on the
// server for one interval (SLEEP), so the session is never idle for long,
// and a KILL of the session or a closed connection ends the probe at once.
func (l *Lease) watch() {
	defer close(l.done)
	iv := l.e.cfg.Interval
	for {
		select {
		case <-l.stop:
			return
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), ProbeDeadline(iv))
		var ours sql.NullBool
		var slept sql.NullInt64
		err := l.conn.QueryRowContext(ctx, "SELECT /* rowhook */ IS_USED_LOCK(?) = CONNECTION_ID(), SLEEP(?)",
			l.e.cfg.Name, iv.Seconds()).Scan(&ours, &slept)
		cancel()
		switch {
		case err != nil:
			select {
			case <-l.stop:
				return // released while probing
			default:
			}
			l.lose(fmt.Errorf("lock probe on %s: %w", l.e.cfg.Server.Addr, err))
			return
		case !ours.Valid || !ours.Bool:
			l.lose(ErrNotOurs)
			return
		}
	}
}

func (l *Lease) lose(err error) {
	l.lostErr.Store(&err)
	l.e.m.leader.Set(0)
	l.e.setStatus(Status{Err: err})
	l.e.logger.Error("lock lost: this process must stop at once", "error", err)
	close(l.lost)
	l.conn.Close()
}

// Release gives the lock up (after the running probe, at most one
// interval) and closes its session. Calling it after the lease was lost
// only closes the connection.
func (l *Lease) Release(ctx context.Context) error {
	l.stopOnce.Do(func() { close(l.stop) })
	select {
	case <-l.done:
	case <-ctx.Done():
		// Closing the connection below ends the session too.
	}
	defer l.conn.Close()
	select {
	case <-l.lost:
		return nil
	default:
	}
	l.e.m.leader.Set(0)
	l.e.setStatus(Status{})
	var released sql.NullInt64
	if err := l.conn.QueryRowContext(ctx, "SELECT /* rowhook */ RELEASE_LOCK(?)", l.e.cfg.Name).Scan(&released); err != nil {
		return fmt.Errorf("release lock %q: %w (closing the connection releases it)", l.e.cfg.Name, err)
	}
	l.e.logger.Info("lock released", "connection", l.id)
	return nil
}

// driverLogger keeps the driver's own messages (a killed connection's
// "unexpected EOF") in the process log at debug level; the elector reports
// the failures that matter itself.
type driverLogger struct{ l *slog.Logger }

func (d driverLogger) Print(v ...any) { d.l.Debug("mysql driver", "message", fmt.Sprint(v...)) }

type metrics struct {
	leader    prometheus.Gauge
	takeovers prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: subsystem, Name: "leader",
			Help: "1 while this process holds the HA lock and runs the pipeline, 0 while standby.",
		}),
		takeovers: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: subsystem, Name: "takeovers_total",
			Help: "Times this process acquired the HA lock and became active.",
		}),
	}
	for _, c := range []prometheus.Collector{m.leader, m.takeovers} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("leader: register metrics: %w", err)
		}
	}
	return m, nil
}
