package rules

import (
	"encoding/hex"
	"hash/fnv"
	"slices"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"

	"github.com/rowhook/rowhook/cdc"
)

// Schema drift: a YAML body field reads row.x, and x is renamed or dropped
// on the source (ALTER TABLE … RENAME COLUMN). rowhook names columns from
// each row's own TABLE_MAP, so after the ALTER the row has no x and the
// field quietly becomes null. The engine compares the columns each body
// reads with the change's column list, says so once per table version and
// counts every affected event.

// fieldRead is a column a YAML body reads: in a field's expression (row.x,
// old.x, row["x"]) or as a lookup parameter (:x, field "lookup").
type fieldRead struct {
	field  string
	column string
}

// columnsRead returns the columns src reads by a constant name, in order,
// each once. row?.x is left out: the optional member says the column may be
// missing (a body shared by rules on tables with different columns).
func columnsRead(src string) []string {
	tree, err := parser.Parse(src)
	if err != nil {
		return nil
	}
	v := &readCollector{}
	ast.Walk(&tree.Node, v)
	return v.cols
}

type readCollector struct{ cols []string }

// Visit implements ast.Visitor.
func (v *readCollector) Visit(node *ast.Node) {
	m, ok := (*node).(*ast.MemberNode)
	if !ok || m.Optional {
		return
	}
	id, ok := m.Node.(*ast.IdentifierNode)
	if !ok || (id.Value != "row" && id.Value != "old") {
		return
	}
	if s, ok := m.Property.(*ast.StringNode); ok && !slices.Contains(v.cols, s.Value) {
		v.cols = append(v.cols, s.Value)
	}
}

// driftKey is what a schema drift warning is said once for.
type driftKey struct {
	rule, field, column, version string
}

// colCheck caches, per rule, the answer for the last column list seen (the
// decoder shares one slice per table version, so the check runs once per
// TABLE_MAP, not per row).
type colCheck struct {
	cols    *string
	n       int
	missing []fieldRead
	version string
}

// checkColumns reports whether a body field of rule r reads a column that
// ch's table does not have, warning once per rule, field, column and table
// version. A change without a column list (built by hand, rule tests) is
// not checked. Called under e.mu.
func (e *Engine) checkColumns(r *rule, ch *cdc.Change) bool {
	if len(r.body.reads) == 0 || len(ch.Columns) == 0 {
		return false
	}
	c := &r.cols
	if c.cols != &ch.Columns[0] || c.n != len(ch.Columns) {
		c.cols, c.n, c.missing, c.version = &ch.Columns[0], len(ch.Columns), nil, ""
		for _, fr := range r.body.reads {
			if !slices.Contains(ch.Columns, fr.column) {
				c.missing = append(c.missing, fr)
			}
		}
		if len(c.missing) > 0 {
			c.version = tableVersion(ch.Columns)
		}
	}
	if len(c.missing) == 0 {
		return false
	}
	for _, fr := range c.missing {
		k := driftKey{rule: r.cfg.Name, field: fr.field, column: fr.column, version: c.version}
		if e.drifted[k] {
			continue
		}
		if e.drifted == nil {
			e.drifted = map[driftKey]bool{}
		}
		e.drifted[k] = true
		e.logger.Warn("body field reads a column the table does not have (renamed or dropped?); the field is sent as null",
			"rule", r.cfg.Name, "body", r.body.name, "field", fr.field, "column", fr.column,
			"table", ch.Schema+"."+ch.Table, "table_version", c.version, "columns", ch.Columns, "change", ch.ID)
	}
	return true
}

// tableVersion names a table's column list (as the binlog's TABLE_MAP gave
// it) in logs: a short hash of the names in order.
func tableVersion(cols []string) string {
	h := fnv.New64a()
	for _, c := range cols {
		h.Write([]byte(c))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}
