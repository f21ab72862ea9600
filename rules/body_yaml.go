package rules

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/expr-lang/expr/vm"

	"github.com/rowhook/rowhook/internal/sqltext"
	"github.com/rowhook/rowhook/internal/yamlconf"
)

// yamlBody is a body function defined under `bodies:`.
type yamlBody struct {
	name   string
	fields []yamlField
	// query is the lookup with :name placeholders replaced by ?; params
	// are the column names bound to them, in order.
	query  string
	params []string
}

type yamlField struct {
	name string
	prog *vm.Program
}

// compileYAMLBody compiles bodies.<name>. cols, when known, are the columns
// of the tables the rules using it read (checked in row.x / :param).
func compileYAMLBody(name string, c BodyConfig, cols *columnSet) (*bodyFunc, error) {
	p := "bodies." + name
	var errs []error
	yb := &yamlBody{name: name}
	if len(c.Fields) == 0 {
		errs = append(errs, yamlconf.Errf(p+".fields", "at least one field is required"))
	}
	seen := map[string]bool{}
	var reads []fieldRead
	for _, f := range c.Fields {
		fp := p + ".fields." + f.Name
		if seen[f.Name] {
			errs = append(errs, yamlconf.Errf(fp, "field %q appears twice", f.Name))
		}
		seen[f.Name] = true
		if strings.TrimSpace(f.Expr) == "" {
			errs = append(errs, yamlconf.Errf(fp, "empty expression (use nil for a null field)"))
			continue
		}
		prog, err := compileExpr(fp, f.Expr, cols, false)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		yb.fields = append(yb.fields, yamlField{name: f.Name, prog: prog})
		for _, col := range columnsRead(f.Expr) {
			reads = append(reads, fieldRead{field: f.Name, column: col})
		}
	}
	if c.Lookup != "" {
		q, params, err := parseLookup(c.Lookup)
		if err != nil {
			errs = append(errs, yamlconf.Errf(p+".lookup", "%v", err))
		}
		for _, prm := range params {
			if !cols.has(prm) {
				errs = append(errs, yamlconf.Errf(p+".lookup", "parameter :%s is not a column of %s%s", prm, cols.table, suggest(prm, cols.order)))
			}
		}
		yb.query, yb.params = q, params
		for _, prm := range params {
			if fr := (fieldRead{field: "lookup", column: prm}); !slices.Contains(reads, fr) {
				reads = append(reads, fr)
			}
		}
	} else {
		for _, f := range c.Fields {
			if strings.Contains(f.Expr, "lookup.") || strings.Contains(f.Expr, "lookup[") || strings.Contains(f.Expr, "lookup?.") {
				errs = append(errs, yamlconf.Errf(p+".fields."+f.Name, "uses lookup but bodies.%s has no lookup query", name))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &bodyFunc{name: name, doc: "defined in YAML", pure: yb.query == "", build: yb.build, reads: reads}, nil
}

// LookupQuery returns a YAML lookup query as it is sent to the source
// (placeholders as ?), for checking it with PREPARE.
func LookupQuery(q string) (string, error) {
	out, _, err := parseLookup(q)
	return out, err
}

// parseLookup checks a lookup query and turns its :name placeholders into
// ? (outside quotes and comments); values are always bound, never spliced.
func parseLookup(q string) (string, []string, error) {
	trimmed := strings.TrimSpace(q)
	if first := strings.ToUpper(strings.Fields(trimmed + " x")[0]); first != "SELECT" && first != "WITH" {
		return "", nil, fmt.Errorf("must be a SELECT query, not %q", strings.Fields(trimmed + " x")[0])
	}
	var b strings.Builder
	var params []string
	for seg := range sqltext.Scan(trimmed) {
		if seg.Kind != sqltext.Code {
			if seg.Unterminated {
				return "", nil, fmt.Errorf("unterminated %c quote", seg.Text[0])
			}
			b.WriteString(seg.Text)
			continue
		}
		for k := 0; k < len(seg.Text); k++ {
			i := seg.Start + k
			switch c := trimmed[i]; {
			case c == ';':
				if strings.TrimSpace(trimmed[i+1:]) != "" {
					return "", nil, errors.New("must be a single statement")
				}
				k = len(seg.Text)
			case c == '?':
				return "", nil, errors.New("use :column placeholders, not ?")
			case c == ':' && i+1 < len(trimmed) && isIdentStart(trimmed[i+1]) && (i == 0 || trimmed[i-1] != ':'):
				j := i + 1
				for j < len(trimmed) && isIdentChar(trimmed[j]) {
					j++
				}
				params = append(params, trimmed[i+1:j])
				b.WriteByte('?')
				k = j - 1 - seg.Start
			default:
				b.WriteByte(c)
			}
		}
	}
	return "/* rowhook lookup */ " + b.String(), params, nil
}

func isIdentStart(c byte) bool { return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isIdentChar(c byte) bool  { return isIdentStart(c) || c >= '0' && c <= '9' }

// bodyEval is what YAML body fields are evaluated with: the engine keeps
// one (its lock orders the builds), other callers make their own.
type bodyEval struct {
	ec      evalCtx
	env     *env
	machine vm.VM
}

func newBodyEval() *bodyEval {
	b := &bodyEval{}
	b.env = newEnv(&b.ec)
	return b
}

func (yb *yamlBody) build(ctx context.Context, in *buildInput) (Body, error) {
	ev := in.eval
	if ev == nil {
		ev = newBodyEval()
	}
	e := ev.env
	e.bind(&ev.ec, in.change, in.loc)
	if yb.query != "" {
		switch {
		case in.lookup != nil:
			e.Lookup = in.lookup
		case in.source != nil:
			row := in.change.Image()
			args := make([]any, len(yb.params))
			for i, p := range yb.params {
				args[i] = row[p]
			}
			rows, err := in.source.QueryContext(ctx, yb.query, args...)
			if err != nil {
				return nil, fmt.Errorf("body %s: lookup: %w", yb.name, err)
			}
			cols, vals, err := scanRows(rows, 1)
			if err != nil {
				return nil, fmt.Errorf("body %s: lookup: %w", yb.name, err)
			}
			if len(vals) > 0 {
				m := make(map[string]any, len(cols))
				for k, v := range vals[0] {
					m[k] = v
				}
				e.Lookup = m
			}
		}
	}
	b := make(Body, 0, len(yb.fields))
	var fe *FieldError
	for _, f := range yb.fields {
		v, err := ev.machine.Run(f.prog, e)
		if err != nil {
			if fe == nil {
				fe = &FieldError{Body: yb.name}
			}
			fe.Fields = append(fe.Fields, f.name)
			fe.Errs = append(fe.Errs, err)
			v = nil
		}
		b = append(b, Field{Name: f.name, Value: v})
	}
	if fe != nil {
		return b, fe
	}
	return b, nil
}

// FieldError reports YAML body fields whose expression failed on a change;
// the body is still built, with those fields null.
type FieldError struct {
	Body   string
	Fields []string
	Errs   []error
}

// Error lists the failed fields and why.
func (e *FieldError) Error() string {
	var parts []string
	for i, f := range e.Fields {
		parts = append(parts, fmt.Sprintf("field %s: %v", f, e.Errs[i]))
	}
	return "body " + e.Body + ": " + strings.Join(parts, "; ")
}
