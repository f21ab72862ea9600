package sqlitestore

import (
	"path/filepath"
	"testing"

	"github.com/rowhook/rowhook/dispatch"
	"github.com/rowhook/rowhook/dispatch/storetest"
)

func TestStore_Conformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) dispatch.Store {
		return open(t, filepath.Join(t.TempDir(), "state.db"))
	})
}

// TestStore_ConformanceSegments runs the suite with every commit stored
// as a segment (segments.go): each method must find, order, count and
// change the deliveries that wait in segments as it does rows.
func TestStore_ConformanceSegments(t *testing.T) {
	storetest.Run(t, func(t *testing.T) dispatch.Store {
		s := openSeg(t, filepath.Join(t.TempDir(), "state.db"))
		s.segmentMin = 1
		return s
	})
}

// BenchmarkStore_Commit is mysqlstore's BenchmarkCommit on SQLite, for
// comparison (docs/dispatch.md, "State store").
func BenchmarkStore_Commit(b *testing.B) {
	storetest.BenchCommit(b, func(b *testing.B) dispatch.Store {
		s, err := Open(filepath.Join(b.TempDir(), "state.db"), Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return s
	})
}
