package writeback

import (
	"fmt"
	"testing"
	"time"

	"github.com/rowhook/rowhook/cdc"
)

// TestCanonical: a value as writeback's conversion binds it and the same
// value as the cdc reader decodes it from the binlog compare equal; other
// values do not.
func TestCanonical(t *testing.T) {
	col := func(dataType string) *column { return &column{Name: "c", DataType: dataType} }
	for _, tc := range []struct {
		typ           string
		written, read any
		equal         bool
	}{
		{"int", int64(42), int64(42), true},
		{"int", int64(42), uint64(42), true},
		{"int", int64(42), int64(43), false},
		{"bigint", uint64(18446744073709551615), uint64(18446744073709551615), true},
		{"int", int64(-1), uint64(18446744073709551615), false},
		{"year", int64(2024), int64(2024), true},
		{"bit", int64(5), uint64(5), true},
		{"decimal", "12.5", cdc.Decimal("12.5000"), true},
		{"decimal", "0", cdc.Decimal("0.00"), true},
		{"decimal", "-0.5", cdc.Decimal("-0.50"), true},
		{"decimal", "12.5", cdc.Decimal("12.5100"), false},
		{"decimal", "-12.5", cdc.Decimal("12.5000"), false},
		{"float", 1.1, 1.1, true},
		{"float", 1.1, float64(float32(1.1)), true},
		{"double", 2.25, 2.25, true},
		{"double", 0.1, 0.2, false},
		{"varchar", "héllo", "héllo", true},
		{"varchar", "Hello", "hello", false}, // a case change is a change
		{"char", "ab", "ab", true},
		{"char", "ab  ", "ab", true},
		{"text", "42", "42", true},
		{"datetime", "2024-01-02 03:04:05.12", "2024-01-02 03:04:05.120", true},
		{"datetime", "2024-01-02 03:04:05", "2024-01-02 03:04:05", true},
		{"datetime", "2024-01-02 03:04:05", "2024-01-02 03:04:06", false},
		{"timestamp", "2024-01-02 03:04:05.5", "2024-01-02T03:04:05.500000Z", true},
		{"timestamp", "2024-01-02 03:04:05", "2024-01-02T03:04:05Z", true},
		{"date", "2024-02-03", "2024-02-03", true},
		{"time", "12:34:56.5", "12:34:56.50", true},
		{"time", "12:34:56", "12:34:56.00", true},
		{"enum", "won", "won", true},
		{"set", "z,x", "x,z", true},
		{"set", "x", "x,z", false},
		{"json", `{"b":1,"a":[1,2]}`, cdc.JSON(`{"a": [1, 2], "b": 1}`), true},
		{"json", `{"a":1}`, cdc.JSON(`{"a":2}`), false},
		{"varbinary", []byte("abc"), cdc.Bytes("abc"), true},
		{"binary", []byte("ab"), cdc.Bytes("ab\x00\x00"), true},
		{"varchar", nil, nil, true},
		{"varchar", nil, "", false},
		{"int", nil, int64(0), false},
	} {
		t.Run(fmt.Sprintf("%s/%v/%v", tc.typ, tc.written, tc.read), func(t *testing.T) {
			c := col(tc.typ)
			w, r := canonical(c, tc.written), canonical(c, tc.read)
			if (w == r) != tc.equal {
				t.Errorf("canonical(%#v) = %q, canonical(%#v) = %q; equal %v, want %v", tc.written, w, tc.read, r, w == r, tc.equal)
			}
		})
	}
}

// TestRecentWrites: writes are matched once, forgotten after the window,
// bounded in number, and dropped with their row.
func TestRecentWrites(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	r := newRecentWrites(func() time.Time { return now })
	anyWrite := func(map[string]string) bool { return true }

	r.add("t|1", map[string]string{"a": "1"})
	r.add("t|1", map[string]string{"a": "2"})
	if !r.match("t|1", func(c map[string]string) bool { return c["a"] == "2" }) {
		t.Fatal("second write to the row not matched")
	}
	if r.match("t|1", func(c map[string]string) bool { return c["a"] == "2" }) {
		t.Error("a write matched twice")
	}
	if !r.match("t|1", anyWrite) || r.match("t|1", anyWrite) {
		t.Error("first write: want one match")
	}

	r.add("t|2", map[string]string{"a": "1"})
	now = now.Add(OwnWriteWindow)
	if r.match("t|2", anyWrite) {
		t.Error("a write older than the window matched")
	}
	if r.len() != 0 {
		t.Errorf("%d writes kept after the window", r.len())
	}

	r.add("t|3", map[string]string{"a": "1"})
	r.forget("t|3")
	if r.match("t|3", anyWrite) {
		t.Error("a deleted row's write matched")
	}

	r.max = 3
	for i := 0; i < 5; i++ {
		r.add(fmt.Sprintf("t|%d", 10+i), map[string]string{})
	}
	if r.len() != 3 || r.match("t|10", anyWrite) || !r.match("t|14", anyWrite) {
		t.Errorf("bound: %d kept, want the 3 newest", r.len())
	}
}

// TestTableGuard_isEcho: an update is rowhook's echo when every changed
// column is one it wrote, with the value it wrote, apart from columns the
// server changes by itself.
func TestTableGuard_isEcho(t *testing.T) {
	g := &tableGuard{
		columns: map[string]*column{
			"erp_ref": {Name: "erp_ref", DataType: "varchar"},
			"amount":  {Name: "amount", DataType: "decimal"},
			"name":    {Name: "name", DataType: "varchar"},
			"updated": {Name: "updated", DataType: "timestamp", OnUpdate: true},
		},
		auto: map[string]bool{"updated": true},
	}
	wrote := map[string]string{"erp_ref": "ERP-1", "amount": "12.5"}
	for _, tc := range []struct {
		name    string
		changed []string
		after   cdc.Row
		want    bool
	}{
		{"exactly the written columns", []string{"erp_ref", "amount"}, cdc.Row{"erp_ref": "ERP-1", "amount": cdc.Decimal("12.50")}, true},
		{"a subset (the other was already equal)", []string{"erp_ref"}, cdc.Row{"erp_ref": "ERP-1", "amount": cdc.Decimal("12.50")}, true},
		{"with an ON UPDATE column", []string{"erp_ref", "updated"}, cdc.Row{"erp_ref": "ERP-1", "updated": "2026-01-02T03:04:05Z"}, true},
		{"names in another case", []string{"ERP_REF"}, cdc.Row{"ERP_REF": "ERP-1"}, true},
		{"another value", []string{"erp_ref"}, cdc.Row{"erp_ref": "ERP-2"}, false},
		{"another column too", []string{"erp_ref", "name"}, cdc.Row{"erp_ref": "ERP-1", "name": "x"}, false},
		{"only an ON UPDATE column", []string{"updated"}, cdc.Row{"updated": "2026-01-02T03:04:05Z"}, false},
		{"nothing changed", nil, cdc.Row{"erp_ref": "ERP-1"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &cdc.Change{Op: cdc.OpUpdate, Changed: tc.changed, After: tc.after}
			if got := g.isEcho(c, wrote); got != tc.want {
				t.Errorf("isEcho = %v, want %v", got, tc.want)
			}
		})
	}
}
