package studio

import (
	"fmt"
	"math/rand"
	"strings"
	"testing"
	"time"

	"github.com/rowhook/rowhook/cdc"
)

func change(table string, id int, extra cdc.Row) cdc.Change {
	row := cdc.Row{"id": int64(id), "name": fmt.Sprint("n", id)}
	for k, v := range extra {
		row[k] = v
	}
	cols := []string{"id", "name"}
	for k := range extra {
		cols = append(cols, k)
	}
	return cdc.Change{ID: fmt.Sprint("c", id), Schema: "crm", Table: table, Op: cdc.OpInsert, After: row, PK: cdc.Row{"id": int64(id)},
		Columns: cols, PKColumns: []string{"id"}, File: "bin.000001", Pos: uint32(100 + id), Tx: fmt.Sprint("tx", id), Timestamp: time.Unix(int64(1e9+id), 0)}
}

func TestRing_BoundByCount(t *testing.T) {
	r := NewRing(Config{Size: 3, MaxBytes: 1 << 30})
	for i := 1; i <= 10; i++ {
		r.Add(&cdc.Transaction{Changes: []cdc.Change{change("a", i, nil), change("b", 100+i, nil)}})
	}
	for _, ti := range r.Tables() {
		if ti.Changes != 3 {
			t.Errorf("%s keeps %d changes, want 3", ti.Table, ti.Changes)
		}
	}
	got := r.Changes(func(s, tb string) bool { return tb == "a" })
	if len(got) != 3 || got[0].After["id"] != int64(8) || got[2].After["id"] != int64(10) {
		t.Errorf("kept %v, want the last three (8, 9, 10)", got)
	}
}

// TestRing_BoundByBytes adds changes with large random values and checks
// after every add that the estimate stays under the bound and equals the
// sum of what is kept.
func TestRing_BoundByBytes(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	const max = 256 << 10
	r := NewRing(Config{Size: 1000, MaxBytes: max})
	for i := 1; i <= 2000; i++ {
		big := strings.Repeat("x", rng.Intn(64<<10))
		tbl := fmt.Sprint("t", rng.Intn(5))
		r.Add(&cdc.Transaction{Changes: []cdc.Change{change(tbl, i, cdc.Row{"blob": big, "bin": []byte(big)})}})
		if b := r.Bytes(); b > max {
			t.Fatalf("after %d adds the ring holds %d bytes, over its %d", i, b, max)
		}
		var sum int64
		for _, c := range r.Changes(nil) {
			sum += sizeOf(&c)
		}
		if sum != r.Bytes() {
			t.Fatalf("after %d adds: estimate %d, kept changes sum to %d", i, r.Bytes(), sum)
		}
	}
	if len(r.Changes(nil)) == 0 {
		t.Fatal("ring kept nothing")
	}
	// One change over the whole budget is not kept.
	huge := strings.Repeat("y", max)
	r.Add(&cdc.Transaction{Changes: []cdc.Change{change("t0", 9999, cdc.Row{"blob": huge})}})
	if r.Dropped() != 1 || r.Bytes() > max {
		t.Errorf("a change over the budget: dropped %d, bytes %d", r.Dropped(), r.Bytes())
	}
}

func TestRing_Redaction(t *testing.T) {
	r := NewRing(Config{Size: 10, MaxBytes: 1 << 20, Redact: []string{"*password*", "api_KEY"}})
	c := change("users", 1, cdc.Row{"user_password": "hunter2", "API_key": "k-123", "email": "a@b.c"})
	c.Op = cdc.OpUpdate
	c.Before = cdc.Row{"id": int64(1), "user_password": "old-secret"}
	r.Add(&cdc.Transaction{Changes: []cdc.Change{c}})
	got := r.Changes(nil)[0]
	if got.After["user_password"] != Masked || got.After["API_key"] != Masked || got.Before["user_password"] != Masked {
		t.Errorf("secrets kept: after %v before %v", got.After, got.Before)
	}
	if got.After["email"] != "a@b.c" {
		t.Errorf("email redacted: %v", got.After["email"])
	}
	if c.After["user_password"] != "hunter2" {
		t.Error("the reader's change was modified")
	}
}

func TestRing_Tables(t *testing.T) {
	r := NewRing(Config{Size: 10, MaxBytes: 1 << 20, Tables: []string{"crm.vtiger_*", "deals"}})
	r.Add(&cdc.Transaction{Changes: []cdc.Change{change("vtiger_crmentity", 1, nil), change("deals", 2, nil), change("other", 3, nil)}})
	var names []string
	for _, ti := range r.Tables() {
		names = append(names, ti.Table)
	}
	if strings.Join(names, ",") != "crm.deals,crm.vtiger_crmentity" {
		t.Errorf("tables %v", names)
	}
}

func TestConfig_Validate(t *testing.T) {
	c := DefaultConfig()
	c.Enabled = true
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	c.Size, c.MaxBytes, c.Tables = 0, 10, []string{"a.b.c"}
	err := c.Validate()
	for _, want := range []string{"studio.size", "studio.max_bytes", "studio.tables[0]"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
}
