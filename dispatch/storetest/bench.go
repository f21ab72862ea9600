package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/rowhook/rowhook/dispatch"
)

// BenchCommit commits batches of 1 and 100 deliveries with a checkpoint,
// one Commit each, as the dispatcher's committer does under light and
// heavy load, and reports deliveries/s. open returns a fresh store for one
// sub-benchmark, closed when it ends.
func BenchCommit(b *testing.B, open func(b *testing.B) dispatch.Store) {
	for _, batch := range []int{1, 100} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			s := open(b)
			ds := make([]dispatch.NewDelivery, batch)
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				for j := range ds {
					ds[j] = ND(fmt.Sprintf("tx%d:%d:r", i, j), "erp")
				}
				if n, err := s.Commit(ctx, CP(uint32(i+1)), ds); err != nil || n != batch {
					b.Fatalf("commit: n=%d err=%v", n, err)
				}
			}
			b.ReportMetric(float64(b.N*batch)/time.Since(start).Seconds(), "deliveries/s")
		})
	}
}
