package rules

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rowhook/rowhook/cdc"
)

// Sample limits for the perform list.
const (
	defaultSampleLimit = 3
	maxSampleLimit     = 100
)

// SampleHandler serves GET /events/{name}/sample?limit=N: the bodies the
// event's body function builds from the N most recent records of the table
// of the first rule that uses it (the "perform list" of Zapier-like tools).
// The bodies come from the source as it is now; conditions are not applied.
// They are CRM records: the handler does no authentication of its own, so
// mount it behind the admin token (cmd/rowhook mounts it as a protected
// route).
func (e *Engine) SampleHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /events/{name}/sample", func(w http.ResponseWriter, r *http.Request) {
		limit := defaultSampleLimit
		if s := r.URL.Query().Get("limit"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 || n > maxSampleLimit {
				writeJSONError(w, http.StatusBadRequest, fmt.Sprintf("limit must be a number from 1 to %d", maxSampleLimit))
				return
			}
			limit = n
		}
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		bodies, err := e.Sample(ctx, r.PathValue("name"), limit)
		switch {
		case errors.Is(err, ErrUnknownEvent):
			writeJSONError(w, http.StatusNotFound, err.Error())
			return
		case errors.Is(err, ErrNoSource):
			writeJSONError(w, http.StatusServiceUnavailable, err.Error())
			return
		case err != nil:
			e.logger.Error("perform list", "event", r.PathValue("name"), "error", err)
			writeJSONError(w, http.StatusInternalServerError, "could not read sample records from the source (see rowhook's log)")
			return
		}
		if bodies == nil {
			bodies = []Body{}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(bodies)
	})
	return mux
}

func writeJSONError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// Sample builds the bodies of event name from the limit most recent records
// (newest first) of its first rule's table.
func (e *Engine) Sample(ctx context.Context, name string, limit int) ([]Body, error) {
	var r *rule
	for _, x := range e.rules {
		if x.body.name == name {
			r = x
			break
		}
	}
	if r == nil {
		return nil, fmt.Errorf("%w %q: no rule has event: %s", ErrUnknownEvent, name, name)
	}
	if e.source == nil {
		return nil, ErrNoSource
	}
	if m := r.body.vtiger; m != nil {
		return e.sampleVtiger(ctx, r, m, limit)
	}
	schema, table, err := e.sampleTable(r, r.cfg.Table)
	if err != nil {
		return nil, err
	}
	pk, err := e.primaryKey(ctx, schema, table)
	if err != nil {
		return nil, err
	}
	q := "/* rowhook sample */ SELECT * FROM " + qualified(schema, table)
	if len(pk) > 0 {
		var ord []string
		for _, c := range pk {
			ord = append(ord, quoteIdent(c)+" DESC")
		}
		q += " ORDER BY " + strings.Join(ord, ", ")
	}
	rows, err := e.source.QueryContext(ctx, q+" LIMIT ?", limit)
	if err != nil {
		return nil, fmt.Errorf("rules: sample %s.%s: %w", schema, table, err)
	}
	cols, vals, err := scanRows(rows, 0)
	if err != nil {
		return nil, fmt.Errorf("rules: sample %s.%s: %w", schema, table, err)
	}
	out := make([]Body, 0, len(vals))
	for _, v := range vals {
		ch := sampleChange(schema, table, cols, pk, v, e.now())
		b, err := r.body.build(ctx, &buildInput{change: ch, source: e.source, loc: e.loc})
		var fe *FieldError
		if err != nil && !errors.As(err, &fe) {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// sampleTable resolves a rule's table pattern to one existing table.
func (e *Engine) sampleTable(r *rule, pattern string) (string, string, error) {
	if strings.ContainsAny(pattern, "*?[") {
		return "", "", fmt.Errorf("%w %q: rule %s reads a table pattern (%s); the perform list needs a rule on one table",
			ErrUnknownEvent, r.body.name, r.cfg.Name, pattern)
	}
	if i := strings.IndexByte(pattern, '.'); i >= 0 {
		return pattern[:i], pattern[i+1:], nil
	}
	var found []string
	for k := range e.existing {
		if strings.HasSuffix(k, "."+pattern) {
			found = append(found, k[:len(k)-len(pattern)-1])
		}
	}
	if len(found) != 1 {
		return "", "", fmt.Errorf("rules: table %s is in %d schemas on the source; write schema.table in rule %s", pattern, len(found), r.cfg.Name)
	}
	return found[0], pattern, nil
}

func (e *Engine) primaryKey(ctx context.Context, schema, table string) ([]string, error) {
	rows, err := e.source.QueryContext(ctx, `/* rowhook */ SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE
WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION`, schema, table)
	if err != nil {
		return nil, fmt.Errorf("rules: primary key of %s.%s: %w", schema, table, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// sampleChange presents a current row as the insert that created it.
func sampleChange(schema, table string, cols, pk []string, row cdc.Row, now time.Time) *cdc.Change {
	ch := &cdc.Change{Schema: schema, Table: table, Op: cdc.OpInsert, After: row, Columns: cols,
		Changed: cols, PKColumns: pk, PK: cdc.Row{}, Timestamp: now.UTC().Truncate(time.Second)}
	for _, c := range pk {
		ch.PK[c] = row[c]
	}
	ch.ID = "sample:" + ch.Key()
	return ch
}

func (e *Engine) sampleVtiger(ctx context.Context, r *rule, m *vtModule, limit int) ([]Body, error) {
	schema := e.cfg.Vtiger.Schema
	if schema == "" {
		s, _, err := e.sampleTable(r, r.cfg.Table)
		if err != nil {
			if s, _, err = e.sampleTable(r, m.table); err != nil {
				return nil, err
			}
		}
		schema = s
	}
	q := "/* rowhook sample */ SELECT crmid FROM " + qualified(schema, crmentity) + " WHERE setype = ? AND deleted = ?"
	deleted := 0
	if r.body.kind == kindDeleted {
		deleted = 1
	}
	rows, err := e.source.QueryContext(ctx, q+" ORDER BY crmid DESC LIMIT ?", m.module, deleted, limit)
	if err != nil {
		return nil, fmt.Errorf("rules: sample %s: %w", m.module, err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]Body, 0, len(ids))
	for _, id := range ids {
		rec := &vtRecord{schema: schema, crmid: id, rows: map[string]*vtRow{}}
		if err := e.complete(ctx, rec, m); err != nil {
			return nil, err
		}
		rec.names = e.sourceName // the stream's state belongs to Process
		main := rec.rows[m.table]
		if main == nil {
			continue
		}
		ch := sampleChange(schema, m.table, main.cols, []string{m.pk}, main.vals, e.now())
		b, err := r.body.build(ctx, &buildInput{change: ch, record: rec, module: m, source: e.source, loc: e.loc})
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}
