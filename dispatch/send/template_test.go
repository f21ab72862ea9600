package send

import (
	"strings"
	"testing"
)

func TestURLTemplate_Render(t *testing.T) {
	tests := []struct {
		tmpl, want, err string
	}{
		{"https://erp/deals/{{ row.potentialid }}", "https://erp/deals/7", ""},
		{"https://erp/d/{{row.potentialname}}?n={{ row.potentialname }}&e={{ event.name }}", "https://erp/d/a%2Fb%20c?n=a%2Fb+c&e=NewOpportunity", ""},
		{"https://erp/{{ pk.potentialid }}/{{ body.amount }}", "https://erp/7/1250.50", ""},
		{"https://erp/{{ old.potentialid }}", "", "old.potentialid has no value"},
	}
	for _, tt := range tests {
		tp, err := parseURLTemplate(tt.tmpl)
		if err != nil {
			t.Fatalf("%s: %v", tt.tmpl, err)
		}
		got, err := tp.render(testEvent())
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: err = %v, want %q", tt.tmpl, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s = %q (%v), want %q", tt.tmpl, got, err, tt.want)
		}
	}
}
