package dispatch

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/rules"
)

// catchupTx is a binlog transaction of n inserts into the table rowhook
// bench's catch-up measure reads (internal/bench), with the values as the
// binlog decoder gives them.
func catchupTx(n int) *cdc.Transaction {
	ts := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	cols := []string{"potentialid", "potentialname", "amount", "related_to", "closingdate", "sales_stage",
		"probability", "modifiedtime", "description", "deleted"}
	tx := &cdc.Transaction{ID: "0-1-42", Timestamp: ts,
		Checkpoint: cdc.Checkpoint{Flavor: "mariadb", GTIDSet: "0-1-42", Timestamp: ts}}
	for i := range n {
		id := int64(1000 + i)
		after := cdc.Row{"potentialid": id, "potentialname": fmt.Sprintf("Deal %d - 500 seats", id),
			"amount": cdc.Decimal(fmt.Sprintf("%d.50000000", id*10)), "related_to": id % 97, "closingdate": "2026-12-31",
			"sales_stage": "Prospecting", "probability": cdc.Decimal("10.000"), "modifiedtime": "2026-11-23 10:00:00",
			"description": "Inbound via website", "deleted": uint64(0)}
		tx.Changes = append(tx.Changes, cdc.Change{ID: fmt.Sprintf("0-1-42:%d", i), Schema: "benchlog", Table: "potential",
			Op: cdc.OpInsert, After: after, Changed: cols, PK: cdc.Row{"potentialid": id}, Columns: cols,
			PKColumns: []string{"potentialid"}, GTID: "0-1-42", Seq: i, Timestamp: ts, Tx: "0-1-42"})
	}
	return tx
}

// BenchmarkBuild is what enqueueing a row costs outside the store in
// rowhook bench's "catch-up 100% enqueued" measure: the rules engine on a
// transaction of 100 inserts, every one matching a RowChanged rule, and
// the dispatcher building each event's delivery (id, JSON body, schedule)
// for one scheduled JSON webhook. It reports CPU and allocations per
// delivery.
func BenchmarkBuild(b *testing.B) {
	ctx := context.Background()
	e, err := rules.New(ctx, rules.Config{Rules: []rules.RuleConfig{{Name: "bench", Table: "benchlog.potential",
		On: []string{"insert"}, When: "row.potentialid > 0", Event: "RowChanged", Webhooks: []string{"recv"}}}}, rules.Deps{})
	if err != nil {
		b.Fatal(err)
	}
	d, err := New(Config{Webhooks: map[string]WebhookConfig{"recv": {URL: "http://127.0.0.1:9/hook",
		Mode: ModeScheduled, Schedule: "0 0 1 1 *"}}}, nil, Deps{})
	if err != nil {
		b.Fatal(err)
	}
	const rows = 100
	tx := catchupTx(rows)
	var ds []NewDelivery
	b.ReportAllocs()
	cpu0 := cpuTime()
	n := 0
	for b.Loop() {
		evs, err := e.Process(ctx, tx)
		if err != nil || len(evs) != rows {
			b.Fatalf("%d events, %v", len(evs), err)
		}
		// As Enqueue: into the buffer of the last call, cleared.
		clear(ds)
		if ds, err = d.build(ds[:0], evs); err != nil || len(ds) != rows || ds[rows-1].Error != "" {
			b.Fatalf("%d deliveries, %v", len(ds), err)
		}
		n++
	}
	cpu := float64((cpuTime() - cpu0).Nanoseconds()) / float64(n*rows)
	b.ReportMetric(cpu, "cpu-ns/delivery")
	b.ReportMetric(float64(len(ds[0].Body)), "body-bytes")
}

// cpuTime is the process's user + system CPU time (GC included): steadier
// than wall time on a shared machine.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
