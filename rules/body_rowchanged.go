package rules

import (
	"context"
	"time"
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
			b := Body{
				{Name: "op", Value: string(c.Op)},
				{Name: "schema", Value: c.Schema},
				{Name: "table", Value: c.Table},
				{Name: "key", Value: key},
				{Name: "changed", Value: changed},
				{Name: "before", Value: nullable(rowBody(c.Before, c.Columns))},
				{Name: "after", Value: nullable(rowBody(c.After, c.Columns))},
				{Name: "committed_at", Value: c.Timestamp.UTC().Format(time.RFC3339)},
			}
			if c.GTID != "" {
				b = append(b, Field{Name: "gtid", Value: c.GTID})
			}
			return b, nil
		},
	})
}

// nullable keeps a nil Body a JSON null rather than {}.
func nullable(b Body) any {
	if b == nil {
		return nil
	}
	return b
}
