// Package rules evaluates integrators' workflow conditions (expr programs) on
// row changes and builds event bodies through named body functions.
package rules

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/internal/yamlconf"
)

// DefaultSettle is how long, in binlog commit time, the Vtiger preset waits
// for a record's other rows when the configuration does not say.
const DefaultSettle = 2 * time.Second

// Config is the `rules:` and `bodies:` part of rowhook's configuration.
type Config struct {
	// Rules are the workflow rules, evaluated in order for each row change.
	Rules []RuleConfig `yaml:"rules"`
	// Bodies are body functions defined in YAML, by name.
	Bodies map[string]BodyConfig `yaml:"bodies"`
	// Vtiger tunes the Vtiger preset body functions.
	Vtiger VtigerConfig `yaml:"vtiger"`
	// Timezone is the IANA zone date helpers (isToday, daysAgo, …) count
	// days in; empty means UTC. Vtiger counts in its admin user's zone.
	Timezone string `yaml:"timezone"`
}

// RuleConfig is one rule: when a change on Table matches On and When, build
// the body with the Event body function and deliver it to Webhooks.
type RuleConfig struct {
	// Name identifies the rule; it is part of every event id, so renaming
	// a rule makes a replay produce new ids.
	Name string `yaml:"name"`
	// Table is "schema.table" or "table" (any schema); path.Match globs
	// (*, ?, [a-z]) are allowed.
	Table string `yaml:"table"`
	// On lists the operations: insert, update, delete. Empty means all.
	On []string `yaml:"on"`
	// When is an expr condition; empty always matches.
	When string `yaml:"when"`
	// Event names the body function that builds the body.
	Event string `yaml:"event"`
	// Webhooks are names from the webhooks: section to deliver to.
	Webhooks []string `yaml:"webhooks"`
	// Once delivers only the first event of the rule per record.
	Once bool `yaml:"once"`
	// Writeback is the rule's writeback: block as written (a zero node
	// when there is none): it maps response values back into CRM
	// columns after a successful delivery. The pipeline's config decodes
	// and checks it (writeback.Mapping); rules only carries it.
	Writeback yaml.Node `yaml:"writeback"`
}

// BodyConfig is a body function defined in YAML: fields mapped by expr, with
// an optional parameterised lookup query on the source.
type BodyConfig struct {
	// Lookup is one SELECT run on the source for each event; `:column`
	// placeholders are bound from the row (never interpolated). Its first
	// result row is `lookup` in the field expressions (empty when none).
	Lookup string `yaml:"lookup"`
	// Fields are the body's fields in the order written, each an expr
	// expression over row, old, op, table, schema and lookup.
	Fields Fields `yaml:"fields"`
}

// FieldExpr is one field of a YAML body function.
type FieldExpr struct {
	Name string
	Expr string
}

// Fields is an ordered list of body fields; in YAML it is a mapping whose
// key order is kept.
type Fields []FieldExpr

// UnmarshalYAML decodes a mapping of field name → expr, keeping its order.
func (f *Fields) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: fields must be a mapping of name: expression", n.Line)
	}
	out := make(Fields, 0, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if v.Kind != yaml.ScalarNode {
			return fmt.Errorf("line %d: field %q must be an expression string", v.Line, k.Value)
		}
		out = append(out, FieldExpr{Name: k.Value, Expr: v.Value})
	}
	*f = out
	return nil
}

// Get returns the expression of the field called name.
func (f Fields) Get(name string) (string, bool) {
	for _, x := range f {
		if x.Name == name {
			return x.Expr, true
		}
	}
	return "", false
}

// VtigerConfig is the `vtiger:` section.
type VtigerConfig struct {
	// Schema is the database holding Vtiger's tables; empty means any
	// schema (records are keyed by schema and crmid either way).
	Schema string `yaml:"schema"`
	// Settle is how long after a record's first row (in binlog commit
	// time) its other rows are collected before the body is built; 0 means
	// DefaultSettle. Vtiger writes one save in several autocommit
	// transactions within the same second or two.
	Settle time.Duration `yaml:"settle"`
}

var (
	ruleName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
	bodyName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// Validate checks everything that needs no database: names, operations,
// tables, that every referenced body function exists, and that every expr
// program compiles and type-checks. Errors are yamlconf path errors.
func (c Config) Validate() error {
	var errs []error
	if c.Timezone != "" {
		if _, err := time.LoadLocation(c.Timezone); err != nil {
			errs = append(errs, yamlconf.Errf("timezone", "unknown time zone %q", c.Timezone))
		}
	}
	if c.Vtiger.Settle < 0 {
		errs = append(errs, yamlconf.Errf("vtiger.settle", "must not be negative"))
	}
	names := make([]string, 0, len(c.Bodies))
	for n := range c.Bodies {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := "bodies." + n
		if !bodyName.MatchString(n) {
			errs = append(errs, yamlconf.Errf(p, "body function name %q must be an identifier (letters, digits, _)", n))
		}
		if _, ok := builtins[n]; ok {
			errs = append(errs, yamlconf.Errf(p, "%q is a built-in body function; choose another name", n))
		}
		if _, err := compileYAMLBody(n, c.Bodies[n], nil); err != nil {
			errs = append(errs, err)
		}
	}
	seen := map[string]int{}
	for i, r := range c.Rules {
		p := fmt.Sprintf("rules[%d]", i)
		switch {
		case r.Name == "":
			errs = append(errs, yamlconf.Errf(p+".name", "is required"))
		case !ruleName.MatchString(r.Name):
			errs = append(errs, yamlconf.Errf(p+".name", "%q: use letters, digits, '-', '_' and '.' (it is part of event ids)", r.Name))
		default:
			if j, dup := seen[r.Name]; dup {
				errs = append(errs, yamlconf.Errf(p+".name", "%q is also the name of rules[%d]", r.Name, j))
			}
			seen[r.Name] = i
		}
		if err := checkTablePattern(r.Table); err != nil {
			errs = append(errs, yamlconf.Errf(p+".table", "%v", err))
		}
		for j, op := range r.On {
			switch cdc.Op(op) {
			case cdc.OpInsert, cdc.OpUpdate, cdc.OpDelete:
			default:
				errs = append(errs, yamlconf.Errf(fmt.Sprintf("%s.on[%d]", p, j), "unknown operation %q (use insert, update or delete)", op))
			}
		}
		if r.Event == "" {
			errs = append(errs, yamlconf.Errf(p+".event", "is required: name a body function (%s, or one under bodies:)", builtinList()))
		} else if _, ok := c.Bodies[r.Event]; !ok {
			if _, ok := builtins[r.Event]; !ok {
				errs = append(errs, yamlconf.Errf(p+".event", "unknown body function %q%s", r.Event, suggest(r.Event, c.bodyNames())))
			}
		}
		for j, w := range r.Webhooks {
			if strings.TrimSpace(w) == "" {
				errs = append(errs, yamlconf.Errf(fmt.Sprintf("%s.webhooks[%d]", p, j), "empty webhook name"))
			}
		}
		if _, err := compileCondition(p+".when", r.When, nil); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (c Config) bodyNames() []string {
	out := make([]string, 0, len(builtins)+len(c.Bodies))
	for n := range builtins {
		out = append(out, n)
	}
	for n := range c.Bodies {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// checkTablePattern accepts "table", "schema.table" and globs of either.
func checkTablePattern(t string) error {
	if t == "" {
		return errors.New(`is required ("schema.table", "table" for any schema, globs allowed)`)
	}
	if strings.Count(t, ".") > 1 {
		return fmt.Errorf("%q: use schema.table", t)
	}
	if _, err := path.Match(t, "x"); err != nil {
		return fmt.Errorf("bad pattern %q: %v", t, err)
	}
	return nil
}

// suggest returns ` (did you mean "X"?)` for the closest candidate, or "".
func suggest(name string, candidates []string) string {
	best, bestD := "", 4
	for _, c := range candidates {
		if d := editDistance(strings.ToLower(name), strings.ToLower(c)); d < bestD {
			best, bestD = c, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
