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
