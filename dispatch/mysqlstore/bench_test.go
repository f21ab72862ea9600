package mysqlstore

import (
	"fmt"
	"testing"
	"time"

	"github.com/rowhook/rowhook/dispatch"
	"github.com/rowhook/rowhook/dispatch/storetest"
)

// BenchmarkCommit commits batches of 1 and 100 deliveries with a
// checkpoint, one transaction each, as the dispatcher's committer does
// under light and heavy load, and reports deliveries/s. The test server
// runs with innodb_flush_log_at_trx_commit=2, so the figures show the
// store's own cost, not the disk's fsync rate.
func BenchmarkCommit(b *testing.B) {
	for _, batch := range []int{1, 100} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			s, _ := open(b)
			ds := make([]dispatch.NewDelivery, batch)
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				for j := range ds {
					ds[j] = storetest.ND(fmt.Sprintf("tx%d:%d:r", i, j), "erp")
				}
				if n, err := s.Commit(ctx, storetest.CP(uint32(i+1)), ds); err != nil || n != batch {
					b.Fatalf("commit: n=%d err=%v", n, err)
				}
			}
			b.ReportMetric(float64(b.N*batch)/time.Since(start).Seconds(), "deliveries/s")
		})
	}
}
