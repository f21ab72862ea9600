package mysqlstore

import (
	"testing"

	"github.com/rowhook/rowhook/dispatch"
	"github.com/rowhook/rowhook/dispatch/storetest"
)

// BenchmarkCommit reports deliveries/s for commits of 1 and 100
// deliveries. The test server runs with innodb_flush_log_at_trx_commit=2,
// so the figures show the store's own cost, not the disk's fsync rate.
func BenchmarkCommit(b *testing.B) {
	storetest.BenchCommit(b, func(b *testing.B) dispatch.Store {
		s, _ := open(b)
		return s
	})
}
