package cdc

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
)

// A watchdog closes a binlog connection that has sent nothing, not even a
// heartbeat, for source.read_timeout while rowhook was waiting to read it:
// a source that hangs, or a connection a firewall or NAT dropped without a
// reset, which would otherwise be waited on for ever.
//
// go-mysql's own ReadTimeout does this by setting a read deadline before
// every packet (twice: the packet reader and the binlog loop each set one).
// Each deadline re-arms a runtime timer under a lock; with four or five
// packets per transaction it was about 2 µs of a one-row transaction's 14
// µs of CPU (rowhook bench --only pertx, docs/benchmarks.md). The watchdog
// instead counts reads on the connection and looks at it a few times per
// timeout period.
//
// A read in progress is what it watches: while the reader is busy with
// what it already has (a slow commit, a full event buffer) go-mysql does
// not read, and a quiet socket then means nothing.
type watchdog struct {
	timeout time.Duration
	dial    client.Dialer

	mu    sync.Mutex
	conns []*watchedConn
}

// newWatchdog returns a watchdog for the connections dial makes; with
// timeout 0 it watches nothing.
func newWatchdog(timeout time.Duration) *watchdog {
	d := &net.Dialer{}
	return &watchdog{timeout: timeout, dial: d.DialContext}
}

// Dial is the replication connection's dialer (BinlogSyncerConfig.Dialer).
func (w *watchdog) Dial(ctx context.Context, network, address string) (net.Conn, error) {
	c, err := w.dial(ctx, network, address)
	if err != nil || w.timeout <= 0 {
		return c, err
	}
	wc := &watchedConn{Conn: c, done: make(chan struct{})}
	w.mu.Lock()
	w.conns = append(w.conns, wc)
	w.mu.Unlock()
	go wc.watch(w.timeout)
	return wc, nil
}

// stalled returns the error for a connection the watchdog closed, or nil
// when it closed none.
func (w *watchdog) stalled() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range w.conns {
		if c.fired.Load() {
			return fmt.Errorf("cdc: the source sent nothing for %s (source.read_timeout), not even a heartbeat: closed the connection", w.timeout)
		}
	}
	return nil
}

// close stops watching every connection (the syncer closes them).
func (w *watchdog) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range w.conns {
		c.stop()
	}
	w.conns = nil
}

// watchedConn is a connection whose reads the watchdog sees.
type watchedConn struct {
	net.Conn
	reading atomic.Bool   // a Read is waiting
	reads   atomic.Uint64 // Reads returned
	fired   atomic.Bool   // the watchdog closed the connection
	done    chan struct{}
	once    sync.Once
}

func (c *watchedConn) Read(p []byte) (int, error) {
	c.reading.Store(true)
	n, err := c.Conn.Read(p)
	c.reading.Store(false)
	c.reads.Add(1)
	return n, err
}

func (c *watchedConn) Close() error {
	c.stop()
	return c.Conn.Close()
}

func (c *watchedConn) stop() { c.once.Do(func() { close(c.done) }) }

// watch closes the connection once a read has waited timeout with no
// read returning. It looks every quarter of timeout, so it closes the
// connection between timeout and 1.25×timeout after the last data.
func (c *watchedConn) watch(timeout time.Duration) {
	tick := time.NewTicker(max(timeout/4, 10*time.Millisecond))
	defer tick.Stop()
	last, since := c.reads.Load(), time.Now()
	for {
		select {
		case <-c.done:
			return
		case now := <-tick.C:
			if n := c.reads.Load(); n != last || !c.reading.Load() {
				last, since = n, now
				continue
			}
			if now.Sub(since) >= timeout {
				c.fired.Store(true)
				c.Conn.Close()
				c.stop()
				return
			}
		}
	}
}
