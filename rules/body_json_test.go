package rules

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/rowhook/rowhook/cdc"
)

// referenceJSON is the straightforward encoding MarshalJSON must match
// byte for byte: each name and value through json.Marshal.
func referenceJSON(b Body) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, f := range b {
		if i > 0 {
			buf.WriteByte(',')
		}
		k, err := json.Marshal(f.Name)
		if err != nil {
			return nil, err
		}
		buf.Write(k)
		buf.WriteByte(':')
		v, err := json.Marshal(f.Value)
		if err != nil {
			return nil, err
		}
		buf.Write(v)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

func TestBody_MarshalJSON(t *testing.T) {
	nested := Body{{Name: "id", Value: int64(7)}, {Name: "amount", Value: cdc.Decimal("99.50")}}
	cases := []struct {
		name string
		body Body
	}{
		{"empty", Body{}},
		{"nil", nil},
		{"scalars", Body{{Name: "i", Value: int64(-42)}, {Name: "n", Value: 3}, {Name: "u", Value: uint64(math.MaxUint64)},
			{Name: "t", Value: true}, {Name: "f", Value: false}, {Name: "null", Value: nil}}},
		{"floats", Body{{Name: "a", Value: 1.5}, {Name: "b", Value: 1e21}, {Name: "c", Value: float32(0.1)}, {Name: "d", Value: 1e-7}}},
		{"plain strings", Body{{Name: "s", Value: "Deal 1 - 500 seats"}, {Name: "e", Value: ""}, {Name: "d", Value: cdc.Decimal("1250.50")}}},
		{"strings to escape", Body{{Name: "html", Value: "<b>a & b</b>"}, {Name: "quote", Value: `say "hi" \ bye`},
			{Name: "ctl", Value: "a\nb\tc\x01"}, {Name: "utf8", Value: "Grüße, 東京"}, {Name: "bad", Value: "\xff\xfe"},
			{Name: "sep", Value: "a\u2028b\u2029c"}, {Name: "del", Value: "\x7f"}}},
		{"names to escape", Body{{Name: "a<b", Value: 1}, {Name: "ü\"", Value: 2}}},
		{"nested", Body{{Name: "key", Value: nested}, {Name: "before", Value: nil}, {Name: "after", Value: nested},
			{Name: "empty", Value: Body{}}, {Name: "nilbody", Value: Body(nil)}}},
		{"lists", Body{{Name: "changed", Value: []string{"stage", "a<b"}}, {Name: "none", Value: []string{}}, {Name: "nil", Value: []string(nil)},
			{Name: "any", Value: []any{int64(1), "x", nested, nil, 2.5}}, {Name: "nilany", Value: []any(nil)}}},
		{"other types", Body{{Name: "json", Value: cdc.JSON(`{"a": [1, 2]}`)}, {Name: "badjson", Value: cdc.JSON(`{`)},
			{Name: "bytes", Value: cdc.Bytes{0, 1, 2, 0xff}}, {Name: "time", Value: time.Date(2026, 11, 23, 10, 0, 0, 5, time.UTC)},
			{Name: "map", Value: map[string]any{"z": 1, "a": "<"}}, {Name: "i32", Value: int32(-5)}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.body.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			want, err := referenceJSON(c.body)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("MarshalJSON =\n%s\nwant\n%s", got, want)
			}
			if !json.Valid(got) {
				t.Errorf("not valid JSON: %s", got)
			}
			// Through encoding/json, as the dispatcher encodes bodies.
			via, err := json.Marshal(c.body)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(via, want) {
				t.Errorf("json.Marshal =\n%s\nwant\n%s", via, want)
			}
		})
	}
}

func TestBody_MarshalJSONError(t *testing.T) {
	_, err := Body{{Name: "ok", Value: 1}, {Name: "bad", Value: math.Inf(1)}}.MarshalJSON()
	if err == nil {
		t.Fatal("an infinite float encoded without error")
	}
	_, err = Body{{Name: "nested", Value: Body{{Name: "ch", Value: make(chan int)}}}}.MarshalJSON()
	if err == nil {
		t.Fatal("a channel encoded without error")
	}
}

func BenchmarkBody_MarshalJSON(b *testing.B) {
	row := Body{{Name: "potentialid", Value: int64(1)}, {Name: "potentialname", Value: "Deal 1 - 500 seats"},
		{Name: "amount", Value: cdc.Decimal("1250.50")}, {Name: "related_to", Value: int64(3)}, {Name: "closingdate", Value: "2026-12-31"},
		{Name: "sales_stage", Value: "Prospecting"}, {Name: "probability", Value: cdc.Decimal("10.000")},
		{Name: "modifiedtime", Value: "2026-11-23 10:00:00"}, {Name: "description", Value: "Inbound via website"}, {Name: "deleted", Value: uint64(0)}}
	body := Body{{Name: "op", Value: "insert"}, {Name: "schema", Value: "crm"}, {Name: "table", Value: "potential"},
		{Name: "key", Value: Body{{Name: "potentialid", Value: int64(1)}}}, {Name: "changed", Value: []string{"potentialid", "amount"}},
		{Name: "before", Value: nil}, {Name: "after", Value: row}, {Name: "committed_at", Value: "2026-11-23T10:00:00Z"}, {Name: "gtid", Value: "0-1-42"}}
	// What the JSON encoder of a webhook calls.
	b.Run("MarshalJSON", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := body.MarshalJSON(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("rowhook", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(body); err != nil {
				b.Fatal(err)
			}
		}
	})
	old := toReference(body)
	b.Run("reference", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(old); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// referenceBody encodes with referenceJSON all the way down, as Body did
// before it appended nested bodies itself.
type referenceBody Body

func (r referenceBody) MarshalJSON() ([]byte, error) { return referenceJSON(Body(r)) }

func toReference(b Body) referenceBody {
	out := make(referenceBody, len(b))
	for i, f := range b {
		if nb, ok := f.Value.(Body); ok {
			f.Value = toReference(nb)
		}
		out[i] = f
	}
	return out
}
