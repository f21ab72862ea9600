package rules

import (
	"context"
	"time"

	"github.com/rowhook/rowhook/cdc"
)

// RowChanged: the change itself as a body, for any table.
func init() {
	registerBody(&bodyFunc{
		name: "RowChanged",
		pure: true,
		doc:  "the row change as it is: op, schema, table, key, changed columns, before and after images, commit time",
		build: func(_ context.Context, in *buildInput) (Body, error) {
			c := in.change
			bx := in.boxes
			if bx == nil {
				bx = &boxCache{}
			}
			// One array holds the fields of the body, its key, before
			// and after, each sliced to its own capacity: appending to
			// one (Body.Set) never writes over another.
			const top = 9
			nk, nb := len(c.PK), len(c.Before)
			fs := make(Body, top+nk+nb+len(c.After))
			key := rowBodyInto(fs[top:top:top+nk], c.PK, c.PKColumns)
			if key == nil {
				key = Body{}
			}
			before := rowBodyInto(fs[top+nk:top+nk:top+nk+nb], c.Before, c.Columns)
			after := rowBodyInto(fs[top+nk+nb:top+nk+nb:len(fs)], c.After, c.Columns)
			b := append(fs[:0:top],
				Field{Name: "op", Value: opValues[c.Op]},
				Field{Name: "schema", Value: bx.str(0, c.Schema)},
				Field{Name: "table", Value: bx.str(1, c.Table)},
				Field{Name: "key", Value: key},
				Field{Name: "changed", Value: bx.list(c.Changed)},
				Field{Name: "before", Value: nullable(before)},
				Field{Name: "after", Value: nullable(after)},
				Field{Name: "committed_at", Value: bx.stamp(c.Timestamp)},
			)
			if c.GTID != "" {
				b = append(b, Field{Name: "gtid", Value: bx.str(2, c.GTID)})
			}
			return b, nil
		},
	})
}

// opValues are the operations boxed once (a string in an interface
// allocates).
var opValues = map[cdc.Op]any{cdc.OpInsert: "insert", cdc.OpUpdate: "update", cdc.OpDelete: "delete"}

// boxCache keeps the last few strings boxed for body fields: consecutive
// changes share their transaction's time and GTID, and often the table.
// One per engine, used under its lock.
type boxCache struct {
	strs  [3]string
	boxed [3]any
	ts    time.Time
	tsv   any
	lst   []string
	listv any
}

// emptyList is an empty column list, boxed.
var emptyList any = []string{}

// list boxes a column list ([] for nil). Inserts and deletes of one table
// share the table's list, so the box is kept while the list is the same.
func (c *boxCache) list(s []string) any {
	if len(s) == 0 {
		return emptyList
	}
	if c.listv == nil || len(c.lst) != len(s) || &c.lst[0] != &s[0] {
		c.lst, c.listv = s, s
	}
	return c.listv
}

func (c *boxCache) str(slot int, s string) any {
	if c.boxed[slot] == nil || c.strs[slot] != s {
		c.strs[slot], c.boxed[slot] = s, s
	}
	return c.boxed[slot]
}

func (c *boxCache) stamp(t time.Time) any {
	if c.tsv == nil || !c.ts.Equal(t) {
		c.ts, c.tsv = t, t.UTC().Format(time.RFC3339)
	}
	return c.tsv
}

// nullable keeps a nil Body a JSON null rather than {}.
func nullable(b Body) any {
	if b == nil {
		return nil
	}
	return b
}
