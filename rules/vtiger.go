package rules

import (
	"context"
	"fmt"
	"strconv"

	"github.com/rowhook/rowhook/cdc"
)

// The Vtiger preset assembles a record from Vtiger's split tables:
// vtiger_crmentity (owner, times, label, deleted flag) + the module table +
// its custom-field table (+ address tables), all keyed by crmid. Vtiger
// writes them in separate autocommit transactions, so the engine collects a
// record's rows from the binlog during a settle window (see engine.go) and
// builds the body when the window closes.

const crmentity = "vtiger_crmentity"

// vtKind is what a preset event announces.
type vtKind int

const (
	kindNone vtKind = iota
	kindNew
	kindUpdated
	kindDeleted
)

// vtModule describes one Vtiger module's tables.
type vtModule struct {
	// module is vtiger_crmentity.setype ("Potentials").
	module string
	// noun names the body functions: New<noun>, <noun>Updated, <noun>Deleted.
	noun  string
	table string
	pk    string
	// cf is the custom-field table (cf_NNN columns), keyed by pk.
	cf string
	// extras are one-to-one side tables nested under field in the body.
	extras []vtExtra
	// related are reference columns whose display name is added as
	// field right after the column.
	related []vtRelated
}

type vtExtra struct{ table, pk, field string }

type vtRelated struct{ col, field string }

// tables lists the module's tables, crmentity first.
func (m *vtModule) tables() []string {
	out := []string{crmentity, m.table}
	if m.cf != "" {
		out = append(out, m.cf)
	}
	for _, x := range m.extras {
		out = append(out, x.table)
	}
	return out
}

// keyColumn returns the crmid column of table within the module, or "".
func (m *vtModule) keyColumn(table string) string {
	switch table {
	case crmentity:
		return "crmid"
	case m.table:
		return m.pk
	case m.cf:
		return m.pk
	}
	for _, x := range m.extras {
		if x.table == table {
			return x.pk
		}
	}
	return ""
}

// registerVtiger registers New<noun>, <noun>Updated and <noun>Deleted.
func registerVtiger(m *vtModule) {
	for _, k := range []struct {
		kind vtKind
		name string
		doc  string
	}{
		{kindNew, "New" + m.noun, "a new " + m.module + " record (" + m.table + " + " + crmentity + " + custom fields), once its rows have settled; none if it was deleted meanwhile"},
		{kindUpdated, m.noun + "Updated", "a changed " + m.module + " record as of the end of its settle window; none for saves inside the creation window or for deleted records"},
		{kindDeleted, m.noun + "Deleted", "a " + m.module + " record moved to the recycle bin (" + crmentity + ".deleted = 1) or deleted"},
	} {
		registerBody(&bodyFunc{name: k.name, doc: k.doc, vtiger: m, kind: k.kind, build: buildVtiger})
	}
}

// vtRow is one table's row of a record, with its column order.
type vtRow struct {
	cols []string
	vals cdc.Row
}

// vtRecord is a record as assembled from its tables.
type vtRecord struct {
	schema string
	crmid  int64
	rows   map[string]*vtRow
	// created: the window saw the record's crmentity or module-table insert.
	created bool
	// removed: the window saw the crmentity row deleted (recycle bin emptied).
	removed bool
	// names resolves reference ids to display names (crmentity labels);
	// owner resolves a user or group id to its name.
	names func(ctx context.Context, schema string, id any) any
	owner func(ctx context.Context, schema string, id any) any
}

func (r *vtRecord) get(table, col string) any {
	if row := r.rows[table]; row != nil {
		return row.vals[col]
	}
	return nil
}

// deleted reports whether the record is in the recycle bin or gone.
func (r *vtRecord) deleted() bool {
	if r.removed {
		return true
	}
	if row := r.rows[crmentity]; row != nil {
		return !isEmpty(row.vals["deleted"])
	}
	return false
}

// setype returns the record's module from crmentity, or "" when unknown.
func (r *vtRecord) setype() string {
	if s, ok := r.get(crmentity, "setype").(string); ok {
		return s
	}
	return ""
}

// buildVtiger builds a preset body from the assembled record.
func buildVtiger(ctx context.Context, in *buildInput) (Body, error) {
	rec := in.record
	if rec == nil {
		return nil, fmt.Errorf("vtiger body: no record assembled for change %s", in.change.ID)
	}
	m := in.module
	b := Body{
		{Name: "id", Value: rec.crmid},
		{Name: "module", Value: m.module},
		{Name: "label", Value: rec.get(crmentity, "label")},
	}
	main := rec.rows[m.table]
	if main != nil {
		for _, c := range main.cols {
			if c == m.pk {
				continue
			}
			v := main.vals[c]
			b = append(b, Field{Name: c, Value: v})
			for _, rel := range m.related {
				if rel.col == c {
					var name any
					if !isEmpty(v) && rec.names != nil {
						name = rec.names(ctx, rec.schema, v)
					}
					b = append(b, Field{Name: rel.field, Value: name})
				}
			}
		}
	}
	if m.cf != "" {
		var cf any
		if row := rec.rows[m.cf]; row != nil {
			cb := Body{}
			for _, c := range row.cols {
				if c != m.pk {
					cb = append(cb, Field{Name: c, Value: row.vals[c]})
				}
			}
			cf = cb
		}
		b = append(b, Field{Name: "custom_fields", Value: cf})
	}
	for _, x := range m.extras {
		if row := rec.rows[x.table]; row != nil {
			xb := Body{}
			for _, c := range row.cols {
				if c != x.pk {
					xb = append(xb, Field{Name: c, Value: row.vals[c]})
				}
			}
			b = append(b, Field{Name: x.field, Value: xb})
		}
	}
	owner := rec.get(crmentity, "smownerid")
	var ownerName any
	if !isEmpty(owner) && rec.owner != nil {
		ownerName = rec.owner(ctx, rec.schema, owner)
	}
	b.Set("assigned_user_id", owner)
	b.Set("assigned_user_name", ownerName)
	b.Set("created_by", rec.get(crmentity, "smcreatorid"))
	b.Set("modified_by", rec.get(crmentity, "modifiedby"))
	b.Set("created_time", rec.get(crmentity, "createdtime"))
	b.Set("modified_time", rec.get(crmentity, "modifiedtime"))
	b.Set("source", rec.get(crmentity, "source"))
	b.Set("description", rec.get(crmentity, "description"))
	b.Set("deleted", rec.deleted())
	return b, nil
}

// crmidOf reads an integer id (crmid columns are INT).
func crmidOf(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case uint64:
		return int64(x), true
	case int:
		return int64(x), true
	case int32:
		return int64(x), true
	case float64:
		return int64(x), x == float64(int64(x))
	case string:
		n, err := strconv.ParseInt(x, 10, 64)
		return n, err == nil
	case cdc.Decimal:
		n, err := strconv.ParseInt(string(x), 10, 64)
		return n, err == nil
	}
	return 0, false
}
