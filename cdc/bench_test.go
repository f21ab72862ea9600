package cdc_test

import (
	"context"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/rowhook/rowhook/cdc"
)

const benchRows = 50000

var (
	benchOnce   sync.Once
	benchFrom   cdc.Checkpoint
	benchSchema string
)

// benchBinlog writes benchRows rows (a CRM-like table, 100 rows per
// transaction) once and returns where they start.
func benchBinlog(b *testing.B) (cdc.Checkpoint, string) {
	benchOnce.Do(func() {
		schema, db := srv.NewSchema(b)
		mustExec(b, db, `CREATE TABLE potential (potentialid INT PRIMARY KEY, potentialname VARCHAR(120), amount DECIMAL(25,8),
			related_to INT, closingdate DATE, sales_stage VARCHAR(200), probability DECIMAL(7,3), modifiedtime DATETIME,
			description TEXT, deleted TINYINT UNSIGNED)`)
		benchFrom = currentGTID(b, srv)
		benchSchema = schema
		for start := 0; start < benchRows; start += 100 {
			var sb strings.Builder
			sb.WriteString("INSERT INTO potential VALUES ")
			for i := start; i < start+100; i++ {
				if i > start {
					sb.WriteByte(',')
				}
				fmt.Fprintf(&sb, "(%d, 'Deal %d - 500 seats', %d.50, %d, '2026-12-31', 'Prospecting', 10.000, '2026-11-23 10:00:00', 'Inbound via website', 0)", i+1, i, i*10, i%97)
			}
			mustExec(b, db, sb.String())
		}
	})
	return benchFrom, benchSchema
}

// BenchmarkDecode compares rowhook's reader (typed, named changes grouped by
// transaction) with a bare BinlogSyncer loop that only counts rows, on the
// same binlog. Goal: rowhook_rows/s ≥ 0.8 × bare_rows/s.
//
// Both loops run under rowhook's production GC setting (GC percent 400, see
// cmd/rowhook/main.go); they share the process, so the setting is the same
// for both.
func BenchmarkDecode(b *testing.B) {
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	from, schema := benchBinlog(b)
	var bare, ours time.Duration
	for i := 0; i < b.N; i++ {
		bare += bareLoop(b, from)
		ours += rowhookLoop(b, from, schema)
	}
	n := float64(benchRows * b.N)
	b.ReportMetric(n/bare.Seconds(), "bare_rows/s")
	b.ReportMetric(n/ours.Seconds(), "rowhook_rows/s")
	b.ReportMetric(bare.Seconds()/ours.Seconds(), "ratio")
}

func bareLoop(b *testing.B, from cdc.Checkpoint) time.Duration {
	gs, err := mysql.ParseGTIDSet("mariadb", from.GTIDSet)
	if err != nil {
		b.Fatal(err)
	}
	syncer := replication.NewBinlogSyncer(replication.BinlogSyncerConfig{
		ServerID: 3_000_000_001, Flavor: "mariadb", Host: srv.Host, Port: uint16(srv.Port), User: "root",
		TimestampStringLocation: time.UTC,
	})
	defer syncer.Close()
	start := time.Now()
	streamer, err := syncer.StartSyncGTID(gs)
	if err != nil {
		b.Fatal(err)
	}
	rows := 0
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for rows < benchRows {
		ev, err := streamer.GetEvent(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if re, ok := ev.Event.(*replication.RowsEvent); ok {
			rows += len(re.Rows)
		}
	}
	return time.Since(start)
}

func rowhookLoop(b *testing.B, from cdc.Checkpoint, schema string) time.Duration {
	cfg := cdc.DefaultConfig()
	cfg.DSN = srv.URL()
	cfg.Include = []string{schema + ".*"}
	r, err := cdc.New(cfg, cdc.Deps{})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rows := 0
	start := time.Now()
	err = r.Run(ctx, from, cdc.HandlerFunc(func(_ context.Context, tx *cdc.Transaction) error {
		rows += len(tx.Changes)
		if rows >= benchRows {
			cancel()
		}
		return nil
	}))
	if err != nil {
		b.Fatal(err)
	}
	if rows < benchRows {
		b.Fatalf("read %d rows, want %d", rows, benchRows)
	}
	return time.Since(start)
}
