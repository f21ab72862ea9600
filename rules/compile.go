package rules

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"

	"github.com/rowhook/rowhook/internal/yamlconf"
)

// columnSet is the set of a table's columns; nil means unknown (offline),
// in which case column names are not checked.
type columnSet struct {
	table string
	cols  map[string]bool
	order []string
	// types are information_schema DATA_TYPEs ("varchar", "decimal").
	types map[string]string
}

// kind classifies a column's type for comparisons: "number", "text",
// "date" or "" (unknown, or anything else).
func (c *columnSet) kind(name string) string {
	if c == nil {
		return ""
	}
	switch c.types[name] {
	case "tinyint", "smallint", "mediumint", "int", "integer", "bigint", "decimal", "numeric", "float", "double", "year":
		return "number"
	case "char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set":
		return "text"
	case "date", "datetime", "timestamp":
		return "date"
	}
	return ""
}

func (c *columnSet) has(name string) bool { return c == nil || c.cols[name] }

// exprOptions are the options every program is compiled with.
func exprOptions(asBool bool, extra ...expr.Option) []expr.Option {
	opts := []expr.Option{expr.Env(env{})}
	for _, h := range helpers {
		opts = append(opts, expr.Function(h.name, h.fn, h.types...))
	}
	if asBool {
		opts = append(opts, expr.AsBool())
	}
	return append(opts, extra...)
}

// rowAccess replaces every row.x / old.x by _col(row, "x") (DECIMAL → number) and
// checks the column names against cols.
type rowAccess struct {
	cols *columnSet
	// raw keeps values exact (bodies): no _col.
	raw  bool
	errs []columnError
}

var _ ast.Visitor = (*rowAccess)(nil)

type columnError struct {
	from int
	msg  string
}

// Visit implements ast.Visitor (children are visited first).
func (v *rowAccess) Visit(node *ast.Node) {
	if b, ok := (*node).(*ast.BinaryNode); ok {
		v.checkComparison(b)
		return
	}
	m, ok := (*node).(*ast.MemberNode)
	if !ok {
		return
	}
	id, ok := m.Node.(*ast.IdentifierNode)
	if !ok || (id.Value != "row" && id.Value != "old") {
		return
	}
	if prop, ok := m.Property.(*ast.StringNode); ok && !v.cols.has(prop.Value) {
		v.errs = append(v.errs, columnError{
			from: m.Property.Location().From,
			msg: fmt.Sprintf("unknown column %q in %s%s", prop.Value, v.cols.table,
				suggest(prop.Value, v.cols.order)),
		})
	}
	if v.raw {
		return
	}
	// _col(row, "x") reads the map without expr's reflective fetch and
	// converts the value (exprValue).
	call := &ast.CallNode{Callee: &ast.IdentifierNode{Value: "_col"}, Arguments: []ast.Node{m.Node, m.Property}}
	call.Callee.SetLocation(m.Location())
	ast.Patch(node, call)
}

// columnOf returns the column a node reads (row.x / old.x, before or after
// the _col rewrite), or "".
func columnOf(n ast.Node) string {
	switch x := n.(type) {
	case *ast.CallNode:
		if id, ok := x.Callee.(*ast.IdentifierNode); ok && id.Value == "_col" && len(x.Arguments) == 2 {
			if s, ok := x.Arguments[1].(*ast.StringNode); ok {
				return s.Value
			}
		}
	case *ast.MemberNode:
		if id, ok := x.Node.(*ast.IdentifierNode); ok && (id.Value == "row" || id.Value == "old") {
			if s, ok := x.Property.(*ast.StringNode); ok {
				return s.Value
			}
		}
	}
	return ""
}

// checkComparison rejects comparing a column with a literal of another
// kind (row.potentialname > 5, row.amount == "1000"), which expr cannot
// see because rows are maps: such a rule would never fire, or fail on
// every row.
func (v *rowAccess) checkComparison(b *ast.BinaryNode) {
	switch b.Operator {
	case "==", "!=", "<", ">", "<=", ">=":
	default:
		return
	}
	col, lit := columnOf(b.Left), b.Right
	if col == "" {
		col, lit = columnOf(b.Right), b.Left
	}
	kind := v.cols.kind(col)
	if col == "" || kind == "" {
		return
	}
	litKind := ""
	switch x := lit.(type) {
	case *ast.IntegerNode, *ast.FloatNode:
		litKind = "number"
	case *ast.StringNode:
		litKind = "text"
		if _, ok := toTime(x.Value, time.UTC); ok && kind == "date" {
			litKind = "date"
		}
	}
	switch {
	case litKind == "" || litKind == kind:
		return
	case kind == "date" && litKind == "text":
		// A date column compared with text that is not a date.
	case kind == "text" && litKind == "date":
		return
	}
	v.errs = append(v.errs, columnError{
		from: lit.Location().From,
		msg: fmt.Sprintf("%s is a %s column (%s) compared with a %s: the rule would never match; compare with a %s",
			col, kind, v.cols.types[col], litKind, kindExample(kind)),
	})
}

func kindExample(kind string) string {
	switch kind {
	case "number":
		return "number (row.x > 1000)"
	case "date":
		return `date string ("2026-12-31") or use before()/after()`
	}
	return `string (row.x == "Closed Won")`
}

// compileCondition compiles a rule's `when` (empty: nil program, always
// true). path is the config key path for errors.
func compileCondition(path, src string, cols *columnSet) (*vm.Program, error) {
	if strings.TrimSpace(src) == "" {
		return nil, nil
	}
	return compileExpr(path, src, cols, true)
}

func compileExpr(path, src string, cols *columnSet, asBool bool, extra ...expr.Option) (*vm.Program, error) {
	// A body field that is just row.x keeps the exact value (DECIMAL as
	// its text); inside an expression values compare as numbers.
	ra := &rowAccess{cols: cols, raw: !asBool && isPlainColumn(src)}
	prog, err := expr.Compile(src, exprOptions(asBool, append(extra, expr.Patch(ra))...)...)
	if len(ra.errs) > 0 {
		// Unknown columns first: they explain most type errors that follow.
		sort.Slice(ra.errs, func(i, j int) bool { return ra.errs[i].from < ra.errs[j].from })
		var errs []error
		for _, ce := range ra.errs {
			errs = append(errs, &yamlconf.PathError{Path: path, Offset: offsetOf(src, ce.from), Err: errors.New(ce.msg)})
		}
		return nil, errors.Join(errs...)
	}
	if err != nil {
		return nil, exprError(path, src, err)
	}
	return prog, nil
}

// isPlainColumn reports whether src is only a row.x / old.x access.
func isPlainColumn(src string) bool {
	tree, err := parser.Parse(src)
	if err != nil {
		return false
	}
	n := tree.Node
	if c, ok := n.(*ast.ChainNode); ok {
		n = c.Node
	}
	m, ok := n.(*ast.MemberNode)
	if !ok {
		return false
	}
	id, ok := m.Node.(*ast.IdentifierNode)
	return ok && (id.Value == "row" || id.Value == "old")
}

var unknownName = regexp.MustCompile(`^unknown name (\S+)`)

// exprError turns an expr compile error into a positioned path error.
func exprError(path, src string, err error) error {
	var fe *file.Error
	msg := err.Error()
	if errors.As(err, &fe) {
		msg = fe.Message
	}
	if m := unknownName.FindStringSubmatch(msg); m != nil {
		msg += suggest(m[1], append(helperNames(), "row", "old", "op", "table", "schema", "lookup", "now"))
	}
	if strings.HasPrefix(msg, "expected bool, but got") {
		msg += " (a condition must be true or false; compare the value, e.g. row.x == 1, or use isNotEmpty(row.x))"
	}
	pe := &yamlconf.PathError{Path: path, Err: errors.New(msg)}
	switch {
	case fe == nil:
	case fe.Line <= 1:
		pe.Offset = fe.Column
	default:
		pe.Err = fmt.Errorf("%s (line %d, column %d of the expression)", msg, fe.Line, fe.Column+1)
	}
	return pe
}

// offsetOf converts a rune offset into the column on the first line (the
// offset yamlconf adds to the value's position).
func offsetOf(src string, from int) int {
	n := 0
	for _, r := range src {
		if n == from || r == '\n' {
			break
		}
		n++
	}
	return n
}
