package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/rowhook/rowhook/internal/pipeline"
	"github.com/rowhook/rowhook/internal/yamlconf"
	"github.com/rowhook/rowhook/rules"
)

func init() {
	register(command{name: "test", summary: "run rule unit tests: row changes in, expected events and bodies out (offline)", example: []string{"rowhook test --config rowhook.yaml -v rules_test.yaml"}, run: runRuleTest})
}

func runRuleTest(ctx context.Context, args []string, io stdio) error {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.err)
	configPath := fs.String("config", "", "the rowhook config file whose rules and bodies are tested (required)")
	verbose := fs.Bool("v", false, "also list passing tests")
	fs.Usage = func() {
		fmt.Fprintln(io.err, "Usage: rowhook test --config FILE [-v] TESTS.yaml...")
		fmt.Fprintln(io.err)
		fmt.Fprintln(io.err, "Runs each test's row changes through the config's rules (no database, nothing sent) and compares")
		fmt.Fprintln(io.err, "the events that fire, and their bodies, with the test's expect: list. See docs/rules.md.")
		fmt.Fprintln(io.err, "Secrets outside the rules and bodies (source, webhooks, writeback) may be unset: they are not read.")
		fmt.Fprintln(io.err, "Exit status 0: all passed; 1: a test failed or a file is invalid; 2: bad command line.")
		fmt.Fprintln(io.err)
		fs.PrintDefaults()
	}
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	if *configPath == "" {
		return usagef("test: --config FILE is required")
	}
	if fs.NArg() == 0 {
		return usagef("test: name at least one TESTS.yaml file")
	}
	cfg, doc, err := pipeline.LoadRules(ctx, *configPath)
	if err != nil {
		return err
	}
	if _, err := rules.New(ctx, cfg.Rules, rules.Deps{}); err != nil {
		return doc.Locate(err)
	}
	passed, failed := 0, 0
	for _, path := range fs.Args() {
		tf, tdoc, err := pipeline.UntilDone(ctx, path, func() (*rules.TestFile, *yamlconf.Doc, error) { return rules.LoadTests(path) })
		if err != nil {
			return err
		}
		results, err := cfg.Rules.RunTests(ctx, tf, tdoc)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		for _, r := range results {
			if r.Passed() {
				passed++
				if *verbose {
					fmt.Fprintf(io.out, "PASS %s: %s (%d events)\n", path, r.Name, len(r.Events))
				}
				continue
			}
			failed++
			fmt.Fprintf(io.out, "FAIL %s:%d: %s (%s)\n", path, r.Pos.Line, r.Name, r.Path)
			for _, f := range r.Failures {
				fmt.Fprintf(io.out, "  %s\n", f)
			}
		}
	}
	fmt.Fprintf(io.out, "%d passed, %d failed\n", passed, failed)
	if failed > 0 {
		return fmt.Errorf("test: %s failed", plural(failed, "test"))
	}
	return nil
}
