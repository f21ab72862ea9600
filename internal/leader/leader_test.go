package leader_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/rowhook/rowhook/internal/leader"
	"github.com/rowhook/rowhook/internal/mariadbtest"
)

var srv *mariadbtest.Server

func TestMain(m *testing.M) { os.Exit(mariadbtest.Main(m, &srv, mariadbtest.Options{})) }

const interval = 500 * time.Millisecond

func newElector(t *testing.T, name string) (*leader.Elector, *prometheus.Registry) {
	mariadbtest.Need(t)
	t.Helper()
	dcfg, err := mysql.ParseDSN(srv.DSN(""))
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	e, err := leader.New(leader.Config{Server: dcfg, Name: name, Interval: interval}, leader.Deps{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e, reg
}

// acquireAsync starts Acquire in the background.
func acquireAsync(ctx context.Context, e *leader.Elector) <-chan *leader.Lease {
	ch := make(chan *leader.Lease, 1)
	go func() {
		l, err := e.Acquire(ctx)
		if err != nil {
			close(ch)
			return
		}
		ch <- l
	}()
	return ch
}

// waitFor polls cond; the bound only keeps a broken build from hanging.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestElector_KilledHolderLosesAndWaiterAcquires(t *testing.T) {
	mariadbtest.Need(t)
	name := "rowhook-test-" + t.Name()
	a, regA := newElector(t, name)
	b, regB := newElector(t, name)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	la, err := a.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	laID := a.Status().Holder // the lease's lock session
	if got := testutil.ToFloat64(collector(t, regA, "rowhook_ha_leader")); got != 1 {
		t.Errorf("holder's rowhook_ha_leader = %v, want 1", got)
	}
	var holder int64
	if err := srv.DB().QueryRow("SELECT IS_USED_LOCK(?)", name).Scan(&holder); err != nil {
		t.Fatal(err)
	}
	if holder != laID {
		t.Fatalf("server says connection %d holds the lock, the holder's status says %d", holder, laID)
	}

	waiting := acquireAsync(ctx, b)
	waitFor(t, "the standby to report the holder", func() bool {
		st := b.Status()
		return !st.Leader && st.Holder == laID
	})
	// Several probes later the holder still holds it and the waiter waits.
	time.Sleep(3 * interval)
	select {
	case <-waiting:
		t.Fatal("second elector acquired a held lock")
	case <-la.Lost():
		t.Fatalf("holder lost a healthy lock: %v", la.Err())
	default:
	}
	if !a.Status().Leader {
		t.Error("holder's status does not say leader")
	}

	if _, err := srv.DB().Exec(fmt.Sprintf("KILL CONNECTION %d", laID)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-la.Lost():
	case <-time.After(10 * time.Second):
		t.Fatal("holder's Lost not closed after KILL CONNECTION of its lock session")
	}
	if la.Err() == nil {
		t.Error("lost lease without a reason")
	}
	if a.Status().Leader {
		t.Error("holder still reports leader after losing the lock")
	}
	if got := testutil.ToFloat64(collector(t, regA, "rowhook_ha_leader")); got != 0 {
		t.Errorf("rowhook_ha_leader after loss = %v, want 0", got)
	}
	var lb *leader.Lease
	select {
	case lb = <-waiting:
	case <-time.After(10 * time.Second):
		t.Fatal("waiter did not acquire the lock after the holder's session was killed")
	}
	if lb == nil {
		t.Fatal("waiter's Acquire failed")
	}
	if b.Status().Holder == laID {
		t.Error("new lease on the killed connection")
	}
	if got := testutil.ToFloat64(collector(t, regB, "rowhook_ha_takeovers_total")); got != 1 {
		t.Errorf("rowhook_ha_takeovers_total = %v, want 1", got)
	}
	if err := lb.Release(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestLease_ReleaseHandsOver(t *testing.T) {
	mariadbtest.Need(t)
	name := "rowhook-test-" + t.Name()
	a, _ := newElector(t, name)
	b, _ := newElector(t, name)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	la, err := a.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	laID := a.Status().Holder // the lease's lock session
	waiting := acquireAsync(ctx, b)
	waitFor(t, "the standby to see the holder", func() bool { return b.Status().Holder == laID })
	if err := la.Release(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-la.Lost():
		t.Error("a released lease reports lost")
	default:
	}
	lb := <-waiting
	if lb == nil {
		t.Fatal("waiter's Acquire failed")
	}
	var holder int64
	if err := srv.DB().QueryRow("SELECT IS_USED_LOCK(?)", name).Scan(&holder); err != nil {
		t.Fatal(err)
	}
	if lbID := b.Status().Holder; holder != lbID {
		t.Errorf("server says %d holds the lock, the new holder's status says %d", holder, lbID)
	}
	lb.Release(ctx)
}

// A partition between the holder and the lock server: the holder's probe
// gets no answer and it gives the lock up, and only later does the server,
// having heard nothing for wait_timeout, end the session and let the
// standby in. The order is the fence docs/ha.md argues for.
func TestElector_PartitionedHolderStopsBeforeTakeover(t *testing.T) {
	mariadbtest.Need(t)
	name := "rowhook-test-" + t.Name()
	px := newFreezingProxy(t, fmt.Sprintf("%s:%d", srv.Host, srv.Port))
	dcfg, err := mysql.ParseDSN(srv.DSN(""))
	if err != nil {
		t.Fatal(err)
	}
	dcfg.Addr = px.addr()
	a, err := leader.New(leader.Config{Server: dcfg, Name: name, Interval: interval}, leader.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, _ := newElector(t, name)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	la, err := a.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	laID := a.Status().Holder // the lease's lock session
	waiting := acquireAsync(ctx, b)
	waitFor(t, "the standby to see the holder", func() bool { return b.Status().Holder == laID })

	frozeAt := time.Now()
	px.freeze()
	var lostAt, acquiredAt time.Time
	var lb *leader.Lease
	for lostAt.IsZero() || acquiredAt.IsZero() {
		select {
		case <-la.Lost():
			if lostAt.IsZero() {
				lostAt = time.Now()
			}
		case l := <-waiting:
			if l == nil {
				t.Fatal("waiter's Acquire failed")
			}
			lb, acquiredAt = l, time.Now()
			waiting = nil
		case <-time.After(15 * time.Second):
			t.Fatalf("after the partition: lost=%v acquired=%v", !lostAt.IsZero(), !acquiredAt.IsZero())
		}
		if lostAt.IsZero() && !acquiredAt.IsZero() {
			t.Fatalf("standby acquired the lock %s after the partition while the holder still believed it held it", acquiredAt.Sub(frozeAt))
		}
	}
	t.Logf("partition at 0: holder stopped after %s, standby acquired after %s (interval %s, wait_timeout %s, bound %s)",
		lostAt.Sub(frozeAt).Round(time.Millisecond), acquiredAt.Sub(frozeAt).Round(time.Millisecond),
		interval, leader.WaitTimeout(interval), leader.Bound(interval))
	lb.Release(ctx)
}

// freezingProxy forwards TCP to a server until frozen; then it forwards
// nothing and closes nothing, as a network partition would.
type freezingProxy struct {
	ln     net.Listener
	mu     sync.Mutex
	frozen bool
	thaw   chan struct{}
	conns  []net.Conn
}

func newFreezingProxy(t *testing.T, target string) *freezingProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &freezingProxy{ln: ln, thaw: make(chan struct{})}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			go p.pump(c, s)
			go p.pump(s, c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		defer p.mu.Unlock()
		close(p.thaw)
		for _, c := range p.conns {
			c.Close()
		}
	})
	return p
}

func (p *freezingProxy) addr() string { return p.ln.Addr().String() }

func (p *freezingProxy) freeze() {
	p.mu.Lock()
	p.frozen = true
	p.mu.Unlock()
}

func (p *freezingProxy) pump(src, dst net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		p.mu.Lock()
		frozen := p.frozen
		p.mu.Unlock()
		if frozen {
			<-p.thaw // until the test ends
			return
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				err = werr
			}
		}
		if err != nil {
			dst.Close()
			return
		}
	}
}

func TestNew_Validates(t *testing.T) {
	mariadbtest.Need(t)
	dcfg, _ := mysql.ParseDSN(srv.DSN(""))
	for _, tc := range []struct {
		name string
		cfg  leader.Config
		want string
	}{
		{"no server", leader.Config{Name: "x", Interval: time.Second}, "no server"},
		{"empty name", leader.Config{Server: dcfg, Interval: time.Second}, "lock name"},
		{"long name", leader.Config{Server: dcfg, Name: strings.Repeat("n", 65), Interval: time.Second}, "lock name"},
		{"short interval", leader.Config{Server: dcfg, Name: "x", Interval: time.Millisecond}, "interval"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := leader.New(tc.cfg, leader.Deps{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
}

func collector(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	return gathered{reg: reg, name: name}
}

// gathered exposes one metric family of a registry as a collector, for
// testutil.ToFloat64.
type gathered struct {
	reg  *prometheus.Registry
	name string
}

func (g gathered) Describe(ch chan<- *prometheus.Desc) {}
func (g gathered) Collect(ch chan<- prometheus.Metric) {
	mfs, _ := g.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != g.name {
			continue
		}
		for _, m := range mf.GetMetric() {
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
			ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(g.name, "", nil, nil), prometheus.UntypedValue, v)
		}
	}
}

// An unreachable lock server: Acquire keeps trying until its context ends,
// and Status says what is wrong and where.
func TestElector_UnreachableServer(t *testing.T) {
	mariadbtest.Need(t)
	dcfg, err := mysql.ParseDSN(srv.DSN(""))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dcfg.Addr = ln.Addr().String()
	ln.Close() // nothing listens there now
	e, err := leader.New(leader.Config{Server: dcfg, Name: "x", Interval: leader.MinInterval}, leader.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := e.Acquire(ctx)
		done <- err
	}()
	waitFor(t, "a connection error in Status", func() bool { return e.Status().Err != nil })
	if st := e.Status(); st.Leader || !strings.Contains(st.Err.Error(), dcfg.Addr) {
		t.Errorf("status %+v: want not leader and an error naming %s", st, dcfg.Addr)
	}
	cancel()
	if err := <-done; err != context.Canceled {
		t.Errorf("Acquire after cancel: %v, want context.Canceled", err)
	}
}
