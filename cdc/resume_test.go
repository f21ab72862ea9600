package cdc_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/internal/mariadbtest"
)

// logBuffer collects log output written from several goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// lines returns the log's lines.
func (l *logBuffer) lines() []string {
	return strings.Split(strings.TrimRight(l.String(), "\n"), "\n")
}

// A reconnect after the dump thread is killed (what a server restart or a
// DBA's KILL does) is one WARN line with a one-line error: no stack trace
// spread over following lines, and no ERROR from go-mysql's attempt to kill
// the connection that is already gone.
func TestReader_ReconnectLogsOneLine(t *testing.T) {
	schema, db := srv.NewSchema(t)
	mustExec(t, db, "CREATE TABLE t (id INT PRIMARY KEY)")
	logs := &logBuffer{}
	// The text format prints an error value with %+v, which is where
	// go-mysql's stack traces came from.
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	st := startStreamDeps(t, srv, schema, currentGTID(t, srv), nil, cdc.Deps{Logger: logger})
	waitConnected(t, st.reader)
	mustExec(t, db, "INSERT INTO t VALUES (1)")
	st.waitChanges(t, 1)

	killed := 0
	for _, id := range dumpThreads(t, srv.DB()) {
		if _, err := srv.DB().Exec(fmt.Sprintf("KILL %d", id)); err == nil {
			killed++
		}
	}
	if killed == 0 {
		t.Fatal("no binlog dump thread to kill")
	}
	mustExec(t, db, "INSERT INTO t VALUES (2)")
	st.waitChanges(t, 2)
	st.stop(t)

	var reconnects []string
	for _, line := range logs.lines() {
		if !strings.HasPrefix(line, "time=") {
			t.Errorf("log line is not a record of its own (a multi-line error?): %q", line)
		}
		if strings.Contains(line, "level=ERROR") {
			t.Errorf("a normal reconnect logged an error: %s", line)
		}
		if strings.Contains(line, "reconnecting") {
			reconnects = append(reconnects, line)
		}
	}
	if len(reconnects) != 1 {
		t.Fatalf("got %d reconnect warnings, want 1; log:\n%s", len(reconnects), logs)
	}
	if !strings.Contains(reconnects[0], "level=WARN") || !strings.Contains(reconnects[0], "error=") {
		t.Errorf("reconnect line is not a warning with an error: %s", reconnects[0])
	}
	if strings.Contains(reconnects[0], ".go:") {
		t.Errorf("reconnect warning carries a stack trace: %s", reconnects[0])
	}
}

// A source that stops granting what the binlog dump needs (REPLICATION SLAVE
// revoked while rowhook runs, or never granted through a role) cannot heal
// by reconnecting: Run stops with an error naming the missing privilege and
// the GRANT that restores it, instead of reconnecting forever. A password
// changed under a running rowhook says to fix source.dsn instead.
func TestReader_LostReplicationGrantIsFatal(t *testing.T) {
	s := mariadbtest.New(t, mariadbtest.Options{})
	for _, u := range []string{"cdc", "rotated"} {
		s.Exec(t, "CREATE USER '"+u+"'@'127.0.0.1' IDENTIFIED BY 'pw-secret'")
		s.Exec(t, "GRANT REPLICATION SLAVE, BINLOG MONITOR, SELECT ON *.* TO '"+u+"'@'127.0.0.1'")
	}
	// A role that lacks REPLICATION SLAVE: the start-up check cannot see
	// through role grants, so only the dump itself finds out.
	s.Exec(t, "CREATE USER 'viarole'@'127.0.0.1' IDENTIFIED BY 'pw-secret'")
	s.Exec(t, "CREATE ROLE cdc_reader")
	s.Exec(t, "GRANT BINLOG MONITOR, SELECT ON *.* TO cdc_reader")
	s.Exec(t, "GRANT cdc_reader TO 'viarole'@'127.0.0.1'")
	s.Exec(t, "SET DEFAULT ROLE cdc_reader FOR 'viarole'@'127.0.0.1'")
	schema, db := s.NewSchema(t)
	mustExec(t, db, "CREATE TABLE t (id INT PRIMARY KEY)")

	for i, tc := range []struct {
		name, user string
		change     string // run once a transaction was read; "" fails from the start
		want       []string
	}{
		{"revoked while running", "cdc", "REVOKE REPLICATION SLAVE ON *.* FROM 'cdc'@'127.0.0.1'",
			[]string{`user "cdc"`, "REPLICATION SLAVE", "GRANT REPLICATION SLAVE, BINLOG MONITOR, SELECT ON *.* TO 'cdc'@"}},
		{"role without the privilege", "viarole", "",
			[]string{`user "viarole"`, "REPLICATION SLAVE", "GRANT REPLICATION SLAVE, BINLOG MONITOR, SELECT ON *.* TO 'viarole'@"}},
		{"password changed while running", "rotated", "ALTER USER 'rotated'@'127.0.0.1' IDENTIFIED BY 'pw-other'",
			[]string{`user "rotated"`, "password", "source.dsn"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := cdc.DefaultConfig()
			cfg.DSN = fmt.Sprintf("mysql://%s:pw-secret@%s:%d/", tc.user, s.Host, s.Port)
			cfg.Include = []string{schema + ".*"}
			cfg.Heartbeat = time.Second
			cfg.MaxBackoff = 200 * time.Millisecond
			r, err := cdc.New(cfg, cdc.Deps{Logger: slog.New(slog.NewTextHandler(tWriter{t}, nil))})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			// Bounded: before the fix Run reconnected until this ran out.
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			from := currentGTID(t, s)
			got := make(chan int, 10)
			done := make(chan error, 1)
			go func() {
				done <- r.Run(ctx, from, cdc.HandlerFunc(func(_ context.Context, tx *cdc.Transaction) error {
					got <- len(tx.Changes)
					return nil
				}))
			}()
			if tc.change != "" {
				mustExec(t, db, fmt.Sprintf("INSERT INTO t VALUES (%d)", i))
				select {
				case <-got:
				case err := <-done:
					t.Fatalf("Run = %v before the change", err)
				case <-ctx.Done():
					t.Fatal("no transaction read before the change")
				}
				s.Exec(t, tc.change)
				for _, id := range dumpThreads(t, s.DB()) {
					s.DB().Exec(fmt.Sprintf("KILL %d", id))
				}
			}
			var runErr error
			select {
			case runErr = <-done:
			case <-ctx.Done():
				runErr = <-done
			}
			if ctx.Err() != nil || runErr == nil {
				t.Fatalf("Run kept reconnecting although the source refuses it (returned %v after %v)", runErr, ctx.Err())
			}
			t.Logf("Run = %v", runErr)
			if !errors.Is(runErr, cdc.ErrSource) {
				t.Errorf("Run = %v, want ErrSource", runErr)
			}
			msg := runErr.Error()
			for _, want := range tc.want {
				if !strings.Contains(msg, want) {
					t.Errorf("error does not say %q: %s", want, msg)
				}
			}
			if strings.Contains(msg, "pw-") || strings.Contains(msg, "\n") {
				t.Errorf("error leaks the password or spans lines: %q", msg)
			}
		})
	}
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// wireProxy sits between rowhook and a real server and edits the client's
// commands on the wire: it stands in for a proxy, or a server, that answers
// replication differently from MariaDB.
type wireProxy struct {
	ln     net.Listener
	target string
	// command sees each client command's payload and returns the payload
	// to forward, or a reply (an error packet's payload) to answer with
	// instead of forwarding.
	command func(payload []byte) (forward, reply []byte)

	mu    sync.Mutex
	conns []net.Conn
}

func startWireProxy(t testing.TB, s *mariadbtest.Server, command func([]byte) ([]byte, []byte)) *wireProxy {
	t.Helper()
	mariadbtest.Need(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &wireProxy{ln: ln, target: fmt.Sprintf("%s:%d", s.Host, s.Port), command: command}
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, c := range p.conns {
			c.Close()
		}
	})
	return p
}

// URL is the proxy in rowhook's source form, for root.
func (p *wireProxy) URL() string { return "mysql://root@" + p.ln.Addr().String() + "/" }

func (p *wireProxy) serve() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			client.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, client, server)
		p.mu.Unlock()
		var wmu sync.Mutex // the server's bytes and injected replies
		go func() {
			buf := make([]byte, 64<<10)
			for {
				n, err := server.Read(buf)
				if n > 0 {
					wmu.Lock()
					_, werr := client.Write(buf[:n])
					wmu.Unlock()
					if werr != nil {
						break
					}
				}
				if err != nil {
					break
				}
			}
			client.Close()
		}()
		go func() {
			defer server.Close()
			for {
				var hdr [4]byte
				if _, err := io.ReadFull(client, hdr[:]); err != nil {
					return
				}
				payload := make([]byte, int(hdr[0])|int(hdr[1])<<8|int(hdr[2])<<16)
				if _, err := io.ReadFull(client, payload); err != nil {
					return
				}
				// A command starts a new sequence; handshake packets do not.
				if seq := hdr[3]; seq == 0 && len(payload) > 0 {
					fwd, reply := p.command(payload)
					if reply != nil {
						wmu.Lock()
						client.Write(append(packetHeader(len(reply), 1), reply...))
						wmu.Unlock()
						continue
					}
					payload = fwd
				}
				if _, err := server.Write(append(packetHeader(len(payload), hdr[3]), payload...)); err != nil {
					return
				}
			}
		}()
	}
}

func packetHeader(n int, seq byte) []byte {
	return []byte{byte(n), byte(n >> 8), byte(n >> 16), seq}
}

// errPacket is an ERR packet's payload.
func errPacket(code uint16, state, msg string) []byte {
	return append([]byte{0xff, byte(code), byte(code >> 8), '#'}, state+msg...)
}

// The replication commands of the client/server protocol.
const (
	comBinlogDump     = 0x12
	comRegisterSlave  = 0x15
	comBinlogDumpGTID = 0x1e
	comQuery          = 0x03
)

// Something that is not a replication server (a query proxy such as
// ProxySQL) answers the binlog dump with ERROR 1047: Run says so and stops
// instead of reconnecting forever.
func TestReader_DumpNotImplementedIsFatal(t *testing.T) {
	proxy := startWireProxy(t, srv, func(p []byte) ([]byte, []byte) {
		switch p[0] {
		case comRegisterSlave, comBinlogDump, comBinlogDumpGTID:
			return nil, errPacket(1047, "08S01", "Unknown command")
		}
		return p, nil
	})
	cfg := cdc.DefaultConfig()
	cfg.DSN = proxy.URL()
	cfg.MaxBackoff = 200 * time.Millisecond
	r, err := cdc.New(cfg, cdc.Deps{Logger: slog.New(slog.NewTextHandler(tWriter{t}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	runErr := r.Run(ctx, currentGTID(t, srv), cdc.HandlerFunc(func(context.Context, *cdc.Transaction) error { return nil }))
	if ctx.Err() != nil || runErr == nil {
		t.Fatalf("Run kept reconnecting to a server that does not implement the binlog dump (returned %v after %v)", runErr, ctx.Err())
	}
	t.Logf("Run = %v", runErr)
	if !errors.Is(runErr, cdc.ErrSource) {
		t.Errorf("Run = %v, want ErrSource", runErr)
	}
	for _, want := range []string{"ERROR 1047", "Unknown command", "does not serve replication", "source.dsn"} {
		if !strings.Contains(runErr.Error(), want) {
			t.Errorf("error does not say %q: %v", want, runErr)
		}
	}
}

var connectState = regexp.MustCompile(`@slave_connect_state='[^']*'`)

// A source that ignores the GTID position rowhook asks for and sends again
// transactions the checkpoint covers (here: a proxy rewrites the requested
// position to an older one, on every connection): those are skipped, not
// handed on, counted, and logged once per connection; the checkpoint keeps
// advancing from the transactions that are new.
func TestReader_SkipsTransactionsTheCheckpointCovers(t *testing.T) {
	schema, db := srv.NewSchema(t)
	mustExec(t, db, "CREATE TABLE t (id INT PRIMARY KEY)")
	older := currentGTID(t, srv)
	mustExec(t, db, "INSERT INTO t VALUES (1)", "INSERT INTO t VALUES (2)")
	checkpoint := currentGTID(t, srv) // covers rows 1 and 2
	mustExec(t, db, "INSERT INTO t VALUES (3)", "INSERT INTO t VALUES (4)")

	var rewrites atomic.Int32
	proxy := startWireProxy(t, srv, func(p []byte) ([]byte, []byte) {
		if p[0] == comQuery && connectState.Match(p[1:]) {
			rewrites.Add(1)
			return connectState.ReplaceAll(p, []byte("@slave_connect_state='"+older.GTIDSet+"'")), nil
		}
		return p, nil
	})
	logs := &logBuffer{}
	reg := prometheus.NewRegistry()
	st := startStreamDeps(t, srv, schema, checkpoint, func(c *cdc.Config) { c.DSN = proxy.URL() },
		cdc.Deps{Logger: slog.New(slog.NewTextHandler(logs, nil)), Registerer: reg})
	st.waitChanges(t, 2)

	// Again after a reconnect: the source re-sends rows 1 to 4.
	for _, id := range dumpThreads(t, srv.DB()) {
		srv.DB().Exec(fmt.Sprintf("KILL %d", id))
	}
	mustExec(t, db, "INSERT INTO t VALUES (5)")
	st.waitChanges(t, 3)
	time.Sleep(300 * time.Millisecond)
	st.stop(t)

	if n := rewrites.Load(); n < 2 {
		t.Fatalf("the proxy rewrote the requested position %d times, want 2 (two connections)", n)
	}
	var ids []any
	for _, c := range st.changes() {
		ids = append(ids, c.After["id"])
	}
	if fmt.Sprint(ids) != fmt.Sprint([]any{int64(3), int64(4), int64(5)}) {
		t.Fatalf("handed on rows %v, want [3 4 5]: rows the checkpoint covers were delivered again", ids)
	}
	for _, tx := range st.transactions() {
		if tx.Checkpoint.GTIDSet != tx.GTID {
			t.Errorf("transaction %s: checkpoint GTID set %q, want its own GTID (one domain)", tx.GTID, tx.Checkpoint.GTIDSet)
		}
	}
	last := st.transactions()[2]
	if pos := st.reader.Position(); pos.GTIDSet != last.GTID {
		t.Errorf("position after the last transaction = %s, want gtid %s", pos, last.GTID)
	}

	// Rows 1-2 on the first connection, 1-4 on the second.
	wantSkipped := 2 + 4
	if got := counterValue(t, reg, "rowhook_binlog_transactions_skipped_total", "reason", "already_applied"); got != float64(wantSkipped) {
		t.Errorf("rowhook_binlog_transactions_skipped_total{reason=already_applied} = %v, want %d", got, wantSkipped)
	}
	var first, counted []string
	for _, line := range logs.lines() {
		if strings.Contains(line, "checkpoint already covers (did it ignore") {
			first = append(first, line)
		}
		if strings.Contains(line, "msg=\"skipped transactions") {
			counted = append(counted, line)
		}
	}
	if len(first) != 2 || len(counted) != 2 || !strings.Contains(counted[0], "count=2") || !strings.Contains(counted[1], "count=4") {
		t.Errorf("want one warning per connection and one count per run of skipped transactions (2, then 4); log:\n%s", logs)
	}
}

// counterValue reads one labelled counter from what reg serves.
func counterValue(t testing.TB, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("%s{%s=%q} not served", name, label, value)
	return 0
}
