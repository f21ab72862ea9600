package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"path/filepath"
	"strings"

	_ "github.com/go-sql-driver/mysql" // the source's driver

	"github.com/rowhook/rowhook/dispatch"
	"github.com/rowhook/rowhook/dispatch/soap"
	"github.com/rowhook/rowhook/internal/pipeline"
	"github.com/rowhook/rowhook/internal/yamlconf"
	"github.com/rowhook/rowhook/rules"
)

func init() {
	register(command{name: "check", summary: "validate a config file and run's start-up inspection: source, rules, webhooks, SOAP mappings, writeback, state", run: runCheck})
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
	mode := pipeline.ModeCheck
	if *offline {
		mode = pipeline.ModeOffline
	}
	su, err := pipeline.Inspect(ctx, cfg, filepath.Dir(*configPath), mode, nil, nil)
	if err != nil {
		return doc.Locate(err)
	}
	defer su.Close()
	var db *sql.DB
	if su.Reader != nil {
		if db, err = su.Reader.DB(); err != nil {
			return err
		}
	}
	if _, err := rules.New(ctx, cfg.Rules, rules.Deps{Source: db}); err != nil {
		return doc.Locate(err)
	}
	notes := su.Notes
	if db != nil {
		if err := checkLookups(ctx, db, cfg.Rules); err != nil {
			return doc.Locate(err)
		}
		notes = append(notes, fmt.Sprintf("columns checked against the source %s", su.Reader.Source().Redacted()))
	}
	if *offline {
		if hasSOAP(cfg.Dispatch) {
			notes = append(notes, "SOAP mappings not checked against their WSDLs")
		}
		if len(pipeline.WritebackMappings(cfg)) > 0 {
			notes = append(notes, "writeback columns not checked")
		}
	} else if hasSOAP(cfg.Dispatch) {
		if err := soap.CheckConfig(ctx, cfg.Dispatch, soap.Deps{BaseDir: filepath.Dir(doc.File)}); err != nil {
			return doc.Locate(err)
		}
		notes = append(notes, "SOAP mappings checked against their WSDLs")
	}
	warnAdminToken(io, cfg, doc)
	fmt.Fprintf(io.out, "%s: ok: %s, %s; %s\n", doc.File, plural(len(cfg.Rules.Rules), "rule"),
		plural(len(cfg.Rules.Bodies), "YAML body function"), strings.Join(notes, "; "))
	return nil
}

func hasSOAP(c dispatch.Config) bool {
	for _, w := range c.Webhooks {
		if w.ContentType == dispatch.ContentSOAP {
			return true
		}
	}
	return false
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// checkLookups prepares every YAML lookup query on the source, so a typo
// in a table or column fails now rather than at the first event.
func checkLookups(ctx context.Context, db *sql.DB, c rules.Config) error {
	var errs []error
	for name, b := range c.Bodies {
		if b.Lookup == "" {
			continue
		}
		q, err := rules.LookupQuery(b.Lookup)
		if err != nil {
			continue // reported by Validate
		}
		stmt, err := db.PrepareContext(ctx, q)
		if err != nil {
			hint := ""
			if strings.Contains(err.Error(), "No database selected") {
				hint = " (write schema.table in the query: rowhook's source connection has no default database)"
			}
			errs = append(errs, yamlconf.Errf("bodies."+name+".lookup", "the source refuses the query: %v%s", err, hint))
			continue
		}
		stmt.Close()
	}
	return errors.Join(errs...)
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
