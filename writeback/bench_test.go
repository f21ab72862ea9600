package writeback_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/rowhook/rowhook/writeback"
)

// BenchmarkWriter_Apply measures one writeback end to end on the private
// primary (expressions, conversion, one tagged transaction), in both modes:
//
//	go test -run '^$' -bench Writer_Apply ./writeback/
func BenchmarkWriter_Apply(b *testing.B) {
	for _, mode := range []writeback.Mode{writeback.ModeAnnotate, writeback.ModeMarker} {
		b.Run(string(mode), func(b *testing.B) {
			c := newCRM(b)
			cfg := c.cfg(mode)
			m := c.mapping()
			if err := m.Validate("rules[0].writeback"); err != nil {
				b.Fatal(err)
			}
			w, err := writeback.New(context.Background(), cfg, map[string]*writeback.Mapping{"r": m}, writeback.Deps{ReplicaDSN: pair.Replica.URL()})
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			if w.Mode() != mode {
				b.Fatalf("mode %s", w.Mode())
			}
			ch := c.change()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				resp := writeback.Response{Status: 201, Header: http.Header{"Content-Type": {"application/json"}},
					Body: fmt.Appendf(nil, `{"id":"ERP-%d","status":"created"}`, i)}
				if err := w.Apply(context.Background(), fmt.Sprintf("bench-%d", i), "r", ch, resp); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkNewEnv_eval measures building the environment and evaluating the
// issue's three expressions, without the database.
func BenchmarkNewEnv_eval(b *testing.B) {
	resp := writeback.Response{Status: 201, Header: http.Header{"Content-Type": {"application/json"}},
		Body: []byte(`{"id":"ERP-1001","status":"created","data":{"items":[{"id":1},{"id":2}]}}`)}
	b.ReportAllocs()
	for b.Loop() {
		env := writeback.NewEnv(resp, map[string]any{"potentialid": int64(3)}, nil)
		if env.Response.JSON == nil {
			b.Fatal("no json")
		}
	}
}
