package writeback_test

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/writeback"
)

// TestWriter_Own: the values Apply writes, as the cdc reader decodes them
// from the replica's binlog, are recognised as rowhook's own even without
// their annotation, for every column type writeback supports; once only,
// and never a user's different value.
func TestWriter_Own(t *testing.T) {
	schema, db := pair.Primary.NewSchema(t)
	if _, err := db.Exec(`CREATE TABLE deals (
		id INT PRIMARY KEY, note VARCHAR(20),
		i INT, bi BIGINT UNSIGNED, d DECIMAL(12,4), f FLOAT, dbl DOUBLE,
		v VARCHAR(40), ch CHAR(10), t TEXT,
		dt DATETIME(3), ts TIMESTAMP(6) NULL DEFAULT NULL, dd DATE, tm TIME(2), yr YEAR,
		e ENUM('open','won'), st SET('x','y','z'), j JSON, bin VARBINARY(16), bn BINARY(4), bt BIT(8),
		nul VARCHAR(5) DEFAULT 'was',
		up DATETIME(6) DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6))`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("INSERT INTO deals (id, note) VALUES (7, 'new')"); err != nil {
		t.Fatal(err)
	}
	set := map[string]string{
		"i": "response.json.i", "bi": "response.json.bi", "d": "response.json.d", "f": "response.json.f",
		"dbl": "response.json.dbl", "v": "response.json.v", "ch": "response.json.ch", "t": "response.json.t",
		"dt": "response.json.dt", "ts": "response.json.ts", "dd": "response.json.dd", "tm": "response.json.tm",
		"yr": "response.json.yr", "e": "response.json.e", "st": "response.json.st", "j": "response.json.j",
		"bin": "response.json.bin", "bn": "response.json.bn", "bt": "response.json.bt", "nul": "response.json.nul",
	}
	m := &writeback.Mapping{Table: schema + ".deals", Key: map[string]string{"id": "row.id"}, Set: set}
	reg := prometheus.NewRegistry()
	cfg := writeback.DefaultConfig()
	cfg.DSN = pair.Primary.DSN(schema)
	w := newWriter(t, cfg, map[string]*writeback.Mapping{"r": m}, writeback.Deps{ReplicaDSN: pair.Replica.URL(), Registerer: reg})
	if w.Mode() != writeback.ModeAnnotate {
		t.Fatalf("mode %s", w.Mode())
	}
	body := `{"i": 42, "bi": "18446744073709551615", "d": 12.5, "f": 1.1, "dbl": 2.25,
		"v": "héllo", "ch": "ab", "t": "long text",
		"dt": "2024-01-02T03:04:05.120Z", "ts": "2024-01-02 03:04:05.5", "dd": "2024-02-03", "tm": "12:34:56.50", "yr": 2024,
		"e": "WON", "st": "z,x", "j": {"b": 1, "a": [1, 2]}, "bin": "abc", "bn": "ab", "bt": 5, "nul": null}`
	row := &cdc.Change{Schema: schema, Table: "deals", Op: cdc.OpInsert, After: cdc.Row{"id": int64(7)}}
	if err := w.Apply(context.Background(), "d-own-1", "r", row, writeback.Response{Status: 200, Body: []byte(body)}); err != nil {
		t.Fatal(err)
	}
	// A user's later change of the same row: not rowhook's.
	if _, err := db.Exec("UPDATE deals SET v = 'user' WHERE id = 7"); err != nil {
		t.Fatal(err)
	}
	waitSync(t)
	var updates []cdc.Change
	for _, tx := range replicaTransactions(t, schema) {
		for _, c := range tx.Changes {
			if c.Op == cdc.OpUpdate {
				updates = append(updates, c)
			}
		}
	}
	if len(updates) != 2 {
		t.Fatalf("%d updates in the replica's binlog, want the writeback's and the user's", len(updates))
	}
	own, user := updates[0], updates[1]
	if len(own.Changed) < len(set) {
		t.Fatalf("the writeback changed only %v", own.Changed)
	}
	own.Annotation, user.Annotation = "", "" // as with annotations off
	if w.Own(&user) {
		t.Errorf("the user's update taken for rowhook's")
	}
	if !w.Own(&own) {
		t.Errorf("the writeback's own update, without annotation, not recognised:\nchanged %v\nafter %#v", own.Changed, own.After)
	}
	if w.Own(&own) {
		t.Errorf("the same writeback recognised twice")
	}
	if got := testutil.ToFloat64(ownSkipped(t, reg, schema+".deals")); got != 1 {
		t.Errorf("rowhook_writeback_own_changes_skipped_total = %v, want 1", got)
	}

	// A tagged change is rowhook's whatever the guard says, and is not
	// counted.
	if err := w.Apply(context.Background(), "d-own-2", "r", row, writeback.Response{Status: 200, Body: []byte(body)}); err != nil {
		t.Fatal(err)
	}
	tagged := own
	tagged.Annotation = writeback.Tag + " d-own-2 */ UPDATE"
	if !w.Own(&tagged) {
		t.Errorf("tagged change not recognised")
	}
	if got := testutil.ToFloat64(ownSkipped(t, reg, schema+".deals")); got != 1 {
		t.Errorf("rowhook_writeback_own_changes_skipped_total = %v after a tagged change, want 1", got)
	}
}

func ownSkipped(t *testing.T, reg *prometheus.Registry, table string) prometheus.Collector {
	t.Helper()
	return collectorFunc(func(ch chan<- prometheus.Metric) {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "rowhook_writeback_own_changes_skipped_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "table" && l.GetValue() == table {
						ch <- prometheus.MustNewConstMetric(prometheus.NewDesc("x", "x", nil, nil), prometheus.CounterValue, m.GetCounter().GetValue())
						return
					}
				}
			}
		}
		t.Fatalf("no rowhook_writeback_own_changes_skipped_total{table=%q}", table)
	})
}
