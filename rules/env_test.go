package rules

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/expr-lang/expr/vm"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/internal/yamlconf"
)

var at = time.Date(2026, 11, 23, 10, 30, 0, 0, time.UTC)

func potentialUpdate() *cdc.Change {
	return &cdc.Change{
		ID: "0-1-7:0", Schema: "crm", Table: "vtiger_potential", Op: cdc.OpUpdate, Timestamp: at,
		Before: cdc.Row{"potentialid": int64(3), "amount": cdc.Decimal("900.00000000"), "sales_stage": "Prospecting",
			"closingdate": "2026-12-31", "potentialname": "Acme - 500 seats", "probability": cdc.Decimal("10.000"), "nextstep": nil},
		After: cdc.Row{"potentialid": int64(3), "amount": cdc.Decimal("25000.00000000"), "sales_stage": "Negotiation or Review",
			"closingdate": "2026-11-20", "potentialname": "Acme - 500 seats", "probability": cdc.Decimal("10.000"), "nextstep": nil},
		Changed:   []string{"amount", "sales_stage", "closingdate"},
		PK:        cdc.Row{"potentialid": int64(3)},
		PKColumns: []string{"potentialid"},
	}
}

func evalCond(t *testing.T, src string, ch *cdc.Change, loc *time.Location) (bool, error) {
	t.Helper()
	prog, err := compileCondition("rules[0].when", src, nil)
	if err != nil {
		return false, err
	}
	ec := &evalCtx{}
	e := newEnv(ec)
	e.bind(ec, ch, loc)
	out, err := vm.Run(prog, e)
	if err != nil {
		return false, err
	}
	return out.(bool), nil
}

func TestCondition_Eval(t *testing.T) {
	tests := []struct {
		name string
		when string
		want bool
	}{
		{"decimal compares with a number", `row.amount > 1000`, true},
		{"decimal compares with a float", `row.amount >= 25000.0 && row.amount < 25000.01`, true},
		{"old image", `old.amount < 1000`, true},
		{"string equality", `row.sales_stage != "Closed Lost"`, true},
		{"op and table", `op == "update" && table == "vtiger_potential" && schema == "crm"`, true},
		{"changed", `changed("sales_stage")`, true},
		{"not changed", `changed("potentialname")`, false},
		{"changedTo", `changedTo("sales_stage", "Negotiation or Review")`, true},
		{"changedTo other value", `changedTo("sales_stage", "Closed Won")`, false},
		{"changedFrom", `changedFrom("sales_stage", "Prospecting")`, true},
		{"changedTo numeric loose", `changedTo("amount", 25000)`, true},
		{"contains operator", `row.potentialname contains "500"`, true},
		{"startsWith operator", `row.potentialname startsWith "Acme"`, true},
		{"endsWith operator", `row.potentialname endsWith "seats"`, true},
		{"does not contain", `not (row.potentialname contains "Globex")`, true},
		{"isEmpty null", `isEmpty(row.nextstep)`, true},
		{"isNotEmpty", `isNotEmpty(row.potentialname)`, true},
		{"isEmpty zero decimal", `isEmpty(row.amount)`, false},
		{"before date", `before(row.closingdate, "2026-12-01")`, true},
		{"after date", `after(row.closingdate, "2026-12-01")`, false},
		{"between dates", `between(row.closingdate, "2026-11-01", "2026-11-30")`, true},
		{"between numbers", `between(row.amount, 1000, 30000)`, true},
		{"less than days ago", `lessThanDaysAgo(row.closingdate, 5)`, true},
		{"less than days ago, too old", `lessThanDaysAgo(row.closingdate, 2)`, false},
		{"more than days ago", `moreThanDaysAgo(row.closingdate, 3)`, true},
		{"days ago exact", `daysAgo(row.closingdate, 3)`, true},
		{"daysSince", `daysSince(row.closingdate) == 3`, true},
		{"in less than days", `inLessThanDays(old.closingdate, 40)`, true},
		{"in more than days", `inMoreThanDays(old.closingdate, 40)`, false},
		{"days later", `daysLater(old.closingdate, 38)`, true},
		{"is today (event time)", `isToday("2026-11-23 08:00:00")`, true},
		{"is yesterday", `isYesterday("2026-11-22")`, true},
		{"is tomorrow", `isTomorrow("2026-11-24")`, true},
		{"less than hours before", `lessThanHoursBefore("2026-11-23 09:00:00", 2)`, true},
		{"more than hours later", `moreThanHoursLater("2026-11-23 20:00:00", 5)`, true},
		{"empty date is never before", `before(row.nextstep, "2030-01-01")`, false},
		{"num of a numeric string", `num("12.5") > 12`, true},
		{"eq loose", `eq(row.potentialid, "3")`, true},
		{"date part", `date("2026-11-23 10:00:00") == "2026-11-23"`, true},
		{"in list", `row.sales_stage in ["Prospecting", "Negotiation or Review"]`, true},
		{"matches", `row.potentialname matches "^Acme"`, true},
		{"missing column is nil", `row.nosuch == nil`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := evalCond(t, tt.when, potentialUpdate(), time.UTC)
			if err != nil {
				t.Fatalf("%s: %v", tt.when, err)
			}
			if got != tt.want {
				t.Errorf("%s = %v, want %v", tt.when, got, tt.want)
			}
		})
	}
}

func TestCondition_InsertAndDelete(t *testing.T) {
	ins := &cdc.Change{Op: cdc.OpInsert, Table: "t", Timestamp: at, After: cdc.Row{"a": int64(1), "b": ""}}
	del := &cdc.Change{Op: cdc.OpDelete, Table: "t", Timestamp: at, Before: cdc.Row{"a": int64(1)}}
	tests := []struct {
		name string
		ch   *cdc.Change
		when string
		want bool
	}{
		{"insert: a set field has changed", ins, `changed("a")`, true},
		{"insert: an empty field has not", ins, `changed("b")`, false},
		{"insert: changedTo", ins, `changedTo("a", 1)`, true},
		{"insert: changedFrom is false", ins, `changedFrom("a", nil)`, false},
		{"insert: old is empty", ins, `old.a == nil`, true},
		{"delete: row is the before image", del, `row.a == 1 && op == "delete"`, true},
		{"delete: nothing changed", del, `changed("a")`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := evalCond(t, tt.when, tt.ch, time.UTC)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("%s = %v, want %v", tt.when, got, tt.want)
			}
		})
	}
}

func TestCondition_Timezone(t *testing.T) {
	// 23:30 UTC on the 22nd is already the 23rd in Berlin.
	ch := &cdc.Change{Op: cdc.OpInsert, Timestamp: time.Date(2026, 11, 22, 23, 30, 0, 0, time.UTC), After: cdc.Row{"d": "2026-11-23"}}
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		loc  *time.Location
		want bool
	}{{time.UTC, false}, {berlin, true}} {
		got, err := evalCond(t, `isToday(row.d)`, ch, tc.loc)
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("isToday in %s = %v, want %v", tc.loc, got, tc.want)
		}
	}
}

func TestCompileCondition_Errors(t *testing.T) {
	cols := &columnSet{table: "crm.vtiger_potential",
		cols:  map[string]bool{"amount": true, "sales_stage": true, "closingdate": true},
		order: []string{"amount", "sales_stage", "closingdate"},
		types: map[string]string{"amount": "decimal", "sales_stage": "varchar", "closingdate": "date"}}
	tests := []struct {
		name       string
		when       string
		cols       *columnSet
		wantMsg    string
		wantOffset int
	}{
		{"unknown column", `row.amout > 1000`, cols, `unknown column "amout" in crm.vtiger_potential (did you mean "amount"?)`, 4},
		{"unknown column in old", `row.amount > 1 && old.stage == "x"`, cols, `unknown column "stage"`, 22},
		{"text column with a number", `row.sales_stage > 5`, cols, `sales_stage is a text column (varchar) compared with a number`, 18},
		{"number column with a string", `old.amount == "1000"`, cols, `amount is a number column (decimal) compared with a text`, 14},
		{"date column with a number", `row.closingdate < 20261231`, cols, `closingdate is a date column (date) compared with a number`, 18},
		{"date column with text", `1 == 1 && row.closingdate >= "soon"`, cols, `closingdate is a date column (date) compared with a text`, 29},
		{"unknown function", `isEmptyy(row.amount)`, nil, `unknown name isEmptyy (did you mean "isEmpty"?)`, 0},
		{"not a bool", `len(row.potentialname)`, nil, `expected bool, but got int (a condition must be true or false`, 0},
		{"syntax error", `row.amount >`, nil, `unexpected token EOF`, 11},
		{"wrong helper arity", `changed()`, nil, `not enough arguments`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := compileCondition("rules[2].when", tt.when, tt.cols)
			if err == nil {
				t.Fatalf("%s compiled", tt.when)
			}
			var pe *yamlconf.PathError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not a PathError: %v", err, err)
			}
			if pe.Path != "rules[2].when" {
				t.Errorf("path %q", pe.Path)
			}
			if !strings.Contains(pe.Err.Error(), tt.wantMsg) {
				t.Errorf("message %q, want it to contain %q", pe.Err, tt.wantMsg)
			}
			if pe.Offset != tt.wantOffset {
				t.Errorf("offset %d, want %d", pe.Offset, tt.wantOffset)
			}
		})
	}
}

func TestIsEmpty(t *testing.T) {
	tests := []struct {
		v    any
		want bool
	}{
		{nil, true}, {"", true}, {"0", true}, {int64(0), true}, {cdc.Decimal("0.000"), true},
		{"0000-00-00", true}, {"x", false}, {int64(2), false}, {cdc.Decimal("0.001"), false}, {uint64(1), false},
	}
	for _, tt := range tests {
		if got := isEmpty(tt.v); got != tt.want {
			t.Errorf("isEmpty(%#v) = %v, want %v", tt.v, got, tt.want)
		}
	}
}

func TestCompileCondition_TypedColumnsAccepted(t *testing.T) {
	cols := &columnSet{table: "crm.t", cols: map[string]bool{"amount": true, "stage": true, "d": true},
		types: map[string]string{"amount": "decimal", "stage": "enum", "d": "datetime"}}
	for _, when := range []string{
		`row.amount > 1000 && old.amount <= 10.5`,
		`row.stage == "won" && "lost" != old.stage`,
		`row.d > "2026-01-01" && row.d < "2026-01-01 10:00:00"`,
		`row.amount == nil || row.stage == nil`,
		`row.stage > row.amount`, // two columns: not a literal, left to run time
	} {
		if _, err := compileCondition("when", when, cols); err != nil {
			t.Errorf("%s: %v", when, err)
		}
	}
}

// TestCondition_ColumnReadsAllocateNothing: row.x and old.x are typed
// calls (env.Col), not expr.Function calls, which take an argument slice
// from the heap on every run.
func TestCondition_ColumnReadsAllocateNothing(t *testing.T) {
	prog, err := compileCondition("when", `row.potentialid > 0 && old.potentialid == row.potentialid && row.sales_stage != old.sales_stage`, nil)
	if err != nil {
		t.Fatal(err)
	}
	ec := &evalCtx{}
	e := newEnv(ec)
	ch := potentialUpdate()
	var machine vm.VM
	allocs := testing.AllocsPerRun(100, func() {
		e.bind(ec, ch, time.UTC)
		if out, err := machine.Run(prog, e); err != nil || out != true {
			t.Fatal(out, err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per evaluation, want 0", allocs)
	}
}
