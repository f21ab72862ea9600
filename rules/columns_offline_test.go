package rules

import (
	"strings"
	"testing"
)

func TestConfig_CheckColumns(t *testing.T) {
	cfg := Config{
		Rules: []RuleConfig{
			{Name: "a", Table: "deals", When: "row.amout > 1", Event: "b"},
			{Name: "c", Table: "unknown_table", When: "row.whatever > 1", Event: "RowChanged"},
		},
		Bodies: map[string]BodyConfig{"b": {Fields: Fields{{Name: "x", Expr: "row.custmer"}}}},
	}
	cols := func(p string) []string {
		if p == "deals" {
			return []string{"id", "amount", "customer"}
		}
		return nil
	}
	err := cfg.CheckColumns(cols)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{`rules[0].when`, `unknown column "amout" in deals (did you mean "amount"?)`, `bodies.b.fields.x`, `"custmer"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%v lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "whatever") {
		t.Errorf("checked a table with unknown columns: %v", err)
	}
}
