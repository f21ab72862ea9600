package dispatch_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/dispatch"
	"github.com/rowhook/rowhook/dispatch/sqlitestore"
)

// BenchmarkScrape_1MPending times /metrics and the store's Stats with a
// million pending deliveries (two webhooks) and 1,000 dead ones in SQLite,
// the outbox of a long receiver outage (issue 18: the scrape timed out and
// answered 500). Filling the file takes ~20 s, once for the sub-benchmarks.
func BenchmarkScrape_1MPending(b *testing.B) {
	path := filepath.Join(b.TempDir(), "state.db")
	st, err := sqlitestore.Open(path, sqlitestore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	st.Close()
	fill(b, path, 1_000_000)
	if st, err = sqlitestore.Open(path, sqlitestore.Options{}); err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	reg := prometheus.NewRegistry()
	cfg := dispatch.Config{Webhooks: map[string]dispatch.WebhookConfig{"erp": hook("http://127.0.0.1:9"), "crm": hook("http://127.0.0.1:9")}}
	if _, err := dispatch.New(cfg, st, dispatch.Deps{Registerer: reg}); err != nil {
		b.Fatal(err)
	}
	b.Run("stats", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := st.Stats(b.Context()); err != nil {
				b.Fatal(err)
			}
		}
	})
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	b.Run("scrape", func(b *testing.B) {
		var worst time.Duration
		for i := 0; i < b.N; i++ {
			t0 := time.Now()
			resp, err := http.Get(srv.URL)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Fatalf("scrape %d: HTTP %d", i, resp.StatusCode)
			}
			worst = max(worst, time.Since(t0))
		}
		b.ReportMetric(float64(worst.Microseconds())/1000, "worst_ms")
	})
	// The WAL while deliveries are enqueued and /metrics is scraped every
	// second for 30 s: with the scrape (wal) and, for comparison, with the
	// old scrape, which ran the old Stats query each time with a 5 s
	// deadline, overlapping when it took longer (wal_old).
	oldStats := `SELECT webhook, status, COUNT(*), MIN(CASE WHEN status = 'pending' THEN created_at END)
		FROM deliveries WHERE status != 'ok' GROUP BY webhook, status`
	ro, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		b.Fatal(err)
	}
	defer ro.Close()
	rw, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		b.Fatal(err)
	}
	defer rw.Close()
	for _, old := range []bool{false, true} {
		name := "wal"
		if old {
			name = "wal_old"
		}
		b.Run(name, func(b *testing.B) {
			if _, err := rw.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
				b.Logf("truncate the WAL first: %v", err)
			}
			stop := make(chan struct{})
			var commits atomic.Int64
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := 0; ; n++ {
					select {
					case <-stop:
						return
					default:
					}
					ds := make([]dispatch.NewDelivery, 50)
					now := time.Now()
					for i := range ds {
						ds[i] = dispatch.NewDelivery{ID: fmt.Sprintf("%s-%d-%d", name, n, i), EventID: "e", Rule: "r", Event: "E", Webhook: "erp",
							Key: "k", Method: "POST", URL: "http://127.0.0.1:9/hook", ContentType: "application/json",
							Body: []byte(`{"id":1,"name":"Deal","amount":"1250.50","stage":"Negotiation"}`), EventTime: now, CreatedAt: now, NextAt: now}
					}
					if _, err := st.Commit(context.Background(), cdc.Checkpoint{}, ds); err != nil {
						b.Error(err)
						return
					}
					commits.Add(1)
				}
			}()
			tick := time.NewTicker(time.Second)
			for i := 0; i < 30; i++ {
				<-tick.C
				if old {
					wg.Add(1)
					go func() {
						defer wg.Done()
						ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
						defer cancel()
						if rows, err := ro.QueryContext(ctx, oldStats); err == nil {
							for rows.Next() {
							}
							rows.Close()
						}
					}()
					continue
				}
				resp, err := http.Get(srv.URL)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			tick.Stop()
			close(stop)
			wg.Wait()
			wal, _ := os.Stat(path + "-wal")
			db, _ := os.Stat(path)
			b.ReportMetric(float64(wal.Size())/1e6, "wal_MB")
			b.ReportMetric(float64(db.Size())/1e6, "db_MB")
			b.ReportMetric(float64(commits.Load())/30, "commits/s")
		})
	}
}

// fill inserts n pending deliveries (and n/1000 dead ones) straight into a
// state file, as many as a day's outage leaves, in one statement.
func fill(b *testing.B, path string, n int) {
	b.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(wal)&_pragma=synchronous(off)")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	now := time.Now().UnixNano()
	_, err = db.Exec(fmt.Sprintf(`WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i < %d)
	INSERT INTO deliveries (id, event_id, rule, event, webhook, record_key, method, url, content_type, headers, inline_body,
		event_time, created_at, next_at, updated_at, status, attempts)
	SELECT 'd' || i, 'e' || i, 'r', 'Deal.Updated', CASE i %% 2 WHEN 0 THEN 'erp' ELSE 'crm' END, 't:' || i, 'POST',
		'http://127.0.0.1:9/hook', 'application/json', '{}',
		'{"id":' || i || ',"name":"Deal ' || i || '","amount":"1250.50","stage":"Negotiation","owner":"someone@example.com"}',
		?1 - (%[1]d - i) * 1000000, ?1 - (%[1]d - i) * 1000000, ?1, ?1,
		CASE WHEN i %% 1000 = 0 THEN 'dead' ELSE 'pending' END, CASE WHEN i %% 1000 = 0 THEN 5 ELSE 0 END
	FROM c`, n), now)
	if err != nil {
		b.Fatal(err)
	}
}
