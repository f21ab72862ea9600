package rules

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/rowhook/rowhook/cdc"
)

// buildInput is what a body function gets to build one body.
type buildInput struct {
	// change is the row change that fired the rule.
	change *cdc.Change
	// record is the settled Vtiger record (preset functions only).
	record *vtRecord
	// module is the preset module being built (preset functions only).
	module *vtModule
	// source is a read-only connection to the source; nil offline.
	source *sql.DB
	loc    *time.Location
	// boxes caches boxed strings across builds (engine path only).
	boxes *boxCache
	// lookup, when not nil, replaces a YAML body's lookup query result
	// (rule tests run offline).
	lookup map[string]any
	// eval is reused by YAML bodies (engine path only); nil: a new one.
	eval *bodyEval
}

// bodyFunc is a named body function. Go-defined ones live one per file and
// register themselves from init; YAML ones are made from `bodies:`.
type bodyFunc struct {
	name string
	// doc is one line for `rowhook check --list` and docs/rules.md.
	doc string
	// vtiger is set for the Vtiger preset: the event waits for the record's
	// settle window and the body is built from the assembled record.
	vtiger *vtModule
	kind   vtKind
	// pure: the body depends on the change alone (no lookups), so rules
	// firing on one change share it.
	pure  bool
	build func(ctx context.Context, in *buildInput) (Body, error)
	// reads are the columns a YAML body's fields and lookup read by name,
	// checked against each change's columns (schema drift).
	reads []fieldRead
}

// builtins are the Go-defined body functions by name.
var builtins = map[string]*bodyFunc{}

func registerBody(f *bodyFunc) {
	if _, dup := builtins[f.name]; dup {
		panic("rules: body function registered twice: " + f.name)
	}
	builtins[f.name] = f
}

// BodyFuncInfo describes a built-in body function.
type BodyFuncInfo struct {
	Name string
	Doc  string
	// Tables lists the tables the function assembles, or is empty when it
	// works on any table.
	Tables []string
}

// BuiltinBodies lists the Go-defined body functions, by name.
func BuiltinBodies() []BodyFuncInfo {
	out := make([]BodyFuncInfo, 0, len(builtins))
	for _, f := range builtins {
		info := BodyFuncInfo{Name: f.name, Doc: f.doc}
		if f.vtiger != nil {
			info.Tables = f.vtiger.tables()
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func builtinList() string {
	names := make([]string, 0, len(builtins))
	for n := range builtins {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) > 6 {
		return strings.Join(names[:6], ", ") + ", …"
	}
	return strings.Join(names, ", ")
}

// rowBody renders an image as a Body in column order (cols), falling back to
// sorted names for columns not listed.
func rowBody(r cdc.Row, cols []string) Body {
	if r == nil {
		return nil
	}
	return rowBodyInto(make(Body, 0, len(r)), r, cols)
}

// rowBodyInto is rowBody appending to b (empty); nil when r is.
func rowBodyInto(b Body, r cdc.Row, cols []string) Body {
	if r == nil {
		return nil
	}
	for _, c := range cols {
		if v, ok := r[c]; ok {
			b = append(b, Field{Name: c, Value: v})
		}
	}
	if len(b) == len(r) {
		return b
	}
	// Columns missing from cols (or cols not given): sorted, after the rest.
	seen := make(map[string]bool, len(b))
	for _, f := range b {
		seen[f.Name] = true
	}
	var rest []string
	for k := range r {
		if !seen[k] {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	for _, k := range rest {
		b = append(b, Field{Name: k, Value: r[k]})
	}
	return b
}

func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

func qualified(schema, table string) string {
	if schema == "" {
		return quoteIdent(table)
	}
	return quoteIdent(schema) + "." + quoteIdent(table)
}

func errorf(op string, err error) error { return fmt.Errorf("%s: %w", op, err) }
