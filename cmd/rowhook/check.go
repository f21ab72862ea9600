package main

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/rowhook/rowhook/internal/pipeline"
	"github.com/rowhook/rowhook/internal/yamlconf"
	"github.com/rowhook/rowhook/rules"
)

func init() {
	register(command{name: "check", summary: "validate a config file and run's start-up inspection: source, rules, webhooks, SOAP mappings, writeback, state", example: []string{"rowhook check --config rowhook.yaml", "rowhook check --offline --config rowhook.yaml"}, run: runCheck})
}

func runCheck(ctx context.Context, args []string, io stdio) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(io.err)
	configPath := fs.String("config", "", "the rowhook config file to check (required)")
	offline := fs.Bool("offline", false, "connect to nothing: the source, lookup queries, WSDLs, writeback and the state store are not checked")
	list := fs.Bool("list", false, "list the built-in body functions and the condition helpers, then exit")
	fs.Usage = func() {
		fmt.Fprintln(io.err, "Usage: rowhook check --config FILE [--offline]")
		fmt.Fprintln(io.err)
		fmt.Fprintln(io.err, "Runs the start-up inspection `rowhook run` runs, creating nothing, and fails on everything run would")
		fmt.Fprintln(io.err, "refuse: rule tables that source.include/exclude keep from the reader; the source (source.dsn: connection,")
		fmt.Fprintln(io.err, "log_bin, binlog_format=ROW, binlog_row_image and binlog_row_metadata FULL, grants); writeback columns, mode")
		fmt.Fprintln(io.err, "and marker table on the primary (writeback.dsn); the state store (directory writable, an existing state")
		fmt.Fprintln(io.err, "holds rowhook's state). Rule conditions and body fields are compiled and type-checked against the source's")
		fmt.Fprintln(io.err, "columns, lookup queries prepared there, SOAP webhooks checked against their WSDL (operation, parameters).")
		fmt.Fprintln(io.err, "--offline connects to nothing and skips the state directory, and says so.")
		fmt.Fprintln(io.err, "Errors name the place: rowhook.yaml:14:11: rules[2].when: unknown column \"amout\" ...")
		fmt.Fprintln(io.err, "Exit status 0: valid; 1: errors (one per line); 2: bad command line.")
		fmt.Fprintln(io.err)
		fs.PrintDefaults()
	}
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("check: unexpected argument %q", fs.Arg(0))
	}
	if *list {
		printBodies(io)
		return nil
	}
	if *configPath == "" {
		return usagef("check: --config FILE is required")
	}
	cfg, doc, err := pipeline.Load(ctx, *configPath)
	if err != nil {
		return err
	}
	// The start-up inspection rowhook run does, creating nothing.
	notes, err := pipeline.Check(ctx, cfg, doc, *offline)
	if err != nil {
		return err
	}
	warnAdminToken(io, cfg, doc)
	fmt.Fprintf(io.out, "%s: ok: %s, %s; %s\n", doc.File, plural(len(cfg.Rules.Rules), "rule"),
		plural(len(cfg.Rules.Bodies), "YAML body function"), strings.Join(notes, "; "))
	return nil
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// warnAdminToken prints AdminTokenWarning on stderr for rowhook check,
// located in the file. The config stays valid: a listener that serves other
// hosts only the probes and metrics needs no token.
func warnAdminToken(io stdio, cfg *pipeline.Config, doc *yamlconf.Doc) {
	if err := pipeline.AdminTokenWarning(cfg); err != nil {
		fmt.Fprintf(io.err, "warning: %v\n", doc.Locate(err))
	}
}

func printBodies(io stdio) {
	fmt.Fprintln(io.out, "Built-in body functions (event: NAME):")
	for _, b := range rules.BuiltinBodies() {
		fmt.Fprintf(io.out, "  %-22s %s\n", b.Name, b.Doc)
		if len(b.Tables) > 0 {
			fmt.Fprintf(io.out, "  %-22s tables: %s\n", "", strings.Join(b.Tables, ", "))
		}
	}
	fmt.Fprintln(io.out)
	fmt.Fprintln(io.out, "Condition names: row, old, op, table, schema, now; functions:")
	fmt.Fprintf(io.out, "  %s\n", strings.Join(rules.HelperNames(), ", "))
}
