package cdc_test

import (
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/rowhook/rowhook/cdc"
)

// TestMarshalChange_RoundTrip: what writeback reads back after a restart
// is the change as it was enqueued, in JSON's value kinds, with the column
// lists Change's own JSON leaves out.
func TestMarshalChange_RoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 23, 9, 30, 0, 0, time.UTC)
	c := &cdc.Change{
		ID: "0-1-42:3", Schema: "crm", Table: "vtiger_potential", Op: cdc.OpUpdate,
		Before: cdc.Row{"potentialid": int64(7), "amount": cdc.Decimal("10.50"), "big": uint64(math.MaxUint64), "note": nil},
		After: cdc.Row{"potentialid": int64(7), "amount": cdc.Decimal("12.00"), "big": uint64(math.MaxUint64), "note": "x",
			"ratio": 0.25, "blob": cdc.Bytes("hi"), "doc": cdc.JSON(`{"n":1,"l":[2,3.5]}`), "neg": int64(-3)},
		Changed: []string{"amount", "note"}, PK: cdc.Row{"potentialid": int64(7)},
		Columns: []string{"potentialid", "amount", "big", "note"}, PKColumns: []string{"potentialid"},
		GTID: "0-1-42", File: "bin.000007", Pos: 999, Row: 1, Seq: 3, Timestamp: at, Tx: "0-1-42",
		Annotation: "UPDATE …",
	}
	raw, err := cdc.MarshalChange(c)
	if err != nil {
		t.Fatal(err)
	}
	got, err := cdc.UnmarshalChange(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := *c
	want.Annotation = "" // not stored
	want.Before = cdc.Row{"potentialid": int64(7), "amount": "10.50", "big": uint64(math.MaxUint64), "note": nil}
	want.After = cdc.Row{"potentialid": int64(7), "amount": "12.00", "big": uint64(math.MaxUint64), "note": "x",
		"ratio": 0.25, "blob": "aGk=", "doc": map[string]any{"n": int64(1), "l": []any{int64(2), 3.5}}, "neg": int64(-3)}
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("round trip:\n got %#v\nwant %#v", *got, want)
	}
}

func TestMarshalChange_Nil(t *testing.T) {
	raw, err := cdc.MarshalChange(nil)
	if raw != nil || err != nil {
		t.Errorf("MarshalChange(nil) = %q, %v", raw, err)
	}
	c, err := cdc.UnmarshalChange([]byte(`{"id":"x","op":"insert","before":null,"after":{"a":1}}`))
	if err != nil || c.Before != nil || c.After["a"] != int64(1) || c.PK != nil || c.Columns != nil {
		t.Errorf("sparse change = %+v, %v", c, err)
	}
}

func TestUnmarshalChange_Errors(t *testing.T) {
	for _, raw := range []string{``, `{`, `{"after":[1]}`, `{"after":{"a":}}`} {
		if _, err := cdc.UnmarshalChange([]byte(raw)); err == nil {
			t.Errorf("UnmarshalChange(%q) accepted", raw)
		}
	}
}
