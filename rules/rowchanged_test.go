package rules

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rowhook/rowhook/cdc"
)

// rowChangedTxs are transactions of the shapes the binlog gives: inserts
// sharing their table's column list, an update with some columns changed,
// a delete, a composite and a DECIMAL key, a key-less table, an image with
// a column the column list lacks, no GTID, characters JSON escapes.
func rowChangedTxs() []*cdc.Transaction {
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.FixedZone("CET", 3600))
	deals := []string{"id", "name", "amount", "stage", "closing", "flags"}
	people := []string{"id", "name", "amount", "stage", "closing", "notes"}
	ins := func(id int64, name string) cdc.Change {
		return cdc.Change{ID: fmt.Sprintf("0-1-5:%d", id), Schema: "crm", Table: "deals", Op: cdc.OpInsert, GTID: "0-1-5", Timestamp: t0,
			After: cdc.Row{"id": id, "name": name, "amount": cdc.Decimal("1250.50000000"), "stage": "Prospecting",
				"closing": "2026-12-31", "flags": uint64(3)},
			Changed: deals, Columns: deals, PK: cdc.Row{"id": id}, PKColumns: []string{"id"}}
	}
	tx1 := &cdc.Transaction{ID: "0-1-5", Timestamp: t0, Changes: []cdc.Change{
		ins(1, "Deal 1 - 500 seats"), ins(2, `Zürich <b>"Müller" & Co</b>`+"\n\u2028"), ins(1000, "bad \xff utf8"),
		// Same length of column list, another table: another list.
		{ID: "0-1-5:3", Schema: "crm", Table: "people", Op: cdc.OpInsert, GTID: "0-1-5", Timestamp: t0,
			After:   cdc.Row{"id": int64(7), "name": "Ann", "amount": nil, "stage": "", "closing": nil, "notes": "x"},
			Changed: people, Columns: people, PK: cdc.Row{"id": int64(7)}, PKColumns: []string{"id"}},
	}}
	t1 := t0.Add(90 * time.Second)
	tx2 := &cdc.Transaction{ID: "mysql-bin.000003:4711", Timestamp: t1, Changes: []cdc.Change{
		{ID: "mysql-bin.000003:4711:0", Schema: "crm", Table: "deals", Op: cdc.OpUpdate, Timestamp: t1,
			Before:  cdc.Row{"id": int64(1), "name": "Deal 1", "amount": cdc.Decimal("10.00000000"), "stage": "Prospecting", "closing": nil, "flags": uint64(0)},
			After:   cdc.Row{"id": int64(1), "name": "Deal 1", "amount": cdc.Decimal("2000.00000000"), "stage": "Won", "closing": nil, "flags": uint64(0)},
			Changed: []string{"amount", "stage"}, Columns: deals, PK: cdc.Row{"id": int64(1)}, PKColumns: []string{"id"}},
		{ID: "mysql-bin.000003:4711:1", Schema: "crm", Table: "deals", Op: cdc.OpDelete, Timestamp: t1,
			Before:  cdc.Row{"id": int64(2), "name": "Deal 2", "amount": cdc.Decimal("5000.00000000"), "stage": "Lost", "closing": "2026-01-01", "flags": uint64(1)},
			Changed: deals, Columns: deals, PK: cdc.Row{"id": int64(2)}, PKColumns: []string{"id"}},
		// Composite key, one part a string.
		{ID: "mysql-bin.000003:4711:2", Schema: "crm", Table: "deal_tags", Op: cdc.OpInsert, Timestamp: t1,
			After:   cdc.Row{"deal": int64(1), "tag": "vip", "weight": 2.5},
			Changed: []string{"deal", "tag", "weight"}, Columns: []string{"deal", "tag", "weight"},
			PK: cdc.Row{"deal": int64(1), "tag": "vip"}, PKColumns: []string{"deal", "tag"}},
		// A DECIMAL key (fmt's path) and an image column the list lacks.
		{ID: "mysql-bin.000003:4711:3", Schema: "crm", Table: "rates", Op: cdc.OpInsert, Timestamp: t1,
			After:   cdc.Row{"rate": cdc.Decimal("1.25"), "label": "std", "added": true},
			Changed: nil, Columns: []string{"rate", "label"},
			PK: cdc.Row{"rate": cdc.Decimal("1.25")}, PKColumns: []string{"rate"}},
		// No primary key.
		{ID: "mysql-bin.000003:4711:4", Schema: "crm", Table: "log", Op: cdc.OpInsert, Timestamp: t1,
			After: cdc.Row{"msg": "hi"}, Changed: []string{"msg"}, Columns: []string{"msg"}},
	}}
	return []*cdc.Transaction{tx1, tx2}
}

// TestRowChanged_Golden: events of RowChanged rules (two on deals, so the
// second shares the first one's body) keep their ids, keys and body bytes;
// testdata/rowchanged.golden was written by the first implementation.
func TestRowChanged_Golden(t *testing.T) {
	e, err := New(context.Background(), Config{Rules: []RuleConfig{
		{Name: "any", Table: "crm.*", Event: "RowChanged", Webhooks: []string{"erp"}},
		{Name: "big", Table: "deals", When: `row.amount > 1000`, Event: "RowChanged", Webhooks: []string{"erp"}},
	}}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	for _, tx := range rowChangedTxs() {
		evs, err := e.Process(context.Background(), tx)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			body, err := ev.Body.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&sb, "%s %s %s %s\n%s\n", ev.ID, ev.Rule, ev.Name, ev.Key, body)
		}
	}
	path := filepath.Join("testdata", "rowchanged.golden")
	if *update {
		if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := sb.String(); got != string(want) {
		t.Errorf("events differ from %s:\n%s\nwant:\n%s", path, got, want)
	}
	if n := strings.Count(string(want), "\n"); n != 2*14 {
		t.Errorf("%d golden lines, want 2 per event of 14", n)
	}
}

// TestRowChanged_SetKeepsParts: the key, before and after bodies share
// one array with the body; appending to any of them (Body.Set) leaves the
// others as they were.
func TestRowChanged_SetKeepsParts(t *testing.T) {
	ch := rowChangedTxs()[1].Changes[0] // an update: key, before and after
	b, err := builtins["RowChanged"].build(context.Background(), &buildInput{change: &ch, loc: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := b.MarshalJSON()
	for _, name := range []string{"key", "before", "after"} {
		v, _ := b.Get(name)
		part := v.(Body)
		part.Set("extra", int64(1))
	}
	b.Set("extra", int64(1))
	got, _ := b.MarshalJSON()
	if wantSet := string(want[:len(want)-1]) + `,"extra":1}`; string(got) != wantSet {
		t.Errorf("after Set:\n%s\nwant\n%s", got, wantSet)
	}
}
