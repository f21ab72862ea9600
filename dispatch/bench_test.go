package dispatch_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/dispatch"
	"github.com/rowhook/rowhook/dispatch/sqlitestore"
	"github.com/rowhook/rowhook/rules"
)

// BenchmarkDelivery sends b.N events into a local keep-alive receiver, first
// with a bare Go client at the same concurrency, then through rowhook
// (outbox, attempt log, signing), and reports both rates and their ratio.
func BenchmarkDelivery(b *testing.B) {
	const concurrency = 8
	// As rowhook's main does (docs/cdc.md): fewer GC cycles for both sides.
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	var received atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		received.Add(1)
		w.WriteHeader(200)
	}))
	defer srv.Close()
	body := []byte(`{"id":1,"name":"Deal 1","amount":"1250.50"}`)

	// Bare client.
	tr := &http.Transport{MaxIdleConnsPerHost: concurrency}
	client := &http.Client{Transport: tr}
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	var wg sync.WaitGroup
	var next atomic.Int64
	for w := 0; w < concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				resp, err := client.Post(srv.URL, "application/json", bytes.NewReader(body))
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	bare := float64(b.N) / time.Since(start).Seconds()
	bareCPU := (cpuTime() - cpu0).Seconds() / float64(b.N)
	tr.CloseIdleConnections()

	// rowhook.
	st, err := sqlitestore.Open(filepath.Join(b.TempDir(), "state.db"), sqlitestore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	w := dispatch.WebhookConfig{URL: srv.URL, Concurrency: concurrency, Signing: dispatch.SigningConfig{Secret: whsec}}
	d, err := dispatch.New(dispatch.Config{Webhooks: map[string]dispatch.WebhookConfig{"erp": w}}, st, dispatch.Deps{
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	received.Store(0)
	start, cpu0 = time.Now(), cpuTime()
	const batch = 100
	for i := 0; i < b.N; i += batch {
		var evs []rules.Event
		for j := i; j < i+batch && j < b.N; j++ {
			evs = append(evs, rules.Event{ID: fmt.Sprintf("b:%d", j), Rule: "r", Name: "E", Webhooks: []string{"erp"},
				Key: fmt.Sprintf("t:%d", j), Body: rules.Body{{Name: "id", Value: int64(j)}, {Name: "name", Value: "Deal"}}})
		}
		if err := d.Enqueue(ctx, cdc.Checkpoint{File: "bin.1", Pos: uint32(i + 1)}, evs); err != nil {
			b.Fatal(err)
		}
	}
	for received.Load() < int64(b.N) {
		time.Sleep(time.Millisecond)
	}
	// Delivered means recorded as ok.
	for {
		ds, err := st.Pending(ctx, dispatch.PendingQuery{Webhook: "erp", Limit: 1})
		if err != nil {
			b.Fatal(err)
		}
		if len(ds) == 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	ours := float64(b.N) / time.Since(start).Seconds()
	oursCPU := (cpuTime() - cpu0).Seconds() / float64(b.N)
	b.StopTimer()
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(bare, "bare_deliveries/s")
	b.ReportMetric(ours, "rowhook_deliveries/s")
	b.ReportMetric(ours/bare, "ratio")
	// On a shared machine the wall-clock rates depend on what else runs;
	// CPU per delivery (client and receiver together, both sides measured
	// the same way) does not.
	b.ReportMetric(bareCPU*1e6, "bare_cpu_us/delivery")
	b.ReportMetric(oursCPU*1e6, "rowhook_cpu_us/delivery")
	b.ReportMetric(bareCPU/oursCPU, "cpu_ratio")
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkEnqueue feeds b.N binlog rows, one transaction each, to Enqueue
// as the binlog loop does; 10% of the rows match a rule. It reports rows/s
// (checkpoint advances) and events/s into the SQLite store.
func BenchmarkEnqueue(b *testing.B) {
	st, err := sqlitestore.Open(filepath.Join(b.TempDir(), "state.db"), sqlitestore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	w := dispatch.WebhookConfig{URL: "https://erp.example.com/deals/{{ row.potentialid }}"}
	d, err := dispatch.New(dispatch.Config{Webhooks: map[string]dispatch.WebhookConfig{"erp": w}}, st, dispatch.Deps{})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	ts := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	events := 0
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		cp := cdc.Checkpoint{Flavor: "mariadb", File: "bin.000001", Pos: uint32(i + 1), GTIDSet: fmt.Sprintf("0-1-%d", i+1), Timestamp: ts}
		var evs []rules.Event
		if i%10 == 0 {
			id := int64(i)
			evs = []rules.Event{{
				ID: fmt.Sprintf("0-1-%d:0:new-deal", i+1), Rule: "new-deal", Name: "NewOpportunity", Webhooks: []string{"erp"},
				Key: fmt.Sprintf("crm.vtiger_potential:%d", id), Timestamp: ts,
				Body:   rules.Body{{Name: "id", Value: id}, {Name: "name", Value: "Deal"}, {Name: "amount", Value: cdc.Decimal("1250.50")}},
				Change: &cdc.Change{Op: cdc.OpInsert, After: cdc.Row{"potentialid": id}},
			}}
			events++
		}
		if err := d.Enqueue(ctx, cp, evs); err != nil {
			b.Fatal(err)
		}
	}
	if err := d.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	el := time.Since(start).Seconds()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/el, "rows/s")
	b.ReportMetric(float64(events)/el, "events/s")
}
