package sqlitestore

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/rowhook/rowhook/dispatch"
	"github.com/rowhook/rowhook/dispatch/send"
)

// BenchmarkStore_Record records attempt results in batches of 64, as the
// dispatcher's recorder does under load, and reports results/s.
func BenchmarkStore_Record(b *testing.B) {
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
	hdr := map[string][]string{"Content-Type": {"application/json"}, "Webhook-Id": {"msg_x"}, "Authorization": {send.Redacted}}
	b.ResetTimer()
	start := time.Now()
	const batch = 64
	for i := 0; i < b.N; i += batch {
		var rs []dispatch.Result
		for j := i; j < i+batch && j < b.N; j++ {
			rs = append(rs, dispatch.Result{Attempt: dispatch.Attempt{DeliveryID: ds[j].ID, N: 1, Kind: dispatch.KindAttempt, At: t0,
				Duration: time.Millisecond, Method: "POST", URL: "http://x/", RequestHeaders: hdr, Status: 200, ResponseHeaders: hdr,
				ResponseBody: []byte(`{"ok":true}`)}, Status: dispatch.StatusOK, Attempts: 1})
		}
		if err := s.Record(ctx, rs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "results/s")
}
