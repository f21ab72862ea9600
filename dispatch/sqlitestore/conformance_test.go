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
