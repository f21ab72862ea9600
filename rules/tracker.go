package rules

import (
	"context"
	"database/sql"
	"errors"
	"sort"
	"strconv"
	"time"

	"github.com/rowhook/rowhook/cdc"
)

// maxLabels bounds the cache of record labels seen in the stream.
const maxLabels = 50000

// vtTracker collects Vtiger records' rows from the binlog into settle
// windows keyed by schema and crmid.
type vtTracker struct {
	schema  string
	modules map[string]*vtModule // by setype
	roles   map[string]*vtModule // by table (crmentity excluded)
	windows map[string]*vtWindow
	// order holds open windows in the order they opened; they close in
	// that order (all have the same settle time).
	order  []*vtWindow
	labels map[string]any
}

// vtWindow is one record's settle window.
type vtWindow struct {
	key    string
	opened time.Time
	// hold is the checkpoint before the transaction that opened the window.
	hold    cdc.Checkpoint
	mod     *vtModule
	rec     *vtRecord
	pending []*queued
}

func (w *vtWindow) accepts(m *vtModule) bool { return w.mod == m }

func newTracker(schema string, modules []*vtModule) *vtTracker {
	t := &vtTracker{schema: schema, modules: map[string]*vtModule{}, roles: map[string]*vtModule{},
		windows: map[string]*vtWindow{}, labels: map[string]any{}}
	for _, m := range modules {
		t.modules[m.module] = m
		for _, tb := range m.tables()[1:] {
			t.roles[tb] = m
		}
	}
	return t
}

// track adds a change on a Vtiger table to its record's window (opening it
// at the transaction's commit time ts when open is set) and returns the
// window, or nil when the change is not on a tracked record.
func (t *vtTracker) track(ch *cdc.Change, ts time.Time, last cdc.Checkpoint, open bool) *vtWindow {
	if t.schema != "" && ch.Schema != t.schema {
		return nil
	}
	img := ch.Image()
	var m *vtModule
	idCol := ""
	if ch.Table == crmentity {
		if id, ok := crmidOf(img["crmid"]); ok && ch.Op != cdc.OpDelete {
			if len(t.labels) >= maxLabels {
				clear(t.labels)
			}
			t.labels[ch.Schema+":"+strconv.FormatInt(id, 10)] = img["label"]
		}
		st, _ := img["setype"].(string)
		if m = t.modules[st]; m == nil {
			return nil
		}
		idCol = "crmid"
	} else {
		if m = t.roles[ch.Table]; m == nil {
			return nil
		}
		idCol = m.keyColumn(ch.Table)
	}
	id, ok := crmidOf(img[idCol])
	if !ok {
		return nil
	}
	key := ch.Schema + ":" + strconv.FormatInt(id, 10)
	w := t.windows[key]
	if w == nil && !open {
		return nil
	}
	if w == nil {
		w = &vtWindow{key: key, opened: ts, hold: last, mod: m,
			rec: &vtRecord{schema: ch.Schema, crmid: id, rows: map[string]*vtRow{}}}
		t.windows[key] = w
		t.order = append(t.order, w)
	}
	if w.mod != m {
		return nil
	}
	cols := ch.Columns
	if len(cols) == 0 {
		cols = sortedKeys(img)
	}
	w.rec.rows[ch.Table] = &vtRow{cols: cols, vals: img}
	switch {
	case ch.Op == cdc.OpInsert && (ch.Table == crmentity || ch.Table == m.table):
		w.rec.created = true
	case ch.Op == cdc.OpDelete && (ch.Table == crmentity || ch.Table == m.table):
		w.rec.removed = true
	}
	return w
}

func sortedKeys(r cdc.Row) []string {
	out := make([]string, 0, len(r))
	for k := range r {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// complete fills the record's tables the window did not see from the
// source (as of now, not as of the event: documented), and sets the name
// resolvers.
func (e *Engine) complete(ctx context.Context, rec *vtRecord, m *vtModule) error {
	rec.names = e.nameOf
	rec.owner = e.ownerName
	if e.source == nil {
		return nil
	}
	for _, tb := range m.tables() {
		if rec.rows[tb] != nil || !e.existing[rec.schema+"."+tb] {
			continue
		}
		row, err := e.fetchRow(ctx, rec.schema, tb, m.keyColumn(tb), rec.crmid)
		if err != nil {
			return err
		}
		if row != nil {
			rec.rows[tb] = row
		}
	}
	return nil
}

func (e *Engine) fetchRow(ctx context.Context, schema, table, keyCol string, id int64) (*vtRow, error) {
	rows, err := e.source.QueryContext(ctx, "/* rowhook */ SELECT * FROM "+qualified(schema, table)+" WHERE "+quoteIdent(keyCol)+" = ?", id)
	if err != nil {
		return nil, errorf("rules: read "+schema+"."+table, err)
	}
	cols, vals, err := scanRows(rows, 1)
	if err != nil {
		return nil, errorf("rules: read "+schema+"."+table, err)
	}
	if len(vals) == 0 {
		return nil, nil
	}
	return &vtRow{cols: cols, vals: vals[0]}, nil
}

// nameOf returns the display name (crmentity label) of record id: from an
// open window, the labels seen in the stream, or the source. Called with
// e.mu held.
func (e *Engine) nameOf(ctx context.Context, schema string, id any) any {
	n, ok := crmidOf(id)
	if !ok || n == 0 {
		return nil
	}
	key := schema + ":" + strconv.FormatInt(n, 10)
	if e.vt != nil {
		if w := e.vt.windows[key]; w != nil {
			if l := w.rec.get(crmentity, "label"); l != nil {
				return l
			}
		}
		if l, ok := e.vt.labels[key]; ok {
			return l
		}
	}
	return e.sourceName(ctx, schema, id)
}

// sourceName returns record id's label from the source (nil offline).
func (e *Engine) sourceName(ctx context.Context, schema string, id any) any {
	n, ok := crmidOf(id)
	if !ok || n == 0 || e.source == nil || !e.existing[schema+"."+crmentity] {
		return nil
	}
	var label sql.NullString
	err := e.source.QueryRowContext(ctx, "/* rowhook */ SELECT label FROM "+qualified(schema, crmentity)+" WHERE crmid = ?", n).Scan(&label)
	if err != nil {
		if !errors.Is(err, sql.ErrNoRows) {
			e.logger.Warn("look up record label", "crmid", n, "error", err)
		}
		return nil
	}
	if !label.Valid {
		return nil
	}
	return label.String
}

// ownerName returns the user (or group) name of an owner id, from the
// source's vtiger_users / vtiger_groups when they exist.
func (e *Engine) ownerName(ctx context.Context, schema string, id any) any {
	n, ok := crmidOf(id)
	if !ok || e.source == nil {
		return nil
	}
	queries := []struct{ table, q string }{
		{"vtiger_users", "SELECT TRIM(CONCAT(COALESCE(first_name,''),' ',COALESCE(last_name,''))) FROM %s WHERE id = ?"},
		{"vtiger_groups", "SELECT groupname FROM %s WHERE groupid = ?"},
	}
	for _, x := range queries {
		if !e.existing[schema+"."+x.table] {
			continue
		}
		var name sql.NullString
		err := e.source.QueryRowContext(ctx, "/* rowhook */ "+sprintfTable(x.q, schema, x.table), n).Scan(&name)
		if err == nil && name.Valid {
			return name.String
		}
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			e.logger.Warn("look up owner name", "owner_id", n, "error", err)
		}
	}
	return nil
}

func sprintfTable(q, schema, table string) string {
	out := ""
	for i := 0; i < len(q); i++ {
		if q[i] == '%' && i+1 < len(q) && q[i+1] == 's' {
			out += qualified(schema, table)
			i++
			continue
		}
		out += string(q[i])
	}
	return out
}
