// Package mariadbtest wires the private MariaDB servers of internal/mariadb
// into test packages: a fresh data directory in a temp dir, mariadbd on a
// free loopback port with the binlog settings rowhook needs, and a fresh
// schema per test.
//
// A test package starts one server in TestMain:
//
//	var srv *mariadbtest.Server
//
//	func TestMain(m *testing.M) { os.Exit(mariadbtest.Main(m, &srv, mariadbtest.Options{})) }
//
// and each test asks for its own schema with srv.NewSchema(t).
//
// Where mariadbd is not installed, Main prints one line and runs the tests
// without a server: those that need one skip (NewSchema, Exec and Need skip
// on a missing server) and the pure unit tests still run. With
// ROWHOOK_REQUIRE_MARIADB set (.ci/run sets it) a missing server fails
// instead, so CI runs every database test.
package mariadbtest

import (
	"flag"
	"fmt"
	"os"
	"testing"

	"github.com/rowhook/rowhook/internal/mariadb"
)

// Server, Options and Pair are internal/mariadb's.
type (
	Server  = mariadb.Server
	Options = mariadb.Options
	Pair    = mariadb.Pair
)

// RequireEnv is the variable that makes a missing mariadbd a failure.
const RequireEnv = mariadb.RequireEnv

// Binary is mariadb.Binary.
func Binary() (string, error) { return mariadb.Binary() }

// missing is why this test binary has no server ("" when it has one or
// never needed one).
var missing error

// Start and StartPair are mariadb's: they return an error where mariadbd is
// missing. Tests prefer New and NewPair, which skip there instead.
var (
	Start     = mariadb.Start
	StartPair = mariadb.StartPair
)

// New starts a private server for one test and stops it when the test ends:
// where mariadbd is missing the test skips (or fails under RequireEnv)
// instead of failing with a start-up error.
func New(tb testing.TB, opts Options) *Server {
	tb.Helper()
	if _, err := mariadb.Binary(); err != nil {
		mariadb.Absent(tb, err)
	}
	s, err := mariadb.Start(opts)
	if err != nil {
		tb.Fatalf("start MariaDB: %v", err)
	}
	tb.Cleanup(func() { s.Stop() })
	return s
}

// NewPair is New for a primary + replica pair.
func NewPair(tb testing.TB, opts Options) *Pair {
	tb.Helper()
	if _, err := mariadb.Binary(); err != nil {
		mariadb.Absent(tb, err)
	}
	p, err := mariadb.StartPair(opts)
	if err != nil {
		tb.Fatalf("start MariaDB pair: %v", err)
	}
	tb.Cleanup(p.Stop)
	return p
}

// Need skips the test (or fails it under RequireEnv) when this package's
// TestMain has no server: call it first in a test that reaches the server
// through DB, DSN or URL rather than NewSchema or Exec.
func Need(tb testing.TB) {
	tb.Helper()
	if missing != nil {
		mariadb.Absent(tb, missing)
	}
}

// NeedBinary skips the test (or fails it under RequireEnv) where mariadbd
// is not installed: for tests that start servers through something else
// (rowhook demo, rowhook bench, a compose-like harness).
func NeedBinary(tb testing.TB) {
	tb.Helper()
	if _, err := mariadb.Binary(); err != nil {
		mariadb.Absent(tb, err)
	}
}

// absent decides what Main does when mariadbd is missing: fail at once
// under RequireEnv, else say so in one line and run the tests without it.
func absent(err error) (fail bool) {
	if os.Getenv(RequireEnv) != "" {
		fmt.Fprintf(os.Stderr, "mariadbtest: %v (%s is set: database tests must run)\n", err, RequireEnv)
		return true
	}
	missing = err
	fmt.Fprintf(os.Stderr, "mariadbtest: %v: database tests skip, unit tests run\n", err)
	return false
}

// Main starts a server, stores it in *srv, runs the package's tests and stops
// the server. Use it from TestMain: os.Exit(mariadbtest.Main(m, &srv, opts)).
func Main(m *testing.M, srv **Server, opts Options) int {
	if fuzzWorker() {
		return m.Run()
	}
	if _, err := mariadb.Binary(); err != nil {
		if absent(err) {
			return 1
		}
		return m.Run()
	}
	s, err := mariadb.Start(opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	*srv = s
	code := m.Run()
	if err := s.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "mariadbtest: stop:", err)
	}
	return code
}

// MainPair is Main for a package whose tests need a primary + replica pair.
func MainPair(m *testing.M, pair **Pair, opts Options) int {
	if fuzzWorker() {
		return m.Run()
	}
	if _, err := mariadb.Binary(); err != nil {
		if absent(err) {
			return 1
		}
		*pair = &Pair{} // pair.Primary.NewSchema(t) and the like skip
		return m.Run()
	}
	p, err := mariadb.StartPair(opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	*pair = p
	code := m.Run()
	p.Stop()
	return code
}

// fuzzWorker reports whether this test process is one of `go test -fuzz`'s
// workers. Workers run only the fuzz target, which must not need a server:
// starting one per worker left servers behind when the fuzzer stopped its
// workers, and they held the workers' output open so go test never exited.
func fuzzWorker() bool {
	if !flag.Parsed() {
		flag.Parse()
	}
	f := flag.Lookup("test.fuzzworker")
	return f != nil && f.Value.String() == "true"
}
