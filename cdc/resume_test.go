package cdc_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

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
	s, err := mariadbtest.Start(mariadbtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop() })
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
