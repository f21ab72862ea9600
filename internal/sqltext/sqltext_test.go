package sqltext

import (
	"reflect"
	"strings"
	"testing"
)

func TestSplit(t *testing.T) {
	tests := []struct {
		script string
		want   []string
	}{
		{"-- c\nSELECT 'a;b -- not a comment'; # hash\nINSERT INTO t VALUES ('x''y');\n\nSELECT 1",
			[]string{"SELECT 'a;b -- not a comment'", "INSERT INTO t VALUES ('x''y')", "SELECT 1"}},
		{"SELECT 1 -- c; not a split\nFROM t;", []string{"SELECT 1 \nFROM t"}},
		{`SELECT 'it\'s;', "a\";b", ` + "`c;d`" + `; SELECT 2`, []string{`SELECT 'it\'s;', "a\";b", ` + "`c;d`", "SELECT 2"}},
		{"SELECT 1--2; SELECT 3", []string{"SELECT 1--2", "SELECT 3"}}, // -- without a space is minus minus
		{";;  ;\n", nil},
		{"SELECT 'open;", []string{"SELECT 'open;"}},
		{"SELECT 1 # trailing comment", []string{"SELECT 1"}},
	}
	for _, tt := range tests {
		t.Run(tt.script, func(t *testing.T) {
			if got := Split(tt.script); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Split = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestScan(t *testing.T) {
	type seg struct {
		kind Kind
		text string
		open bool
	}
	tests := []struct {
		in   string
		want []seg
	}{
		{"SELECT :a, ':b' -- :c\nFROM `t:d` # x", []seg{
			{Code, "SELECT :a, ", false}, {Quoted, "':b'", false}, {Code, " ", false}, {Comment, "-- :c", false},
			{Code, "\nFROM ", false}, {Quoted, "`t:d`", false}, {Code, " ", false}, {Comment, "# x", false}}},
		{`'a\'b'"c"`, []seg{{Quoted, `'a\'b'`, false}, {Quoted, `"c"`, false}}},
		{"x 'open", []seg{{Code, "x ", false}, {Quoted, "'open", true}}},
		{`x 'ends in a backslash\`, []seg{{Code, "x ", false}, {Quoted, `'ends in a backslash\`, true}}},
		{"", nil},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var got []seg
			var joined strings.Builder
			for s := range Scan(tt.in) {
				if tt.in[s.Start:s.Start+len(s.Text)] != s.Text {
					t.Errorf("segment %q does not start at %d", s.Text, s.Start)
				}
				got = append(got, seg{s.Kind, s.Text, s.Unterminated})
				joined.WriteString(s.Text)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Scan = %v, want %v", got, tt.want)
			}
			if joined.String() != tt.in {
				t.Errorf("segments put together = %q", joined.String())
			}
		})
	}
	// Stopping early is allowed.
	for s := range Scan("a 'b' c") {
		if s.Kind == Quoted {
			break
		}
	}
}
