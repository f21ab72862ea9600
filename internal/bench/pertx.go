package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"golang.org/x/sync/errgroup"
)

// singleBinlog writes o.Rows rows of benchsingle.potential, one row per
// transaction (autocommit INSERTs from four connections), once.
func (b *bencher) singleBinlog(ctx context.Context) error {
	if b.singleEnd != "" {
		return nil
	}
	db := b.srv.DB()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE benchsingle"); err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, fmt.Sprintf(benchTable, "benchsingle")); err != nil {
		return err
	}
	from, err := b.gtidPos(ctx)
	if err != nil {
		return err
	}
	b.logf("bench: writing %d rows (one per transaction)", b.o.Rows)
	const conns = 4
	g, gctx := errgroup.WithContext(ctx)
	for c := range conns {
		g.Go(func() error {
			conn, err := db.Conn(gctx)
			if err != nil {
				return err
			}
			defer conn.Close()
			stmt, err := conn.PrepareContext(gctx, "INSERT INTO benchsingle.potential VALUES (?, ?, ?, ?, '2026-12-31', 'Prospecting', 10.000, '2026-11-23 10:00:00', 'Inbound via website', 0)")
			if err != nil {
				return err
			}
			defer stmt.Close()
			for i := c; i < b.o.Rows; i += conns {
				if _, err := stmt.ExecContext(gctx, i+1, fmt.Sprintf("Deal %d - 500 seats", i), fmt.Sprintf("%d.50", i*10), i%97); err != nil {
					return fmt.Errorf("fill benchsingle.potential: %w", err)
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	end, err := b.gtidPos(ctx)
	if err != nil {
		return err
	}
	b.singleFrom, b.singleEnd = from, end
	// As after the shared binlog: let mariadbd finish flushing.
	return sleepCtx(ctx, 3*time.Second)
}

// pertx times rowhook from the start of the single-row binlog to its end
// with no row matching: what each transaction costs on its own (reading
// its events, the rules, a checkpoint in the outbox).
func (b *bencher) pertx(ctx context.Context) ([]Result, error) {
	if err := b.singleBinlog(ctx); err != nil {
		return nil, err
	}
	end, err := mysql.ParseGTIDSet("mariadb", b.singleEnd)
	if err != nil {
		return nil, err
	}
	p, stop, err := b.startBenchPipeline(ctx, "benchsingle", "benchsingle.potential", b.singleFrom, "row.potentialid < 0", "http://127.0.0.1:9/unused", "")
	if err != nil {
		return nil, err
	}
	elapsed, cpu, err := runToEnd(ctx, p, end, "single-row catch-up")
	stop()
	if err != nil {
		return nil, err
	}
	// The ceiling: go-mysql's own loop over the same binlog, counting rows.
	cpu0 := benchCPUTime()
	bare, err := b.bareRead(ctx, b.singleFrom, b.o.Rows)
	if err != nil {
		return nil, fmt.Errorf("bare loop: %w", err)
	}
	bareCPU := benchCPUTime() - cpu0
	per := float64(cpu.Nanoseconds()) / float64(b.o.Rows)
	return []Result{
		{Measure: "catch-up, one row per transaction, no match", Value: float64(b.o.Rows) / elapsed.Seconds(), Unit: "tx/s"},
		goalResult("CPU per transaction", per, "ns/tx", "≤ 5,000", per <= 5000),
		{Measure: "same binlog, bare BinlogSyncer", Value: float64(b.o.Rows) / bare.Seconds(), Unit: "tx/s"},
		{Measure: "same binlog, bare BinlogSyncer CPU", Value: float64(bareCPU.Nanoseconds()) / float64(b.o.Rows), Unit: "ns/tx"},
	}, nil
}
