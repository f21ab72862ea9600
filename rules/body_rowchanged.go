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
			key := rowBody(c.PK, c.PKColumns)
			if key == nil {
				key = Body{}
			}
			changed := c.Changed
			if changed == nil {
				changed = []string{}
			}
			bx := in.boxes
			if bx == nil {
				bx = &boxCache{}
			}
			b := make(Body, 0, 9)
			b = append(b,
				Field{Name: "op", Value: opValues[c.Op]},
				Field{Name: "schema", Value: bx.str(0, c.Schema)},
				Field{Name: "table", Value: bx.str(1, c.Table)},
				Field{Name: "key", Value: key},
				Field{Name: "changed", Value: changed},
				Field{Name: "before", Value: nullable(rowBody(c.Before, c.Columns))},
				Field{Name: "after", Value: nullable(rowBody(c.After, c.Columns))},
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
