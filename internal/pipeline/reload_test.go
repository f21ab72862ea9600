package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"strings"
	"syscall"
	"testing"

	mysqldriver "github.com/go-sql-driver/mysql"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/internal/yamlconf"
)

// Transient tells a server out of reach (retried at start) from a
// configuration error (rowhook exits), through the wrapping open adds.
func TestTransient(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: &net.AddrError{Err: "connect: connection refused"}}
	wrap := func(err error) error {
		return yamlconf.Errf("source.dsn", "%w", fmt.Errorf("cdc: connect to source mysql://u@h:3306/: %w", err))
	}
	for _, tt := range []struct {
		name string
		err  error
		want bool
	}{
		{"connection refused", wrap(refused), true},
		{"ECONNREFUSED", wrap(syscall.ECONNREFUSED), true},
		{"DNS", wrap(&net.DNSError{Err: "no such host", Name: "db"}), true},
		{"bad connection", wrap(mysqldriver.ErrInvalidConn), true},
		{"too many connections", wrap(&mysqldriver.MySQLError{Number: 1040}), true},
		{"shutdown in progress", wrap(&mysqldriver.MySQLError{Number: 1053}), true},
		{"timeout", wrap(context.DeadlineExceeded), true},
		{"access denied", wrap(&mysqldriver.MySQLError{Number: 1045, Message: "Access denied"}), false},
		{"missing grant", wrap(&mysqldriver.MySQLError{Number: 1227}), false},
		{"unknown database", wrap(&mysqldriver.MySQLError{Number: 1049}), false},
		{"binlog off", wrap(&cdc.InspectionError{Source: "s", Problems: []string{"binary logging is off"}}), false},
		{"refused replication", fmt.Errorf("%w: no", cdc.ErrSource), false},
		{"config", yamlconf.Errf("rules[0].table", "not read"), false},
		{"cancelled", wrap(context.Canceled), false},
		{"plain", errors.New("state.path: not a directory"), false},
		// syscall.Errno has Timeout and Temporary: not a net.Error here.
		{"state directory not writable", fmt.Errorf("state.path: not writable: %w", &fs.PathError{Op: "open", Path: "/x", Err: syscall.EPERM}), false},
		{"read-only file system", fmt.Errorf("state.path: %w", &fs.PathError{Op: "open", Path: "/x", Err: syscall.EROFS}), false},
		{"host unreachable", wrap(syscall.EHOSTUNREACH), true},
	} {
		if got := Transient(tt.err); got != tt.want {
			t.Errorf("%s: Transient(%v) = %v, want %v", tt.name, tt.err, got, tt.want)
		}
	}
}

// A reload keeps the settings that need a restart at their running values
// and names each by key, never by value (a DSN carries a password).
func TestKeepRestartOnly(t *testing.T) {
	cur := DefaultConfig()
	cur.Source.DSN = "mysql://u:old-secret@a:3306/"
	cur.Dispatch.State.Path = "a.db"
	next := cur
	next.Source.DSN = "mysql://u:new-secret@b:3306/"
	next.Dispatch.State.Path = "b.db"
	next.HTTP.Listen = "0.0.0.0:1"
	next.Source.Include = []string{"crm.*"} // applies
	notes := keepRestartOnly(&cur, &next)
	got := strings.Join(notes, "\n")
	for _, key := range []string{"source.dsn", "state.path", "http.listen"} {
		if !strings.Contains(got, "changed "+key+" needs a restart; kept the running value") {
			t.Errorf("no note for %s: %q", key, got)
		}
	}
	if len(notes) != 3 || strings.Contains(got, "secret") {
		t.Errorf("notes %q: want three, without values", got)
	}
	if next.Source.DSN != cur.Source.DSN || next.Dispatch.State.Path != "a.db" || next.HTTP.Listen != cur.HTTP.Listen {
		t.Errorf("restart-only settings not kept: %+v", next)
	}
	if len(next.Source.Include) != 1 {
		t.Errorf("source.include, which a reload applies, was reset")
	}
}
