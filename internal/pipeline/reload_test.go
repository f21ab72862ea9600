package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
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

// prepare: the same file is "unchanged" (nothing restarts), a changed rule
// is a new config, a restart-only change alone is unchanged with its note,
// and an invalid file is an error located in the file.
func TestServer_Prepare(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "rowhook.yaml")
	text := `
source:
  dsn: mysql://u:pw@127.0.0.1:1/
  include: ['crm.*']
state:
  path: state.db
rules:
  - name: deal
    table: crm.deals
    "on": [insert]
    when: row.amount > 100
    event: RowChanged
    webhooks: [recv]
webhooks:
  recv:
    url: http://127.0.0.1:1/x
`
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(text)
	cur, _, err := Load(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	s := &server{path: path}
	if next, notes, err := s.prepare(context.Background(), cur); err != nil || next != nil || len(notes) != 0 {
		t.Errorf("same file: next %v, notes %q, err %v; want unchanged", next != nil, notes, err)
	}
	write(strings.Replace(text, "path: state.db", "path: other.db", 1))
	if next, notes, err := s.prepare(context.Background(), cur); err != nil || next != nil || len(notes) != 1 {
		t.Errorf("state.path changed: next %v, notes %q, err %v; want unchanged with one note", next != nil, notes, err)
	}
	write(strings.Replace(text, "row.amount > 100", "row.amount < 100", 1))
	if next, _, err := s.prepare(context.Background(), cur); err != nil || next == nil || next.Rules.Rules[0].When != "row.amount < 100" {
		t.Errorf("condition changed: next %v, err %v; want the new config", next != nil, err)
	}
	write(strings.Replace(text, "webhooks: [recv]", "webhooks: [nowhere]", 1))
	if _, _, err := s.prepare(context.Background(), cur); err == nil || !strings.Contains(err.Error(), "rowhook.yaml:") || !strings.Contains(err.Error(), "nowhere") {
		t.Errorf("unknown webhook: %v; want an error located in the file naming it", err)
	}
}
