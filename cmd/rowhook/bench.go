package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/rowhook/rowhook/internal/bench"
)

func init() {
	register(command{name: "bench", summary: "measure decode, catch-up, enqueue, delivery, latency and memory against a private MariaDB and print a table", example: []string{"rowhook bench --quick", "rowhook bench --only latency --rate 2000 --busy", "rowhook bench --only catchup --json"}, run: runBench})
}

func runBench(ctx context.Context, args []string, io stdio) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(io.err)
	rows := fs.Int("rows", 200_000, "binlog rows for the decode and catch-up measures")
	quick := fs.Bool("quick", false, "CI-sized run: few rows, short latency run, 5,000 pending deliveries")
	asJSON := fs.Bool("json", false, "print the results as JSON instead of a table")
	only := fs.String("only", "", "run one measure: "+strings.Join(bench.Measures, ", ")+" (default: all)")
	profDir := fs.String("cpuprofile", "", "write a CPU profile per in-process measure to DIR/<measure>.pprof")
	state := fs.String("state", "sqlite", "mysql: measure the MySQL state store instead (drain deliveries/s, backlog at 1,000 commits/s)")
	verbose := fs.Bool("v", false, "show progress and rowhook's warnings on stderr")
	rate := fs.Int("rate", 0, "latency: one commit rate in commits/s (default: 500, then 2,000)")
	busy := fs.Bool("busy", false, "latency, deliver: keep one core busy with a spinning process meanwhile")
	fs.Usage = func() {
		fmt.Fprint(io.err, "Usage: rowhook bench [--rows N] [--quick] [--json] [--only MEASURE] [--state mysql] [--rate N] [--busy] [--cpuprofile DIR]\n\n"+
			bench.Help+"\nExample: rowhook bench --only latency --rate 2000 --busy\n\n")
		fs.PrintDefaults()
	}
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("bench: unexpected argument %q", fs.Arg(0))
	}
	if *only != "" && !slices.Contains(bench.Measures, *only) {
		return usagef("bench: --only %q: use one of %s", *only, strings.Join(bench.Measures, ", "))
	}
	o := bench.Options{Rows: *rows, Deliveries: 50_000, LatencyN: 10_000, Pending: 1_000_000, ProfDir: *profDir, Log: io.err, Version: version, Busy: *busy, State: *state}
	if *rate > 0 {
		o.LatencyRates = []int{*rate}
	}
	if *quick {
		o.Rows, o.Deliveries, o.LatencyN, o.Pending = 2_000, 1_000, 300, 5_000
		fs.Visit(func(f *flag.Flag) {
			if f.Name == "rows" {
				o.Rows = *rows
			}
		})
	}
	if o.Rows < 100 {
		return usagef("bench: --rows must be at least 100")
	}
	if !*verbose {
		o.Log = nil
	}
	if o.ProfDir != "" {
		if err := os.MkdirAll(o.ProfDir, 0o755); err != nil {
			return fmt.Errorf("bench: profile directory: %w", err)
		}
	}
	rep, err := bench.Run(ctx, o, *only)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(io.out)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	bench.PrintTable(io.out, rep)
	return nil
}
