package rules

import (
	"context"
	"testing"
	"time"

	"github.com/rowhook/rowhook/cdc"
)

// FuzzRuleCompile feeds arbitrary conditions and body field expressions to
// the rule compiler (as `rowhook check` and `rowhook run` do) and runs what
// compiles over an insert, an update and a delete. Errors are fine; panics
// are not, and a rule that compiles must evaluate without crashing.
func FuzzRuleCompile(f *testing.F) {
	seeds := [][2]string{
		{`row.amount > 1000 && row.sales_stage != "Closed Lost"`, `row.potentialid`},
		{`changed("amount") && changedFrom("sales_stage", "Prospecting")`, `old.amount`},
		{`changedTo("sales_stage", "Closed Won")`, `{"id": row.potentialid, "n": row.potentialname}`},
		{`isEmpty(row.nextstep) || contains(row.potentialname, "Acme")`, `upper(row.potentialname)`},
		{`startsWith(row.potentialname, "A") && daysAgo(row.closingdate) < 30`, `row.closingdate`},
		{`before(row.closingdate, "2026-01-01") || after(row.closingdate, "2027-01-01")`, `op + ":" + table`},
		{`op == "delete"`, `schema`},
		{`row.amount / 0 > 1`, `row.amount * 1e308 * 10`},
		{`row["potentialname"] matches "^(a+)+$"`, `row.nope`},
		{`let x = row.amount; x > 1`, `[row.amount, old.amount, nil]`},
		{`len(row) > 2`, `toJSON(row)`},
		{``, ``},
		{`1`, `"`},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1])
	}
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	before := cdc.Row{"potentialid": int64(7), "potentialname": "Acme", "amount": cdc.Decimal("1500.00"),
		"sales_stage": "Prospecting", "nextstep": "", "closingdate": "2026-12-01"}
	after := cdc.Row{"potentialid": int64(7), "potentialname": "Acme ☃", "amount": cdc.Decimal("2500.50"),
		"sales_stage": "Closed Won", "nextstep": nil, "closingdate": "2026-12-24"}
	f.Fuzz(func(t *testing.T, when, field string) {
		if len(when) > 512 || len(field) > 512 {
			return
		}
		cfg := Config{
			Rules: []RuleConfig{{Name: "r", Table: "crm.vtiger_potential", On: []string{"insert", "update", "delete"},
				When: when, Event: "Fuzz", Webhooks: []string{"w"}}},
			Bodies: map[string]BodyConfig{"Fuzz": {Fields: Fields{{Name: "f", Expr: field}}}},
		}
		if cfg.Validate() != nil {
			return
		}
		e, err := New(context.Background(), cfg, Deps{})
		if err != nil {
			return
		}
		var b txBuilder
		for _, ch := range []cdc.Change{
			ins("vtiger_potential", "potentialid", after),
			upd("vtiger_potential", "potentialid", before, after),
			{Table: "vtiger_potential", Op: cdc.OpDelete, Before: before, PK: cdc.Row{"potentialid": int64(7)}, PKColumns: []string{"potentialid"}},
		} {
			_, _ = e.Process(context.Background(), b.tx(now, ch))
		}
	})
}

// The fuzzer's seeds must reach evaluation: the well-formed ones compile
// and fire.
func TestFuzzRuleCompileSeedsCompile(t *testing.T) {
	cfg := Config{
		Rules: []RuleConfig{{Name: "r", Table: "crm.vtiger_potential", On: []string{"update"},
			When: `changedTo("sales_stage", "Closed Won") && row.amount > 1000`, Event: "Fuzz", Webhooks: []string{"w"}}},
		Bodies: map[string]BodyConfig{"Fuzz": {Fields: Fields{{Name: "f", Expr: `{"id": row.potentialid, "n": row.potentialname}`}}}},
	}
	e := mustEngine(t, cfg, Deps{})
	var b txBuilder
	before := cdc.Row{"potentialid": int64(7), "potentialname": "Acme", "amount": cdc.Decimal("1500.00"), "sales_stage": "Prospecting"}
	after := cdc.Row{"potentialid": int64(7), "potentialname": "Acme", "amount": cdc.Decimal("2500.50"), "sales_stage": "Closed Won"}
	evs := process(t, e, b.tx(time.Now(), upd("vtiger_potential", "potentialid", before, after)))
	if len(evs) != 1 {
		t.Fatalf("%d events, want 1", len(evs))
	}
}
