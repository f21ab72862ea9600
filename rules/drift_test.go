package rules

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rowhook/rowhook/cdc"
)

func TestColumnsRead(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want []string
	}{
		{`row.a`, []string{"a"}},
		{`row.a + old.b * row.a`, []string{"a", "b"}},
		{`row["c"] ?? "x"`, []string{"c"}},
		{`upper(row.d) + lookup.name`, []string{"d"}},
		{`row?.e`, nil},
		{`op == "insert" ? row.f : old.g`, []string{"f", "g"}},
		{`now`, nil},
	} {
		if got := columnsRead(tc.src); !slices.Equal(got, tc.want) {
			t.Errorf("columnsRead(%q) = %q, want %q", tc.src, got, tc.want)
		}
	}
}

// lockedBuffer is a log destination safe for concurrent use.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) lines(substr string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range strings.Split(l.b.String(), "\n") {
		if strings.Contains(line, substr) {
			out = append(out, line)
		}
	}
	return out
}

// A column renamed on the source under a running rule: the body field that
// reads the old name is null from then on. The engine says so once per
// table version, naming rule, field and column, and counts every event
// sent with that null; a nullable column that is NULL, old.x on an insert
// and an optional row?.x are not drift.
func TestEngine_RenamedColumnIsLoud(t *testing.T) {
	ctx := context.Background()
	schema, db := srv.NewSchema(t)
	exec := func(q string) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec("CREATE TABLE deals (id INT PRIMARY KEY, name VARCHAR(80), note VARCHAR(80) NULL)")
	file, pos := masterStatus(t, db)

	exec("INSERT INTO deals (id, name) VALUES (1, 'Acme')")
	exec("ALTER TABLE deals RENAME COLUMN name TO full_name")
	exec("INSERT INTO deals (id, full_name) VALUES (2, 'Globex')")
	exec("INSERT INTO deals (id, full_name) VALUES (3, 'Initech')")
	exec("INSERT INTO deals (id, full_name) VALUES (4, 'Umbrella')")
	// Another ALTER is another table version: said once more.
	exec("ALTER TABLE deals ADD COLUMN stage VARCHAR(20)")
	exec("INSERT INTO deals (id, full_name) VALUES (5, 'Hooli')")
	exec("INSERT INTO deals (id, full_name) VALUES (6, 'Soylent')")
	// Renamed back: nothing to say.
	exec("ALTER TABLE deals RENAME COLUMN full_name TO name")
	exec("INSERT INTO deals (id, name) VALUES (7, 'Wonka')")

	reg := prometheus.NewRegistry()
	logs := &lockedBuffer{}
	cfg := Config{
		Rules: []RuleConfig{
			{Name: "deal-created", Table: schema + ".deals", On: []string{"insert"}, Event: "Deal"},
			{Name: "deal-raw", Table: schema + ".deals", On: []string{"insert"}, Event: "RowChanged"},
		},
		Bodies: map[string]BodyConfig{"Deal": {Fields: Fields{
			{Name: "id", Expr: "row.id"},
			{Name: "customer", Expr: "row.name"},
			{Name: "note", Expr: "row.note"},
			{Name: "previous", Expr: "old.note"},
			{Name: "maybe", Expr: "row?.stage"},
		}}},
	}
	// Source set: the columns are checked at start, when name exists.
	e := mustEngine(t, cfg, Deps{Source: db, Registerer: reg, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	files, err := filepath.Glob(filepath.Join(srv.Dir, "binlog", "mysql-bin.[0-9]*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("binlog files: %v %v", files, err)
	}
	var events []Event
	err = cdc.ReadFiles(ctx, files, cdc.DecoderConfig{Flavor: "mariadb", Filter: cdc.NewFilter([]string{schema + ".*"}, nil)},
		cdc.FileRange{FromFile: file, From: pos}, func(tx *cdc.Transaction) error {
			evs, err := e.Process(ctx, tx)
			events = append(events, evs...)
			return err
		}, nil)
	if err != nil {
		t.Fatal(err)
	}

	var customers []any
	for _, ev := range events {
		if ev.Rule != "deal-created" {
			continue
		}
		v, _ := ev.Body.Get("customer")
		customers = append(customers, v)
		if v, _ := ev.Body.Get("note"); v != nil {
			t.Errorf("note = %v, want null (NULL in the row)", v)
		}
	}
	js, _ := json.Marshal(customers)
	if string(js) != `["Acme",null,null,null,null,null,"Wonka"]` {
		t.Fatalf("customer fields = %s, want the name before the rename and after renaming back, null between", js)
	}

	warnings := logs.lines("column the table does not have")
	if len(warnings) != 2 {
		t.Fatalf("%d drift warnings, want 2 (one per table version without the column):\n%s", len(warnings), strings.Join(warnings, "\n"))
	}
	for _, w := range warnings {
		for _, want := range []string{"level=WARN", "rule=deal-created", "field=customer", "column=name", "table=" + schema + ".deals", "table_version="} {
			if !strings.Contains(w, want) {
				t.Errorf("warning lacks %q: %s", want, w)
			}
		}
		for _, wrong := range []string{"field=note", "field=previous", "field=maybe", "rule=deal-raw"} {
			if strings.Contains(w, wrong) {
				t.Errorf("false positive %q: %s", wrong, w)
			}
		}
	}
	if warnings[0] == warnings[1] || versionOf(warnings[0]) == versionOf(warnings[1]) {
		t.Errorf("the two warnings name the same table version:\n%s\n%s", warnings[0], warnings[1])
	}
	// One count per event sent with the null field: ids 2 to 6.
	if got := gatheredLabel(t, reg, "rowhook_rule_body_field_errors_total", "deal-created"); got != 5 {
		t.Errorf("rowhook_rule_body_field_errors_total{rule=deal-created} = %v, want 5", got)
	}
	if got := gatheredLabel(t, reg, "rowhook_rule_body_field_errors_total", "deal-raw"); got != 0 {
		t.Errorf("rowhook_rule_body_field_errors_total{rule=deal-raw} = %v, want 0", got)
	}
}

func versionOf(line string) string {
	_, v, _ := strings.Cut(line, "table_version=")
	v, _, _ = strings.Cut(v, " ")
	return v
}

// gatheredLabel returns the value of a family's series whose rule label is
// rule, or -1 when there is none.
func gatheredLabel(t *testing.T, reg *prometheus.Registry, name, rule string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "rule" && l.GetValue() == rule {
					return m.GetCounter().GetValue() + m.GetGauge().GetValue()
				}
			}
		}
	}
	return -1
}

// Every rule's series exist at 0 before anything happens.
func TestNew_RuleSeriesStartAtZero(t *testing.T) {
	reg := prometheus.NewRegistry()
	mustEngine(t, Config{Rules: []RuleConfig{
		{Name: "quiet", Table: "crm.deals", When: "row.amount > 1", Event: "RowChanged"},
		{Name: "preset", Table: "vtiger_potential", Event: "NewOpportunity"},
	}}, Deps{Registerer: reg})
	for _, name := range []string{"rowhook_rule_events_total", "rowhook_rule_condition_errors_total", "rowhook_rule_body_field_errors_total"} {
		for _, rule := range []string{"quiet", "preset"} {
			if got := gatheredLabel(t, reg, name, rule); got != 0 {
				t.Errorf("%s{rule=%q} = %v, want 0 (present from the start)", name, rule, got)
			}
		}
	}
	if got := gatheredLabel(t, reg, "rowhook_rule_events_dropped_total", "preset"); got != 0 {
		t.Errorf("rowhook_rule_events_dropped_total{rule=preset} = %v, want 0", got)
	}
}

// Two rules sharing one body (built once per change) each warn and count;
// a lookup parameter bound from a missing column is drift of the "lookup"
// field; a change without a column list is not checked.
func TestEngine_DriftSharedBodyAndLookup(t *testing.T) {
	reg := prometheus.NewRegistry()
	logs := &lockedBuffer{}
	cfg := Config{
		Rules: []RuleConfig{
			{Name: "a", Table: "crm.deals", Event: "Deal"},
			{Name: "b", Table: "crm.deals", Event: "Deal"},
			{Name: "c", Table: "crm.deals", Event: "WithAccount"},
		},
		Bodies: map[string]BodyConfig{
			"Deal":        {Fields: Fields{{Name: "id", Expr: "row.id"}, {Name: "customer", Expr: "row.name"}}},
			"WithAccount": {Lookup: "SELECT name FROM crm.accounts WHERE id = :accountid", Fields: Fields{{Name: "id", Expr: "row.id"}, {Name: "account", Expr: "lookup?.name"}}},
		},
	}
	e := mustEngine(t, cfg, Deps{Registerer: reg, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	cols := []string{"id", "full_name", "account"}
	var b txBuilder
	for i := int64(1); i <= 3; i++ {
		ch := ins("deals", "id", cdc.Row{"id": i, "full_name": "x", "account": int64(7)})
		ch.Columns = cols
		if evs := process(t, e, b.tx(at, ch)); len(evs) != 3 {
			t.Fatalf("events %v", ids(evs))
		}
	}
	// Built by hand, without columns: not checked.
	process(t, e, b.tx(at, ins("deals", "id", cdc.Row{"id": int64(9)})))

	warnings := logs.lines("column the table does not have")
	var got []string
	for _, w := range warnings {
		_, r, _ := strings.Cut(w, " rule=")
		r, _, _ = strings.Cut(r, " ")
		_, f, _ := strings.Cut(w, " field=")
		f, _, _ = strings.Cut(f, " ")
		_, c, _ := strings.Cut(w, " column=")
		c, _, _ = strings.Cut(c, " ")
		got = append(got, r+"/"+f+"/"+c)
	}
	slices.Sort(got)
	if want := []string{"a/customer/name", "b/customer/name", "c/lookup/accountid"}; !slices.Equal(got, want) {
		t.Errorf("warnings %q, want %q", got, want)
	}
	for _, r := range []string{"a", "b", "c"} {
		if n := gatheredLabel(t, reg, "rowhook_rule_body_field_errors_total", r); n != 3 {
			t.Errorf("rowhook_rule_body_field_errors_total{rule=%s} = %v, want 3", r, n)
		}
	}
}
