package pipeline

import (
	"go/build"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

const module = "github.com/rowhook/rowhook/"

// deps is every package of this module that pkg imports, directly or not
// (test files excluded), read from the source with go/build.
func deps(t *testing.T, root, pkg string, seen map[string]bool) {
	t.Helper()
	p, err := build.Import(pkg, root, 0)
	if err != nil {
		t.Fatalf("import %s: %v", pkg, err)
	}
	for _, imp := range p.Imports {
		if strings.HasPrefix(imp, module) && !seen[imp] {
			seen[imp] = true
			deps(t, root, imp, seen)
		}
	}
}

// The flow stays one way (docs/architecture.md): no package imports one
// to its right, and the binary links no test helper.
func TestImports_OneWay(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	for _, tc := range []struct{ pkg, banned string }{
		{"cdc", "rules"}, {"cdc", "dispatch"}, {"cdc", "writeback"}, {"cdc", "internal/pipeline"},
		{"rules", "writeback"}, {"rules", "dispatch"}, {"rules", "internal/pipeline"},
		{"dispatch", "internal/pipeline"}, {"writeback", "internal/pipeline"}, {"writeback", "rules"},
		{"cmd/rowhook", "internal/mariadbtest"},
	} {
		seen := map[string]bool{}
		deps(t, root, module+tc.pkg, seen)
		if seen[module+tc.banned] {
			t.Errorf("%s imports %s", tc.pkg, tc.banned)
		}
	}
}
