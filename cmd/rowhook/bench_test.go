package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rowhook/rowhook/internal/bench"
	"github.com/rowhook/rowhook/internal/mariadbtest"
)

// The rss measure re-executes the running binary as 'rowhook run'; under
// 'go test' that binary is the test binary, which becomes rowhook here
// before the testing package parses its flags.
func init() {
	if os.Getenv(bench.ChildEnv) != "1" {
		return
	}
	runtimeDefaults() // as main does
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], stdio{in: os.Stdin, out: os.Stdout, err: os.Stderr})
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// wantBenchLines are the table's measures, in order, with their units and
// whether they carry a goal.
var wantBenchLines = []struct {
	prefix, unit string
	goal         bool
	// zeroOK: the figure is a difference or a ratio of sizes, which a
	// CI-sized run may find at 0 or below (noise, a WAL just truncated).
	zeroOK bool
}{
	{"decode bare BinlogSyncer", "rows/s", false, false},
	{"decode cdc.Reader", "rows/s", false, false},
	{"decode ratio", "×", true, false},
	{"decode CPU bare BinlogSyncer", "ns/row", false, false},
	{"decode CPU cdc.Reader", "ns/row", false, false},
	{"decode CPU ratio", "×", false, false},
	{"catch-up 0% matching", "rows/s", false, false},
	{"catch-up 0% matching CPU", "ns/row", false, false},
	{"catch-up 10% matching", "rows/s", true, false},
	{"catch-up 10% matching CPU", "ns/row", false, false},
	{"catch-up 100% enqueued", "rows/s", true, false},
	{"catch-up ratio 100% enqueued / 0% matching", "×", true, false},
	{"catch-up 100% enqueued CPU", "ns/row", false, false},
	{"CPU per enqueued delivery (beyond no-match)", "ns", true, true},
	{"state per pending delivery", "bytes", true, false},
	{"catch-up, one row per transaction, no match", "tx/s", false, false},
	{"CPU per transaction", "ns/tx", true, false},
	{"same binlog, bare BinlogSyncer", "tx/s", false, false},
	{"same binlog, bare BinlogSyncer CPU", "ns/tx", false, false},
	{"deliver bare net/http", "req/s", false, false},
	{"deliver rowhook", "req/s", false, false},
	{"deliver ratio", "×", true, false},
	{"latency commit rate achieved (500 commits/s)", "commits/s", false, false},
	{"latency p50 (500 commits/s)", "ms", false, false},
	{"latency p95 (500 commits/s)", "ms", false, false},
	{"latency p99 (500 commits/s)", "ms", true, false},
	{"binlog arrival p50, bare client (500 commits/s)", "ms", false, false},
	{"binlog arrival p99, bare client (500 commits/s)", "ms", false, false},
	{"cdc.Reader arrival p50 (500 commits/s)", "ms", false, false},
	{"cdc.Reader arrival p99 (500 commits/s)", "ms", false, false},
	{"latency commit rate achieved (2,000 commits/s)", "commits/s", false, false},
	{"latency p50 (2,000 commits/s)", "ms", false, false},
	{"latency p95 (2,000 commits/s)", "ms", false, false},
	{"latency p99 (2,000 commits/s)", "ms", true, false},
	{"binlog arrival p50, bare client (2,000 commits/s)", "ms", false, false},
	{"binlog arrival p99, bare client (2,000 commits/s)", "ms", false, false},
	{"cdc.Reader arrival p50 (2,000 commits/s)", "ms", false, false},
	{"cdc.Reader arrival p99 (2,000 commits/s)", "ms", false, false},
	{"max RSS, 5000 pending", "MiB", true, false},
	{"RSS when idle, 5000 pending", "MiB", false, false},
	{"/metrics, slowest of 10, 5000 pending", "ms", true, false},
	{"state file size", "MiB", false, false},
	{"WAL size / state file size", "×", true, true},
}

// TestBench_Quick runs every measure at CI size and checks the table's
// shape and that each figure is a positive number; whether the goals are
// met is the full run's business (docs/benchmarks.md).
func TestBench_Quick(t *testing.T) {
	mariadbtest.NeedBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"bench", "--quick"}, stdio{out: &out, err: &errOut}); err != nil {
		t.Fatalf("bench: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errOut.String())
	}
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	if len(lines) < 4 || !strings.HasPrefix(lines[0], "machine: ") || !strings.Contains(lines[0], "cores") ||
		!strings.Contains(lines[0], "go1.") || !strings.Contains(lines[0], "MariaDB 1") {
		t.Fatalf("no machine line first:\n%s", out.String())
	}
	var header int
	for header = range lines {
		if strings.HasPrefix(lines[header], "measure ") {
			break
		}
	}
	if f := strings.Fields(lines[header]); strings.Join(f, " ") != "measure value unit goal result" {
		t.Fatalf("header = %q\n%s", lines[header], out.String())
	}
	// The value column ends with "value" (right-aligned in 14).
	valueAt := strings.Index(lines[header], "value") + len("value") - 14
	rows := lines[header+1:]
	if len(rows) != len(wantBenchLines) {
		t.Fatalf("%d result lines, want %d:\n%s", len(rows), len(wantBenchLines), out.String())
	}
	for i, w := range wantBenchLines {
		line := rows[i]
		if !strings.HasPrefix(line, w.prefix) {
			t.Errorf("line %d = %q, want it to start with %q", i, line, w.prefix)
			continue
		}
		// value unit goal… result, after the measure's name.
		f := strings.Fields(line[valueAt:])
		if len(f) < 4 {
			t.Errorf("line %q: want value, unit, goal and result", line)
			continue
		}
		v, err := strconv.ParseFloat(strings.ReplaceAll(f[0], ",", ""), 64)
		if err != nil || (v <= 0 && !w.zeroOK) {
			t.Errorf("line %q: value %q is not a positive number", line, f[0])
		}
		if f[1] != w.unit {
			t.Errorf("line %q: unit %q, want %q", line, f[1], w.unit)
		}
		res := f[len(f)-1]
		if w.goal && res != "pass" && res != "FAIL" {
			t.Errorf("line %q: result %q, want pass or FAIL", line, res)
		}
		if !w.goal && (res != "-" || f[2] != "-") {
			t.Errorf("line %q: has a goal or result but the measure has no goal", line)
		}
	}
}

// TestBench_JSONOnly runs one measure with --json: the same figures, as a
// document.
func TestBench_JSONOnly(t *testing.T) {
	mariadbtest.NeedBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"bench", "--quick", "--json", "--only", "deliver"}, stdio{out: &out, err: &errOut}); err != nil {
		t.Fatalf("bench: %v\nstderr:\n%s", err, errOut.String())
	}
	var rep bench.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out.String())
	}
	if rep.Machine.Cores <= 0 || rep.Machine.MariaDB == "" || rep.Machine.Go == "" {
		t.Errorf("machine = %+v", rep.Machine)
	}
	if len(rep.Results) != 3 {
		t.Fatalf("%d results, want 3 (bare, rowhook, ratio): %+v", len(rep.Results), rep.Results)
	}
	for _, r := range rep.Results {
		if !strings.HasPrefix(r.Measure, "deliver ") || r.Value <= 0 {
			t.Errorf("result %+v: want a deliver measure with a positive value", r)
		}
	}
	if last := rep.Results[2]; last.Goal == "" || last.Pass == nil {
		t.Errorf("ratio %+v has no goal or verdict", last)
	}
}

func TestBench_BadFlags(t *testing.T) {
	for _, args := range [][]string{{"--only", "speed"}, {"--rows", "10"}, {"extra"}} {
		var out, errOut bytes.Buffer
		err := run(context.Background(), append([]string{"bench"}, args...), stdio{out: &out, err: &errOut})
		var ue *usageError
		if err == nil || !errors.As(err, &ue) {
			t.Errorf("bench %v: err = %v, want a usage error", args, err)
		}
	}
}

// TestBench_StateMySQL runs the MySQL state store measure at CI size
// (bench --quick --state mysql): drain rate, CPU, and the backlog of the
// sustained run, each a number, the rates positive, the goals judged.
func TestBench_StateMySQL(t *testing.T) {
	mariadbtest.NeedBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"bench", "--quick", "--json", "--state", "mysql"}, stdio{out: &out, err: &errOut}); err != nil {
		t.Fatalf("bench: %v\nstderr:\n%s", err, errOut.String())
	}
	var rep bench.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out.String())
	}
	want := []struct {
		prefix string
		goal   bool
	}{
		{"mysql state: drain deliveries/s", true},
		{"mysql state: rowhook CPU per delivery", false},
		{"mysql state: mariadbd CPU per delivery", false},
		{"mysql state: drain per_record deliv/s", false},
		{"mysql state: per_record rowhook CPU", false},
		{"mysql state: per_record mariadbd CPU", false},
		{"mysql state: commits/s enqueued", false},
		{"mysql state: max backlog at 1000/s", true},
		{"mysql state: backlog at the end", false},
		{"mysql state: drained after the end", false},
	}
	if len(rep.Results) != len(want) {
		t.Fatalf("%d results, want %d: %+v", len(rep.Results), len(want), rep.Results)
	}
	for i, w := range want {
		r := rep.Results[i]
		if r.Measure != w.prefix || r.Value < 0 || (w.goal != (r.Goal != "" && r.Pass != nil)) {
			t.Errorf("result %d = %+v, want %q with a goal: %v", i, r, w.prefix, w.goal)
		}
	}
	if rep.Results[0].Value <= 0 || rep.Results[1].Value <= 0 || rep.Results[3].Value <= 0 || rep.Results[6].Value <= 0 {
		t.Errorf("rates and CPU must be positive: %+v", rep.Results)
	}
	err := run(ctx, []string{"bench", "--quick", "--state", "oracle"}, stdio{out: &out, err: &errOut})
	if err == nil || !strings.Contains(err.Error(), `"oracle"`) {
		t.Errorf("bench --state oracle: err = %v, want one naming it", err)
	}
}
