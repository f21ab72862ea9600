package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"reflect"
	"strings"
	"time"

	_ "github.com/go-sql-driver/mysql" // the source's driver

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/internal/yamlconf"
	"github.com/rowhook/rowhook/rules"
)

func init() {
	register(command{name: "check", summary: "validate a config file: rules, body functions, webhooks; columns against the source when reachable", run: runCheck})
}

// sourceCheckTimeout bounds how long check waits for the source.
const sourceCheckTimeout = 5 * time.Second

func runCheck(ctx context.Context, args []string, io stdio) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(io.err)
	configPath := fs.String("config", "", "the rowhook config file to check (required)")
	offline := fs.Bool("offline", false, "do not connect to the source: column names and lookup queries are not checked")
	list := fs.Bool("list", false, "list the built-in body functions and the condition helpers, then exit")
	fs.Usage = func() {
		fmt.Fprintln(io.err, "Usage: rowhook check --config FILE [--offline]")
		fmt.Fprintln(io.err)
		fmt.Fprintln(io.err, "Validates every section of the config. Rule conditions and body fields are compiled and type-checked;")
		fmt.Fprintln(io.err, "when the source (source.dsn) is reachable, column names, tables and lookup queries are checked against")
		fmt.Fprintln(io.err, "its schema too. Errors name the place: rowhook.yaml:14:11: rules[2].when: unknown column \"amout\" ...")
		fmt.Fprintln(io.err, "Exit status 0: valid; 1: errors (one per line); 2: bad command line.")
		fmt.Fprintln(io.err)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return usagef("check: %v", err)
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
	cfg, doc, err := loadConfigAll(*configPath)
	if err != nil {
		return err
	}
	var db *sql.DB
	against := "offline (--offline): columns and lookup queries not checked"
	if !*offline {
		var note string
		db, note = openSource(ctx, cfg.Source)
		if db != nil {
			defer db.Close()
		}
		against = note
	}
	if _, err := rules.New(ctx, cfg.Rules, rules.Deps{Source: db}); err != nil {
		return doc.Locate(err)
	}
	if db != nil {
		if err := checkLookups(ctx, db, cfg.Rules); err != nil {
			return doc.Locate(err)
		}
	}
	fmt.Fprintf(io.out, "%s: ok: %s, %s; %s\n", doc.File, plural(len(cfg.Rules.Rules), "rule"),
		plural(len(cfg.Rules.Bodies), "YAML body function"), against)
	return nil
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// loadConfigAll reads the config and validates every section (each field
// of config with a Validate method), reporting all errors at once.
func loadConfigAll(path string) (*config, *yamlconf.Doc, error) {
	cfg := defaultConfig()
	doc, err := yamlconf.Load(path, &cfg)
	if err != nil {
		return nil, doc, err
	}
	errs := validateSections(cfg)
	errs = append(errs, webhookRefs(cfg)...)
	if err := doc.Locate(errors.Join(errs...)); err != nil {
		return nil, doc, err
	}
	return &cfg, doc, nil
}

// loadRulesConfig reads the config and validates only what rules need
// (rowhook test and replay run without a source or webhooks).
func loadRulesConfig(path string) (*config, *yamlconf.Doc, error) {
	cfg := defaultConfig()
	doc, err := yamlconf.Load(path, &cfg)
	if err != nil {
		return nil, doc, err
	}
	if err := doc.Locate(cfg.Rules.Validate()); err != nil {
		return nil, doc, err
	}
	return &cfg, doc, nil
}

func validateSections(cfg config) []error {
	var errs []error
	v := reflect.ValueOf(cfg)
	for i := 0; i < v.NumField(); i++ {
		if !v.Type().Field(i).IsExported() {
			continue
		}
		if val, ok := v.Field(i).Interface().(interface{ Validate() error }); ok {
			if err := val.Validate(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errs
}

// webhookRefs checks that every rule's webhooks are configured.
func webhookRefs(cfg config) []error {
	var errs []error
	names := make([]string, 0, len(cfg.Dispatch.Webhooks))
	for n := range cfg.Dispatch.Webhooks {
		names = append(names, n)
	}
	for i, r := range cfg.Rules.Rules {
		for j, w := range r.Webhooks {
			if _, ok := cfg.Dispatch.Webhooks[w]; ok || strings.TrimSpace(w) == "" {
				continue
			}
			hint := "; configured webhooks: " + strings.Join(names, ", ")
			if len(names) == 0 {
				hint = "; there is no webhooks: section"
			}
			errs = append(errs, yamlconf.Errf(fmt.Sprintf("rules[%d].webhooks[%d]", i, j), "unknown webhook %q%s", w, hint))
		}
	}
	return errs
}

// openSource connects to the source for schema checks; on failure it
// returns nil and says why (check then works offline).
func openSource(ctx context.Context, c cdc.Config) (*sql.DB, string) {
	src, err := cdc.ParseDSN(c.DSN)
	if err != nil {
		return nil, "source DSN unusable: columns not checked"
	}
	db, err := sql.Open("mysql", src.DriverDSN(""))
	if err != nil {
		return nil, fmt.Sprintf("source %s not usable (%v): columns not checked", src.Redacted(), err)
	}
	pctx, cancel := context.WithTimeout(ctx, sourceCheckTimeout)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return nil, fmt.Sprintf("source %s not reachable (%v): checked offline, columns not checked", src.Redacted(), err)
	}
	return db, fmt.Sprintf("columns checked against the source %s", src.Redacted())
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
