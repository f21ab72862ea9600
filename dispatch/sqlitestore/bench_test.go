package sqlitestore

import (
	"context"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/rowhook/rowhook/dispatch"
	"github.com/rowhook/rowhook/dispatch/send"
)

// BenchmarkStore_Record records attempt results in batches of 64, as the
// dispatcher's recorder does under load, and reports results/s and the
// process's CPU per result: with the deliveries' seqs, as the dispatcher
// passes them, and by delivery id only.
func BenchmarkStore_Record(b *testing.B) {
	for _, bySeq := range []bool{true, false} {
		name := "by=seq"
		if !bySeq {
			name = "by=id"
		}
		b.Run(name, func(b *testing.B) { benchRecord(b, bySeq) })
	}
}

func benchRecord(b *testing.B, bySeq bool) {
	s, err := Open(filepath.Join(b.TempDir(), "state.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	ds := make([]dispatch.NewDelivery, b.N)
	for i := range ds {
		ds[i] = nd(fmt.Sprintf("e%d", i), "erp")
	}
	if _, err := s.Commit(ctx, cp(1), ds); err != nil {
		b.Fatal(err)
	}
	seqs := map[string]int64{}
	if bySeq {
		rows, err := s.r.Query(`SELECT id, seq FROM deliveries`)
		if err != nil {
			b.Fatal(err)
		}
		for rows.Next() {
			var id string
			var seq int64
			if err := rows.Scan(&id, &seq); err != nil {
				b.Fatal(err)
			}
			seqs[id] = seq
		}
		rows.Close()
	}
	hdr := map[string][]string{"Content-Type": {"application/json"}, "Webhook-Id": {"msg_x"}, "Authorization": {send.Redacted}}
	b.ResetTimer()
	start := time.Now()
	cpu0 := cpuTime()
	const batch = 64
	for i := 0; i < b.N; i += batch {
		var rs []dispatch.Result
		for j := i; j < i+batch && j < b.N; j++ {
			rs = append(rs, dispatch.Result{Attempt: dispatch.Attempt{DeliveryID: ds[j].ID, DeliverySeq: seqs[ds[j].ID], N: 1, Kind: dispatch.KindAttempt, At: t0,
				Duration: time.Millisecond, Method: "POST", URL: "http://x/", RequestHeaders: hdr, Status: 200, ResponseHeaders: hdr,
				ResponseBody: []byte(`{"ok":true}`)}, Status: dispatch.StatusOK, Attempts: 1})
		}
		if err := s.Record(ctx, rs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "results/s")
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/result")
}

// benchBody is a RowChanged body of a Vtiger-like 10-column row (564
// bytes, the bench's catch-up body).
func benchBody(i int) []byte {
	return fmt.Appendf(nil, `{"op":"insert","schema":"benchlog","table":"potential","key":{"potentialid":%d},"changed":["potentialid","potentialname","amount","related_to","closingdate","sales_stage","probability","modifiedtime","description","deleted"],"before":null,"after":{"potentialid":%d,"potentialname":"Deal %d - 500 seats","amount":"%d.50000000","related_to":%d,"closingdate":"2026-12-31","sales_stage":"Prospecting","probability":"10.000","modifiedtime":"2026-11-23 10:00:00","description":"Inbound via website","deleted":0},"committed_at":"2026-12-03T13:37:51Z","gtid":"0-1-%d"}`,
		i, i, i, i*10, i%97, i/100+1)
}

// BenchmarkStore_CatchUp commits b.N deliveries of catch-up-sized bodies,
// 100 per binlog transaction and 2,000 per store commit (the dispatcher's
// group commit under a backlog), to a webhook that sends later, and
// reports the CPU per delivery, the bytes the file uses per delivery and
// those of its compressed body.
func BenchmarkStore_CatchUp(b *testing.B) {
	path := filepath.Join(b.TempDir(), "state.db")
	s, err := Open(path, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	const perCommit = 2000
	next := t0.Add(365 * 24 * time.Hour)
	ds := make([]dispatch.NewDelivery, 0, perCommit)
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		ev := fmt.Sprintf("0-1-%d:%d:bench", i/100+1, i%100)
		ds = append(ds, dispatch.NewDelivery{
			ID: dispatch.DeliveryID(t0.Add(time.Duration(i/1000)*time.Second), ev, "recv", ""), EventID: ev, Rule: "bench", Event: "RowChanged", Webhook: "recv",
			Key: fmt.Sprintf("benchlog.potential:%d", i), Method: "POST", URL: "http://127.0.0.1:37629/hook",
			ContentType: "application/json", Body: benchBody(i), EventTime: t0, CreatedAt: t0, NextAt: next,
		})
		if len(ds) == perCommit || i == b.N-1 {
			if _, err := s.Commit(ctx, cp(uint32(i+1)), ds); err != nil {
				b.Fatal(err)
			}
			ds = ds[:0]
		}
	}
	cpu := cpuTime() - cpu0
	b.StopTimer()
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/delivery")
	var used int64
	if err := s.w.QueryRow(`SELECT (page_count - freelist_count) * page_size FROM pragma_page_count, pragma_freelist_count, pragma_page_size`).Scan(&used); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(used)/float64(b.N), "bytes/delivery")
	// The bodies' share: compressed blocks (bodies.go).
	var blocks int64
	if err := s.w.QueryRow(`SELECT coalesce(sum(length(data)), 0) FROM bodies`).Scan(&blocks); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(blocks)/float64(b.N), "block-bytes/delivery")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
