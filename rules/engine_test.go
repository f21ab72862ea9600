package rules

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rowhook/rowhook/cdc"
)

// txBuilder makes transactions as the binlog would: one per statement,
// GTIDs and checkpoints increasing.
type txBuilder struct{ n int }

func (b *txBuilder) tx(ts time.Time, changes ...cdc.Change) *cdc.Transaction {
	b.n++
	gtid := fmt.Sprintf("0-1-%d", b.n)
	for i := range changes {
		c := &changes[i]
		c.Tx, c.GTID, c.Seq, c.Timestamp = gtid, gtid, i, ts
		c.ID = fmt.Sprintf("%s:%d", gtid, i)
		if c.Schema == "" {
			c.Schema = "crm"
		}
	}
	return &cdc.Transaction{ID: gtid, GTID: gtid, Timestamp: ts, Changes: changes,
		Checkpoint: cdc.Checkpoint{Flavor: "mariadb", File: "mysql-bin.000001", Pos: uint32(1000 + b.n*100), GTIDSet: gtid, Timestamp: ts}}
}

func ins(table string, pk string, row cdc.Row) cdc.Change {
	return cdc.Change{Table: table, Op: cdc.OpInsert, After: row, PK: cdc.Row{pk: row[pk]}, PKColumns: []string{pk}, Changed: sortedKeys(row)}
}

func upd(table string, pk string, before, after cdc.Row) cdc.Change {
	var changed []string
	for _, k := range sortedKeys(after) {
		if !looseEqual(before[k], after[k]) || (before[k] == nil) != (after[k] == nil) {
			changed = append(changed, k)
		}
	}
	return cdc.Change{Table: table, Op: cdc.OpUpdate, Before: before, After: after, PK: cdc.Row{pk: after[pk]}, PKColumns: []string{pk}, Changed: changed}
}

func mustEngine(t *testing.T, cfg Config, deps Deps) *Engine {
	t.Helper()
	e, err := New(context.Background(), cfg, deps)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return e
}

func process(t *testing.T, e *Engine, tx *cdc.Transaction) []Event {
	t.Helper()
	evs, err := e.Process(context.Background(), tx)
	if err != nil {
		t.Fatalf("Process %s: %v", tx.ID, err)
	}
	return evs
}

func ids(evs []Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.ID
	}
	return out
}

func TestEngine_ProcessImmediate(t *testing.T) {
	cfg := Config{Rules: []RuleConfig{
		{Name: "big-deal", Table: "crm.deals", On: []string{"insert", "update"}, When: `row.amount > 1000`, Event: "RowChanged", Webhooks: []string{"erp"}, Once: true},
		{Name: "any-delete", Table: "deals", On: []string{"delete"}, Event: "RowChanged"},
		{Name: "glob", Table: "crm.deal*", On: []string{"update"}, When: `changed("stage")`, Event: "RowChanged"},
		{Name: "other-table", Table: "crm.accounts", Event: "RowChanged"},
	}}
	e := mustEngine(t, cfg, Deps{})
	var b txBuilder
	t0 := time.Date(2026, 1, 15, 10, 0, 0, 0, time.UTC)
	evs := process(t, e, b.tx(t0, ins("deals", "id", cdc.Row{"id": int64(1), "amount": cdc.Decimal("1500.00"), "stage": "new"}),
		ins("deals", "id", cdc.Row{"id": int64(2), "amount": cdc.Decimal("10.00"), "stage": "new"})))
	if got, want := strings.Join(ids(evs), " "), "0-1-1:0:big-deal"; got != want {
		t.Fatalf("events %q, want %q", got, want)
	}
	ev := evs[0]
	if ev.Name != "RowChanged" || ev.Rule != "big-deal" || !ev.Once || ev.Key != "crm.deals:1" || ev.Webhooks[0] != "erp" || !ev.Timestamp.Equal(t0) {
		t.Errorf("event fields: %+v", ev)
	}
	js, _ := json.Marshal(ev.Body)
	want := `{"op":"insert","schema":"crm","table":"deals","key":{"id":1},"changed":["amount","id","stage"],"before":null,"after":{"amount":"1500.00","id":1,"stage":"new"},"committed_at":"2026-01-15T10:00:00Z","gtid":"0-1-1"}`
	if string(js) != want {
		t.Errorf("body\n got %s\nwant %s", js, want)
	}
	evs = process(t, e, b.tx(t0.Add(time.Second),
		upd("deals", "id", cdc.Row{"id": int64(2), "amount": cdc.Decimal("10.00"), "stage": "new"}, cdc.Row{"id": int64(2), "amount": cdc.Decimal("10.00"), "stage": "won"}),
		cdc.Change{Table: "deals", Op: cdc.OpDelete, Before: cdc.Row{"id": int64(1)}, PK: cdc.Row{"id": int64(1)}, PKColumns: []string{"id"}}))
	if got, want := strings.Join(ids(evs), " "), "0-1-2:0:glob 0-1-2:1:any-delete"; got != want {
		t.Fatalf("events %q, want %q", got, want)
	}
	// Writeback's own statements never fire rules.
	own := upd("deals", "id", cdc.Row{"id": int64(2), "amount": cdc.Decimal("10.00"), "stage": "won"}, cdc.Row{"id": int64(2), "amount": cdc.Decimal("5000.00"), "stage": "won"})
	own.Annotation = "UPDATE deals SET amount = 5000 WHERE id = 2 " + cdc.WritebackTag + " rule=x */"
	if evs := process(t, e, b.tx(t0.Add(2*time.Second), own)); len(evs) != 0 {
		t.Errorf("writeback change fired %v", ids(evs))
	}
	if _, held := e.Hold(); held {
		t.Error("Hold reports a held window without any Vtiger rule")
	}
}

func TestEngine_SkipHook(t *testing.T) {
	cfg := Config{Rules: []RuleConfig{{Name: "r", Table: "crm.deals", Event: "RowChanged"}}}
	e := mustEngine(t, cfg, Deps{Skip: func(c *cdc.Change) bool { return c.After["id"] == int64(7) }})
	var b txBuilder
	evs := process(t, e, b.tx(at, ins("deals", "id", cdc.Row{"id": int64(7)}), ins("deals", "id", cdc.Row{"id": int64(8)})))
	if got := strings.Join(ids(evs), " "); got != "0-1-1:1:r" {
		t.Errorf("events %q", got)
	}
}

func TestEngine_ConditionRuntimeErrorDoesNotFire(t *testing.T) {
	cfg := Config{Rules: []RuleConfig{{Name: "r", Table: "crm.deals", When: `row.name > 5`, Event: "RowChanged"}}}
	e := mustEngine(t, cfg, Deps{})
	var b txBuilder
	if evs := process(t, e, b.tx(at, ins("deals", "id", cdc.Row{"id": int64(1), "name": "x"}))); len(evs) != 0 {
		t.Errorf("fired on a failing condition: %v", ids(evs))
	}
}

// vtigerCreate returns the changes Vtiger's create of opportunity id makes,
// one transaction each (see internal/vtiger/create_potential.sql).
func vtigerCreate(id int64, now string) []cdc.Change {
	ent := cdc.Row{"crmid": id, "smcreatorid": int64(1), "smownerid": int64(1), "modifiedby": int64(1), "setype": "Potentials",
		"description": "Inbound via website", "createdtime": now, "modifiedtime": now, "deleted": int64(0), "smgroupid": int64(0),
		"source": "WEBSERVICE", "label": "Acme - 500 seats"}
	pot := cdc.Row{"potentialid": id, "potential_no": "POT1", "related_to": int64(2), "potentialname": "Acme - 500 seats",
		"amount": cdc.Decimal("25000.00000000"), "sales_stage": "Prospecting", "forecast_amount": cdc.Decimal("0.00000000")}
	pot2 := cdc.Row{}
	for k, v := range pot {
		pot2[k] = v
	}
	pot2["forecast_amount"] = cdc.Decimal("2500.00000000")
	return []cdc.Change{
		ins("vtiger_crmentity", "crmid", ent),
		ins("vtiger_potential", "potentialid", pot),
		ins("vtiger_potentialscf", "potentialid", cdc.Row{"potentialid": id, "cf_856": ""}),
		upd("vtiger_potential", "potentialid", pot, pot2),
	}
}

var vtigerRules = Config{Rules: []RuleConfig{
	{Name: "new-opportunity", Table: "vtiger_potential", On: []string{"insert"}, When: `row.amount > 1000`, Event: "NewOpportunity", Webhooks: []string{"erp"}},
	{Name: "opportunity-updated", Table: "vtiger_potential", On: []string{"update"}, Event: "OpportunityUpdated"},
	{Name: "opportunity-deleted", Table: "vtiger_crmentity", On: []string{"update"}, When: `changedTo("deleted", 1)`, Event: "OpportunityDeleted"},
	{Name: "deal-row", Table: "crm.deals", Event: "RowChanged"},
}}

func TestEngine_VtigerSettle(t *testing.T) {
	e := mustEngine(t, vtigerRules, Deps{})
	start := cdc.Checkpoint{Flavor: "mariadb", File: "mysql-bin.000001", Pos: 900}
	e.Resume(start)
	var b txBuilder
	t0 := time.Date(2026, 1, 15, 10, 0, 0, 0, time.UTC)
	for _, c := range vtigerCreate(3, "2026-01-15 10:00:00") {
		if evs := process(t, e, b.tx(t0, c)); len(evs) != 0 {
			t.Fatalf("event before the settle window closed: %v", ids(evs))
		}
	}
	// An unrelated immediate event waits behind the held one (binlog order).
	if evs := process(t, e, b.tx(t0.Add(time.Second), ins("deals", "id", cdc.Row{"id": int64(1)}))); len(evs) != 0 {
		t.Fatalf("later event overtook a held one: %v", ids(evs))
	}
	if cp, ok := e.Hold(); !ok || cp != start {
		t.Fatalf("Hold = %v %v, want %v true", cp, ok, start)
	}
	// new-opportunity, opportunity-updated (decided at the window's end),
	// deal-row.
	if e.Pending() != 3 {
		t.Errorf("Pending = %d, want 3", e.Pending())
	}
	// Idle: Flush before the window's end releases nothing, after it all.
	if evs, _ := e.Flush(context.Background(), t0.Add(1500*time.Millisecond)); len(evs) != 0 {
		t.Fatalf("early flush released %v", ids(evs))
	}
	evs, err := e.Flush(context.Background(), t0.Add(DefaultSettle))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(ids(evs), " "), "0-1-2:0:new-opportunity 0-1-5:0:deal-row"; got != want {
		t.Fatalf("events %q, want %q (the forecast update inside the creation window is no OpportunityUpdated)", got, want)
	}
	body := evs[0].Body
	for name, want := range map[string]any{"id": int64(3), "label": "Acme - 500 seats", "forecast_amount": cdc.Decimal("2500.00000000"),
		"assigned_user_id": int64(1), "source": "WEBSERVICE", "deleted": false} {
		if got, _ := body.Get(name); got != want {
			t.Errorf("body %s = %#v, want %#v", name, got, want)
		}
	}
	if cf, _ := body.Get("custom_fields"); fmt.Sprint(cf) != "[{cf_856 }]" {
		t.Errorf("custom_fields = %v", cf)
	}
	if evs[0].Key != "crm.vtiger_potential:3" {
		t.Errorf("key %q", evs[0].Key)
	}
	if _, ok := e.Hold(); ok {
		t.Error("Hold still reports a window after all closed")
	}
}

func TestEngine_VtigerWindowClosedByLaterCommit(t *testing.T) {
	e := mustEngine(t, vtigerRules, Deps{})
	var b txBuilder
	t0 := time.Date(2026, 1, 15, 10, 0, 0, 0, time.UTC)
	for _, c := range vtigerCreate(3, "2026-01-15 10:00:00") {
		process(t, e, b.tx(t0, c))
	}
	before := vtigerCreate(3, "")[3].After
	after := cdc.Row{}
	for k, v := range before {
		after[k] = v
	}
	after["sales_stage"] = "Negotiation or Review"
	// A commit at open+settle closes the creation window and is not part of
	// it: it opens the record's next window.
	evs := process(t, e, b.tx(t0.Add(DefaultSettle), upd("vtiger_potential", "potentialid", before, after)))
	if got := strings.Join(ids(evs), " "); got != "0-1-2:0:new-opportunity" {
		t.Fatalf("events %q", got)
	}
	if v, _ := evs[0].Body.Get("sales_stage"); v != "Prospecting" {
		t.Errorf("NewOpportunity body shows a later change: sales_stage %v", v)
	}
	cp, ok := e.Hold()
	if !ok || cp.Pos != 1000+4*100 {
		t.Errorf("Hold = %v %v, want the checkpoint of tx 4", cp, ok)
	}
	evs, _ = e.Flush(context.Background(), t0.Add(2*DefaultSettle))
	if got := strings.Join(ids(evs), " "); got != "0-1-5:0:opportunity-updated" {
		t.Fatalf("events %q", got)
	}
	if v, _ := evs[0].Body.Get("sales_stage"); v != "Negotiation or Review" {
		t.Errorf("sales_stage %v", v)
	}
}

func TestEngine_VtigerSoftDeleteInWindow(t *testing.T) {
	e := mustEngine(t, vtigerRules, Deps{})
	var b txBuilder
	t0 := time.Date(2026, 1, 15, 10, 0, 0, 0, time.UTC)
	cs := vtigerCreate(3, "2026-01-15 10:00:00")
	for _, c := range cs {
		process(t, e, b.tx(t0, c))
	}
	ent := cs[0].After
	del := cdc.Row{}
	for k, v := range ent {
		del[k] = v
	}
	del["deleted"] = int64(1)
	process(t, e, b.tx(t0.Add(time.Second), upd("vtiger_crmentity", "crmid", ent, del)))
	evs, _ := e.Flush(context.Background(), t0.Add(time.Hour))
	if len(evs) != 0 {
		t.Errorf("a record deleted inside its creation window produced %v", ids(evs))
	}
	// A later soft delete is an OpportunityDeleted.
	e2 := mustEngine(t, vtigerRules, Deps{})
	process(t, e2, b.tx(t0, upd("vtiger_crmentity", "crmid", ent, del)))
	evs, _ = e2.Flush(context.Background(), t0.Add(time.Hour))
	if len(evs) != 1 || evs[0].Name != "OpportunityDeleted" {
		t.Fatalf("events %v", ids(evs))
	}
	if d, _ := evs[0].Body.Get("deleted"); d != true {
		t.Errorf("deleted = %v", d)
	}
}

func TestNew_Errors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"unknown body", Config{Rules: []RuleConfig{{Name: "r", Table: "t", Event: "NewOportunity"}}},
			`rules[0].event: unknown body function "NewOportunity" (did you mean "NewOpportunity"?)`},
		{"bad op", Config{Rules: []RuleConfig{{Name: "r", Table: "t", On: []string{"upsert"}, Event: "RowChanged"}}},
			`rules[0].on[0]: unknown operation "upsert"`},
		{"duplicate names", Config{Rules: []RuleConfig{{Name: "r", Table: "t", Event: "RowChanged"}, {Name: "r", Table: "t", Event: "RowChanged"}}},
			`rules[1].name: "r" is also the name of rules[0]`},
		{"preset on a foreign table", Config{Rules: []RuleConfig{{Name: "r", Table: "crm.vtiger_account", Event: "NewOpportunity"}}},
			`rules[0].table: the preset builds Potentials records`},
		{"yaml body error", Config{Rules: []RuleConfig{{Name: "r", Table: "t", Event: "Deal"}},
			Bodies: map[string]BodyConfig{"Deal": {Fields: Fields{{Name: "x", Expr: "row.a +"}}}}},
			`bodies.Deal.fields.x: unexpected token EOF`},
		{"lookup without query", Config{Bodies: map[string]BodyConfig{"Deal": {Fields: Fields{{Name: "x", Expr: "lookup.name"}}}}},
			`bodies.Deal.fields.x: uses lookup but bodies.Deal has no lookup query`},
		{"lookup with ?", Config{Bodies: map[string]BodyConfig{"Deal": {Lookup: "SELECT a FROM t WHERE id = ?", Fields: Fields{{Name: "x", Expr: "lookup.a"}}}}},
			`bodies.Deal.lookup: use :column placeholders, not ?`},
		{"lookup not a select", Config{Bodies: map[string]BodyConfig{"Deal": {Lookup: "DELETE FROM t", Fields: Fields{{Name: "x", Expr: "1"}}}}},
			`bodies.Deal.lookup: must be a SELECT query`},
		{"shadowing a builtin", Config{Bodies: map[string]BodyConfig{"RowChanged": {Fields: Fields{{Name: "x", Expr: "1"}}}}},
			`bodies.RowChanged: "RowChanged" is a built-in body function`},
		{"bad timezone", Config{Timezone: "Mars/Olympus"}, `timezone: unknown time zone "Mars/Olympus"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(context.Background(), tt.cfg, Deps{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestParseLookup(t *testing.T) {
	q, params, err := parseLookup("SELECT accountname FROM vtiger_account WHERE accountid = :related_to AND note <> ':nope' AND x = :b2::int")
	if err != nil {
		t.Fatal(err)
	}
	if want := "/* rowhook lookup */ SELECT accountname FROM vtiger_account WHERE accountid = ? AND note <> ':nope' AND x = ?::int"; q != want {
		t.Errorf("query %q, want %q", q, want)
	}
	if strings.Join(params, ",") != "related_to,b2" {
		t.Errorf("params %v", params)
	}
	if _, _, err := parseLookup("SELECT 1; DROP TABLE x"); err == nil {
		t.Error("two statements accepted")
	}
	// Comments are neither placeholders nor quotes, as the doc comment says.
	q, params, err = parseLookup("SELECT a FROM t -- don't use :other here\nWHERE id = :id # or ?")
	if err != nil || strings.Join(params, ",") != "id" || q != "/* rowhook lookup */ SELECT a FROM t -- don't use :other here\nWHERE id = ? # or ?" {
		t.Errorf("with comments: %q %v %v", q, params, err)
	}
	if _, _, err := parseLookup("SELECT 'open"); err == nil || !strings.Contains(err.Error(), "unterminated ' quote") {
		t.Errorf("unterminated quote: %v", err)
	}
}

func TestYAMLBody_Build(t *testing.T) {
	cfg := Config{
		Rules: []RuleConfig{{Name: "r", Table: "crm.vtiger_potential", Event: "CustomDeal"}},
		Bodies: map[string]BodyConfig{"CustomDeal": {
			Lookup: "SELECT accountname FROM vtiger_account WHERE accountid = :related_to",
			Fields: Fields{{Name: "id", Expr: "row.potentialid"}, {Name: "amount", Expr: "row.amount"},
				{Name: "big", Expr: "row.amount > 1000"}, {Name: "account", Expr: "lookup.accountname"}, {Name: "stage_changed", Expr: `changed("sales_stage")`}},
		}},
	}
	e := mustEngine(t, cfg, Deps{})
	f := e.bodies["CustomDeal"]
	ch := potentialUpdate()
	b, err := f.build(context.Background(), &buildInput{change: ch, loc: time.UTC, lookup: map[string]any{"accountname": "Acme Corp"}})
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(b)
	// Fields keep their YAML order; DECIMAL stays exact in bodies.
	if want := `{"id":3,"amount":"25000.00000000","big":true,"account":"Acme Corp","stage_changed":true}`; string(js) != want {
		t.Errorf("body\n got %s\nwant %s", js, want)
	}
}

func TestEngine_BodyFieldErrorAndMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := Config{
		Rules: []RuleConfig{
			{Name: "r", Table: "crm.deals", Event: "Deal"},
			{Name: "bad-cond", Table: "crm.deals", When: `row.name > 5`, Event: "RowChanged"},
		},
		Bodies: map[string]BodyConfig{"Deal": {Fields: Fields{{Name: "id", Expr: "row.id"}, {Name: "broken", Expr: "row.name * 2"}}}},
	}
	e := mustEngine(t, cfg, Deps{Registerer: reg})
	var b txBuilder
	evs := process(t, e, b.tx(at, ins("deals", "id", cdc.Row{"id": int64(1), "name": "x"})))
	if len(evs) != 1 {
		t.Fatalf("events %v", ids(evs))
	}
	js, _ := json.Marshal(evs[0].Body)
	if string(js) != `{"id":1,"broken":null}` {
		t.Errorf("body %s", js)
	}
	for name, want := range map[string]float64{
		"rowhook_rule_events_total":            1,
		"rowhook_rule_body_field_errors_total": 1,
		"rowhook_rule_condition_errors_total":  1,
		"rowhook_rule_held_events":             0,
	} {
		if got := gathered(t, reg, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}

// gathered sums a metric family's values.
func gathered(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

// A crash while records are held loses nothing: resuming from Hold's
// checkpoint replays the held changes and gives the same event ids.
func TestEngine_HoldResumeAfterCrash(t *testing.T) {
	var b txBuilder
	t0 := time.Date(2026, 1, 15, 10, 0, 0, 0, time.UTC)
	var txs []*cdc.Transaction
	txs = append(txs, b.tx(t0.Add(-time.Minute), ins("deals", "id", cdc.Row{"id": int64(1)})))
	for _, c := range vtigerCreate(3, "2026-01-15 10:00:00") {
		txs = append(txs, b.tx(t0, c))
	}
	txs = append(txs, b.tx(t0.Add(time.Second), ins("deals", "id", cdc.Row{"id": int64(2)})))
	txs = append(txs, b.tx(t0.Add(10*time.Second), ins("deals", "id", cdc.Row{"id": int64(3)})))

	// The uninterrupted run.
	full := mustEngine(t, vtigerRules, Deps{})
	var want []string
	for _, tx := range txs {
		want = append(want, ids(process(t, full, tx))...)
	}
	// A run that crashes after tx 6: whatever it returned was enqueued,
	// and the checkpoint stored with it is Hold's.
	first := mustEngine(t, vtigerRules, Deps{})
	var got []string
	var resume cdc.Checkpoint
	for _, tx := range txs[:6] {
		got = append(got, ids(process(t, first, tx))...)
		resume = tx.Checkpoint
		if cp, held := first.Hold(); held {
			resume = cp
		}
	}
	if resume != txs[0].Checkpoint {
		t.Fatalf("Hold = %v, want the checkpoint before the window (%v)", resume, txs[0].Checkpoint)
	}
	// The restart reads again from the stored checkpoint.
	second := mustEngine(t, vtigerRules, Deps{})
	second.Resume(resume)
	seen := map[string]bool{}
	for _, id := range got {
		seen[id] = true
	}
	for _, tx := range txs {
		if tx.Checkpoint.Pos <= resume.Pos {
			continue
		}
		for _, id := range ids(process(t, second, tx)) {
			if !seen[id] { // the queue refuses duplicates
				seen[id] = true
				got = append(got, id)
			}
		}
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("after the crash: %v\nuninterrupted:    %v", got, want)
	}
}

// rowhook's own writeback fires no rule but shows in a record still
// being collected.
func TestEngine_VtigerWritebackInWindow(t *testing.T) {
	e := mustEngine(t, vtigerRules, Deps{})
	var b txBuilder
	t0 := time.Date(2026, 1, 15, 10, 0, 0, 0, time.UTC)
	cs := vtigerCreate(3, "2026-01-15 10:00:00")
	for _, c := range cs {
		process(t, e, b.tx(t0, c))
	}
	wb := upd("vtiger_potentialscf", "potentialid", cdc.Row{"potentialid": int64(3), "cf_856": ""}, cdc.Row{"potentialid": int64(3), "cf_856": "ERP-42"})
	wb.Annotation = "UPDATE vtiger_potentialscf SET cf_856 = 'ERP-42' WHERE potentialid = 3 " + cdc.WritebackTag + " */"
	process(t, e, b.tx(t0.Add(time.Second), wb))
	evs, _ := e.Flush(context.Background(), t0.Add(time.Hour))
	if got := strings.Join(ids(evs), " "); got != "0-1-2:0:new-opportunity" {
		t.Fatalf("events %q", got)
	}
	if cf, _ := evs[0].Body.Get("custom_fields"); fmt.Sprint(cf) != "[{cf_856 ERP-42}]" {
		t.Errorf("custom_fields %v", cf)
	}
	// Outside a window it opens none (nothing is held for it).
	process(t, e, b.tx(t0.Add(2*time.Hour), wb))
	if _, held := e.Hold(); held {
		t.Error("a writeback change opened a settle window")
	}
}

func TestRecordKey_MatchesChangeKey(t *testing.T) {
	for _, c := range []*cdc.Change{
		{Schema: "crm", Table: "t", PKColumns: []string{"id"}, PK: cdc.Row{"id": int64(-7)}},
		{Schema: "crm", Table: "t", PKColumns: []string{"a", "b"}, PK: cdc.Row{"a": uint64(1 << 63), "b": "x y"}},
		{Schema: "crm", Table: "t", PKColumns: []string{"d"}, PK: cdc.Row{"d": cdc.Decimal("1.50")}},
		{Schema: "crm", Table: "nopk"},
	} {
		if got, want := recordKey(c), c.Key(); got != want {
			t.Errorf("recordKey %q, Key %q", got, want)
		}
	}
}
