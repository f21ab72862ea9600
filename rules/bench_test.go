package rules

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/expr-lang/expr/vm"

	"github.com/rowhook/rowhook/cdc"
)

// BenchmarkEngine_Process measures one row change through Process with
// 1, 100 and 10,000 rules configured, of which `matching` are on the
// changed table (the rest on other tables, exact names and globs). It
// reports ns per matching rule: the goal is that rules on other tables
// cost nothing and a matching rule (condition + RowChanged body) < 2 µs.
func BenchmarkEngine_Process(b *testing.B) {
	for _, total := range []int{1, 100, 10000} {
		for _, matching := range []int{1, 10} {
			if matching > total {
				continue
			}
			b.Run(fmt.Sprintf("rules=%d/matching=%d", total, matching), func(b *testing.B) {
				var rules []RuleConfig
				for i := 0; i < total-matching; i++ {
					table := fmt.Sprintf("crm.other_%d", i)
					if i%10 == 9 {
						table = fmt.Sprintf("crm.other_%d_*", i)
					}
					rules = append(rules, RuleConfig{Name: fmt.Sprintf("other-%d", i), Table: table,
						When: `row.amount > 1000 && changed("sales_stage")`, Event: "RowChanged"})
				}
				for i := 0; i < matching; i++ {
					rules = append(rules, RuleConfig{Name: fmt.Sprintf("match-%d", i), Table: "crm.vtiger_potential", On: []string{"update"},
						When:  `row.amount > 1000 && changedTo("sales_stage", "Negotiation or Review") && row.potentialname contains "Acme"`,
						Event: "RowChanged"})
				}
				e, err := New(context.Background(), Config{Rules: rules}, Deps{})
				if err != nil {
					b.Fatal(err)
				}
				ch := *potentialUpdate()
				ch.Columns = []string{"potentialid", "potentialname", "amount", "closingdate", "probability", "sales_stage", "nextstep"}
				tx := &cdc.Transaction{ID: "0-1-7", Timestamp: at, Changes: []cdc.Change{ch}}
				ctx := context.Background()
				b.ReportAllocs()
				b.ResetTimer()
				cpu0 := cpuTime()
				for i := 0; i < b.N; i++ {
					evs, err := e.Process(ctx, tx)
					if err != nil || len(evs) != matching {
						b.Fatalf("%d events, %v", len(evs), err)
					}
				}
				// CPU time (GC included) is steadier than wall time on a
				// shared machine.
				cpu := float64((cpuTime() - cpu0).Nanoseconds()) / float64(b.N)
				b.ReportMetric(cpu, "cpu-ns/op")
				b.ReportMetric(cpu/float64(matching), "cpu-ns/matching-rule")
			})
		}
	}
}

// cpuTime is the process's user + system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkEngine_ProcessOtherTable is a change on a table no rule reads,
// with 10,000 rules configured: the index makes it cost nothing.
func BenchmarkEngine_ProcessOtherTable(b *testing.B) {
	var rules []RuleConfig
	for i := 0; i < 10000; i++ {
		rules = append(rules, RuleConfig{Name: fmt.Sprintf("r-%d", i), Table: fmt.Sprintf("crm.t_%d", i), When: `row.amount > 1`, Event: "RowChanged"})
	}
	e, err := New(context.Background(), Config{Rules: rules}, Deps{})
	if err != nil {
		b.Fatal(err)
	}
	tx := &cdc.Transaction{ID: "0-1-7", Timestamp: at, Changes: []cdc.Change{*potentialUpdate()}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := e.Process(context.Background(), tx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCondition_Eval is one matching rule's condition alone (three
// tests: a DECIMAL comparison, changedTo, contains), without the event.
func BenchmarkCondition_Eval(b *testing.B) {
	prog, err := compileCondition("when", `row.amount > 1000 && changedTo("sales_stage", "Negotiation or Review") && row.potentialname contains "Acme"`, nil)
	if err != nil {
		b.Fatal(err)
	}
	ec := &evalCtx{}
	e := newEnv(ec)
	ch := potentialUpdate()
	var machine vm.VM
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		e.bind(ec, ch, time.UTC)
		out, err := machine.Run(prog, e)
		if err != nil || out != true {
			b.Fatal(out, err)
		}
	}
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// BenchmarkEngine_ProcessYAMLBody is one change through a rule whose body
// is defined in YAML (five fields, no lookup): the fields' programs run
// on the engine's own VM and environment.
func BenchmarkEngine_ProcessYAMLBody(b *testing.B) {
	e, err := New(context.Background(), Config{
		Rules: []RuleConfig{{Name: "deal", Table: "crm.vtiger_potential", When: `row.amount > 1000`, Event: "Deal"}},
		Bodies: map[string]BodyConfig{"Deal": {Fields: Fields{{Name: "id", Expr: "row.potentialid"}, {Name: "name", Expr: "row.potentialname"},
			{Name: "amount", Expr: "row.amount"}, {Name: "stage", Expr: "row.sales_stage"}, {Name: "stage_changed", Expr: `changed("sales_stage")`}}}},
	}, Deps{})
	if err != nil {
		b.Fatal(err)
	}
	tx := &cdc.Transaction{ID: "0-1-7", Timestamp: at, Changes: []cdc.Change{*potentialUpdate()}}
	ctx := context.Background()
	b.ReportAllocs()
	cpu0 := cpuTime()
	n := 0
	for b.Loop() {
		evs, err := e.Process(ctx, tx)
		if err != nil || len(evs) != 1 || len(evs[0].Body) != 5 {
			b.Fatalf("%v, %v", evs, err)
		}
		n++
	}
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(n), "cpu-ns/op")
}
