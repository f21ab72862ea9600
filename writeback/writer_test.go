package writeback

import (
	"strings"
	"testing"
)

func TestTagFor(t *testing.T) {
	tests := []struct{ id, want string }{
		{"0-1-42:3:new-opportunity:erp", "/* rowhook writeback 0-1-42:3:new-opportunity:erp */ "},
		{"x */ DROP TABLE t; /*", "/* rowhook writeback x____DROP_TABLE_t____ */ "},
		{"", "/* rowhook writeback - */ "},
	}
	for _, tt := range tests {
		if got := tagFor(tt.id); got != tt.want {
			t.Errorf("tagFor(%q) = %q, want %q", tt.id, got, tt.want)
		}
	}
	if got := tagFor(strings.Repeat("a", 500)); len(got) > len(Tag)+140 {
		t.Errorf("tag not bounded: %d", len(got))
	}
}
