package cdc

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"
	pingcap "github.com/pingcap/errors"
)

// TestDecoder_Holds: which GTIDs count as already covered by the executed
// set. On MariaDB the set is a position; a lower sequence number from another
// server in the same domain is new (gtid_strict_mode off, after a failover).
func TestDecoder_Holds(t *testing.T) {
	tests := []struct {
		flavor, set, gtid string
		want              bool
	}{
		{"mariadb", "0-1-10", "0-1-9", true},
		{"mariadb", "0-1-10", "0-1-10", true},
		{"mariadb", "0-1-10", "0-1-11", false},
		{"mariadb", "0-1-10", "0-2-5", false},
		{"mariadb", "0-1-10", "1-1-5", false},
		{"mariadb", "0-1-10,1-3-7", "1-3-7", true},
		{"mariadb", "", "0-1-1", false},
		{"mysql", "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-20", "3e11fa47-71ca-11e1-9e33-c80aa9429562:20", true},
		{"mysql", "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-20", "3e11fa47-71ca-11e1-9e33-c80aa9429562:21", false},
		{"mysql", "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-20", "4e11fa47-71ca-11e1-9e33-c80aa9429562:3", false},
	}
	for _, tt := range tests {
		t.Run(tt.flavor+" "+tt.set+" holds "+tt.gtid, func(t *testing.T) {
			d, err := NewDecoder(DecoderConfig{Flavor: tt.flavor}, "f", tt.set)
			if err != nil {
				t.Fatal(err)
			}
			if got := d.holds(tt.gtid); got != tt.want {
				t.Fatalf("holds = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestReader_Classify: refusals that reconnecting cannot fix become
// ErrSource saying what is missing; anything else is left to the retry loop.
func TestReader_Classify(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DSN = "mysql://rowhook:secret@127.0.0.1:1/"
	r, err := New(cfg, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx := context.Background()
	notImpl := pingcap.Trace(mysql.NewError(mysql.ER_UNKNOWN_COM_ERROR, "Unknown command"))
	if err := r.classify(ctx, notImpl, Checkpoint{}); !errors.Is(err, ErrSource) || !strings.Contains(err.Error(), "does not serve replication") {
		t.Errorf("ERROR 1047: %v", err)
	}
	lost := errors.New("io.ReadFull(header) failed. err EOF: connection was bad")
	if err := r.classify(ctx, lost, Checkpoint{}); err != lost {
		t.Errorf("a dropped connection became %v, want it retried as is", err)
	}
	killed := mysql.NewError(1927, "Connection was killed") // MariaDB ER_CONNECTION_KILLED
	if err := r.classify(ctx, killed, Checkpoint{}); errors.Is(err, ErrSource) {
		t.Errorf("a killed connection is fatal: %v", err)
	}
}

// TestGoMySQLLog: go-mysql's records reach rowhook's log at the right level,
// each on one line.
func TestGoMySQLLog(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(&goMySQLLog{h: slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})})
	gone := pingcap.Trace(mysql.NewError(mysql.ER_NO_SUCH_THREAD, "Unknown thread id: 8"))
	l.Error("kill connection", slog.Any("error", gone), slog.Int64("id", 8))
	l.Info("syncer is closed")
	l.Warn("retry sync is disabled")
	denied := pingcap.Trace(mysql.NewError(mysql.ER_SPECIFIC_ACCESS_DENIED_ERROR, "Access denied; you need the SUPER privilege"))
	l.Error("kill connection", slog.Any("error", denied), slog.Int64("id", 9))
	out := strings.TrimSpace(buf.String())
	lines := strings.Split(out, "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "level=WARN") || !strings.Contains(lines[0], "id=9") || strings.Contains(lines[0], ".go:") {
		t.Fatalf("want one one-line warning for the failed KILL (id 9) and nothing else; got:\n%s", out)
	}
}
