package cdc_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/rowhook/rowhook/cdc"
)

// freezer is a TCP proxy to the test server whose connections can be
// frozen: they stay open but carry nothing either way, as a connection a
// firewall or NAT dropped without a reset, or a hung source. Connections
// made after a freeze flow.
type freezer struct {
	ln       net.Listener
	upstream string

	mu     sync.Mutex
	conns  []*frozenPair
	closed bool
}

type frozenPair struct {
	frozen chan struct{}
	once   sync.Once
	a, b   net.Conn
}

func newFreezer(t *testing.T, upstream string) *freezer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{ln: ln, upstream: upstream}
	go f.serve()
	t.Cleanup(f.close)
	return f
}

func (f *freezer) addr() string { return f.ln.Addr().String() }

func (f *freezer) serve() {
	for {
		a, err := f.ln.Accept()
		if err != nil {
			return
		}
		b, err := net.Dial("tcp", f.upstream)
		if err != nil {
			a.Close()
			continue
		}
		p := &frozenPair{frozen: make(chan struct{}), a: a, b: b}
		f.mu.Lock()
		f.conns = append(f.conns, p)
		f.mu.Unlock()
		go p.pipe(a, b)
		go p.pipe(b, a)
	}
}

// pipe copies src to dst until either closes or the pair is frozen; a
// frozen pair holds what it read and sends nothing more.
func (p *frozenPair) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		select {
		case <-p.frozen:
			<-make(chan struct{}) // hold the connection open, silent
		default:
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			dst.Close()
			return
		}
	}
}

// freeze freezes every connection open now.
func (f *freezer) freeze() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range f.conns {
		p.once.Do(func() { close(p.frozen) })
	}
	n := len(f.conns)
	f.conns = nil
	return n
}

func (f *freezer) close() {
	f.ln.Close()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range f.conns {
		p.a.Close()
		p.b.Close()
	}
}

// syncBuffer is a log sink safe for the reader's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestReader_ReadTimeoutClosesSilentConnection: a binlog connection that
// goes silent without closing (a hung source, a dropped NAT entry) is
// closed after source.read_timeout and the reader resumes on a new one,
// losing nothing written meanwhile.
func TestReader_ReadTimeoutClosesSilentConnection(t *testing.T) {
	schema, db := srv.NewSchema(t)
	mustExec(t, db, "CREATE TABLE t (id INT PRIMARY KEY)")
	from := currentGTID(t, srv)
	proxy := newFreezer(t, fmt.Sprintf("%s:%d", srv.Host, srv.Port))
	logs := &syncBuffer{}
	reg := prometheus.NewRegistry()
	st := startStreamDeps(t, srv, schema, from, func(c *cdc.Config) {
		c.DSN = "mysql://root@" + proxy.addr() + "/"
		c.Heartbeat = 500 * time.Millisecond
		c.ReadTimeout = 2 * time.Second
	}, cdc.Deps{Logger: slog.New(slog.NewTextHandler(logs, nil)), Registerer: reg})
	mustExec(t, db, "INSERT INTO t VALUES (1)")
	st.waitChanges(t, 1)

	if n := proxy.freeze(); n == 0 {
		t.Fatal("no connection through the proxy to freeze")
	}
	mustExec(t, db, "INSERT INTO t VALUES (2)", "INSERT INTO t VALUES (3)")
	got := st.waitChanges(t, 3)
	var ids []string
	for _, c := range got {
		ids = append(ids, fmt.Sprint(c.After["id"]))
	}
	if strings.Join(ids, ",") != "1,2,3" {
		t.Errorf("rows = %v, want 1,2,3 once each", ids)
	}
	if n := testutil.ToFloat64(reconnects(t, reg)); n < 1 {
		t.Errorf("reconnects_total = %v, want ≥ 1", n)
	}
	if !strings.Contains(logs.String(), "sent nothing for 2s (source.read_timeout)") {
		t.Errorf("no log line saying why the connection was closed:\n%s", logs.String())
	}
}

// TestReader_ReadTimeoutSparesBusyReader: a reader that does not read
// for longer than source.read_timeout because its handler is slow keeps its
// connection: only a read that waits in vain counts.
func TestReader_ReadTimeoutSparesBusyReader(t *testing.T) {
	reg := prometheus.NewRegistry()
	r, db, from := newTableReader(t, func(cfg *cdc.Config) {
		cfg.Heartbeat = 200 * time.Millisecond
		cfg.ReadTimeout = time.Second
	}, cdc.Deps{Registerer: reg})
	for i := 1; i <= 3; i++ {
		mustExec(t, db, fmt.Sprintf("INSERT INTO t VALUES (%d)", i))
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var seen []string
	go func() {
		done <- r.Run(ctx, from, cdc.HandlerFunc(func(ctx context.Context, tx *cdc.Transaction) error {
			// 3 × 2.5 s with the source sending heartbeats meanwhile,
			// which go unread.
			time.Sleep(2500 * time.Millisecond)
			for _, c := range tx.Changes {
				seen = append(seen, fmt.Sprint(c.After["id"]))
			}
			if len(seen) == 3 {
				cancel()
			}
			return nil
		}))
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatal("reader did not finish")
	}
	if fmt.Sprint(seen) != "[1 2 3]" {
		t.Errorf("rows = %v, want [1 2 3]", seen)
	}
	if n := testutil.ToFloat64(reconnects(t, reg)); n != 0 {
		t.Errorf("reconnects_total = %v while the handler was slow, want 0", n)
	}
}

// reconnects is the reader's reconnects_total counter in reg.
func reconnects(t *testing.T, reg *prometheus.Registry) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "rowhook_binlog_reconnects_total" {
			return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "x"}, func() float64 { return mf.GetMetric()[0].GetCounter().GetValue() })
		}
	}
	t.Fatal("rowhook_binlog_reconnects_total not registered")
	return nil
}
