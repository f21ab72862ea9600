package writeback_test

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/internal/mariadbtest"
	"github.com/rowhook/rowhook/internal/vtiger"
	"github.com/rowhook/rowhook/writeback"
)

var pair *mariadbtest.Pair

func TestMain(m *testing.M) { os.Exit(mariadbtest.MainPair(m, &pair, mariadbtest.Options{})) }

// crm is a Vtiger database on the primary with one opportunity created the
// way Vtiger's web service creates it, plus custom fields to write back to.
type crm struct {
	schema string
	db     *sql.DB // primary, schema as default database
	crmid  int64
}

func newCRM(t testing.TB) *crm {
	t.Helper()
	mariadbtest.Need(t)
	ctx := context.Background()
	schema, db := pair.Primary.NewSchema(t)
	if err := vtiger.Load(ctx, pair.Primary.DB(), schema); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`ALTER TABLE vtiger_potentialscf
		ADD cf_erp_id VARCHAR(20) DEFAULT '',
		ADD cf_erp_status INT DEFAULT NULL,
		ADD cf_erp_amount DECIMAL(12,2) DEFAULT NULL,
		ADD cf_erp_date DATE DEFAULT NULL,
		ADD cf_erp_reply TEXT,
		ADD cf_erp_stage ENUM('open','won','lost') DEFAULT NULL,
		ADD cf_erp_header VARCHAR(100) DEFAULT NULL,
		ADD cf_erp_soap VARCHAR(100) DEFAULT NULL,
		ADD cf_old_stage VARCHAR(200) DEFAULT NULL,
		ADD cf_erp_at DATETIME DEFAULT NULL`); err != nil {
		t.Fatal(err)
	}
	conn, err := vtiger.Session(ctx, db, schema)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := vtiger.Exec(ctx, conn, vtiger.CreatePotential); err != nil {
		t.Fatal(err)
	}
	c := &crm{schema: schema, db: db}
	if err := conn.QueryRowContext(ctx, "SELECT @crmid").Scan(&c.crmid); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *crm) cfg(mode writeback.Mode) writeback.Config {
	cfg := writeback.DefaultConfig()
	cfg.DSN = pair.Primary.DSN(c.schema)
	cfg.Mode = mode
	cfg.Timeout = 5 * time.Second
	cfg.ConnectTimeout = 2 * time.Second
	return cfg
}

// mapping is the example mapping.
func (c *crm) mapping() *writeback.Mapping {
	return &writeback.Mapping{
		Table: c.schema + ".vtiger_potentialscf",
		Key:   map[string]string{"potentialid": "row.potentialid"},
		Set: map[string]string{
			"cf_erp_id":     "response.json.id",
			"cf_erp_status": "response.status",
			"cf_erp_reply":  "response.body",
		},
		When: "response.status == 201",
	}
}

func (c *crm) change() *cdc.Change {
	return &cdc.Change{
		Schema: c.schema, Table: "vtiger_potential", Op: cdc.OpUpdate,
		Before: cdc.Row{"potentialid": c.crmid, "sales_stage": "Prospecting"},
		After:  cdc.Row{"potentialid": c.crmid, "sales_stage": "Closed Won"},
	}
}

func (c *crm) column(t *testing.T, db *sql.DB, col string) sql.NullString {
	t.Helper()
	var v sql.NullString
	q := "SELECT `" + col + "` FROM `" + c.schema + "`.vtiger_potentialscf WHERE potentialid = ?"
	if err := db.QueryRow(q, c.crmid).Scan(&v); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return v
}

// deliver makes a real HTTP request to a server answering with h and
// returns what the dispatcher would hand to Apply.
func deliver(t *testing.T, h http.HandlerFunc) writeback.Response {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	res, err := http.Post(srv.URL, "application/json", strings.NewReader(`{"event":"NewOpportunity"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return writeback.Response{Status: res.StatusCode, Header: res.Header, Body: body}
}

func created(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Erp-Id", "HDR-77")
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, body)
	}
}

func newWriter(t *testing.T, cfg writeback.Config, m map[string]*writeback.Mapping, deps writeback.Deps) *writeback.Writer {
	t.Helper()
	for rule, mm := range m {
		if err := mm.Validate("rules[0].writeback"); err != nil {
			t.Fatalf("%s: %v", rule, err)
		}
	}
	w, err := writeback.New(context.Background(), cfg, m, deps)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

func waitSync(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := pair.WaitSync(ctx); err != nil {
		t.Fatal(err)
	}
}

// binlogEvent is one row of SHOW BINLOG EVENTS.
type binlogEvent struct {
	file, typ, info string
	pos             uint64
}

// replicaEvents lists the replica's own binlog, all files.
func replicaEvents(t *testing.T) []binlogEvent {
	t.Helper()
	db := pair.Replica.DB()
	rows, err := db.Query("SHOW BINARY LOGS")
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for rows.Next() {
		cols, _ := rows.Columns()
		vals := make([]any, len(cols))
		var name string
		vals[0] = &name
		for i := 1; i < len(cols); i++ {
			vals[i] = new(sql.RawBytes)
		}
		if err := rows.Scan(vals...); err != nil {
			t.Fatal(err)
		}
		files = append(files, name)
	}
	rows.Close()
	var out []binlogEvent
	for _, f := range files {
		rows, err := db.Query("SHOW BINLOG EVENTS IN '" + f + "'")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var e binlogEvent
			var server, end uint64
			if err := rows.Scan(&e.file, &e.pos, &e.typ, &server, &end, &e.info); err != nil {
				t.Fatal(err)
			}
			out = append(out, e)
		}
		rows.Close()
	}
	return out
}

// replicaTransactions decodes the replica's binlog files with the cdc
// package, exactly as rowhook's replay does, keeping transactions that touch
// schema.
func replicaTransactions(t *testing.T, schema string) []*cdc.Transaction {
	t.Helper()
	if _, err := pair.Replica.DB().Exec("FLUSH BINARY LOGS"); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(pair.Replica.Dir, "binlog", "mysql-bin.[0-9]*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("replica binlog files: %v %v", files, err)
	}
	sort.Strings(files)
	var out []*cdc.Transaction
	err = cdc.ReadFiles(context.Background(), files, cdc.DecoderConfig{Flavor: "mariadb", Filter: cdc.NewFilter([]string{schema + ".*"}, nil)}, cdc.FileRange{},
		func(tx *cdc.Transaction) error {
			if len(tx.Changes) > 0 {
				out = append(out, tx)
			}
			return nil
		}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestWriter_Apply is the scenario: the ERP id from a JSON response
// goes into a Vtiger custom field on the primary, replicates, and comes back
// in the replica's binlog tagged, so that IsOwnChange recognises it.
func TestWriter_Apply(t *testing.T) {
	c := newCRM(t)
	reg := prometheus.NewRegistry()
	w := newWriter(t, c.cfg(writeback.ModeAnnotate), map[string]*writeback.Mapping{"new-opportunity": c.mapping()},
		writeback.Deps{Registerer: reg, ReplicaDSN: pair.Replica.URL()})
	if w.Mode() != writeback.ModeAnnotate || w.MarkerTable() != "" {
		t.Fatalf("mode %s marker %q", w.Mode(), w.MarkerTable())
	}
	var modifiedBefore string
	if err := c.db.QueryRow("SELECT modifiedtime FROM vtiger_crmentity WHERE crmid = ?", c.crmid).Scan(&modifiedBefore); err != nil {
		t.Fatal(err)
	}

	// The change the rule fired on, read from the replica's binlog as
	// rowhook would read it.
	waitSync(t)
	var fired *cdc.Change
	for _, tx := range replicaTransactions(t, c.schema) {
		for i := range tx.Changes {
			if ch := &tx.Changes[i]; ch.Table == "vtiger_potential" && ch.Op == cdc.OpInsert {
				fired = ch
			}
		}
	}
	if fired == nil {
		t.Fatal("the opportunity's insert is not in the replica's binlog")
	}
	if writeback.IsOwnChange(fired) {
		t.Fatalf("Vtiger's own insert taken for rowhook's: %q", fired.Annotation)
	}

	body := `{"id":"ERP-1001","status":"created"}`
	resp := deliver(t, created(body))
	const delivery = "0-1-42:3:new-opportunity:erp"
	if err := w.Apply(context.Background(), delivery, "new-opportunity", fired, resp); err != nil {
		t.Fatal(err)
	}
	if got := c.column(t, c.db, "cf_erp_id"); got.String != "ERP-1001" {
		t.Fatalf("primary cf_erp_id = %v", got)
	}
	if got := c.column(t, c.db, "cf_erp_status"); got.String != "201" {
		t.Errorf("primary cf_erp_status = %v", got)
	}
	if got := c.column(t, c.db, "cf_erp_reply"); got.String != body {
		t.Errorf("primary cf_erp_reply = %v", got)
	}
	var modifiedAfter string
	if err := c.db.QueryRow("SELECT modifiedtime FROM vtiger_crmentity WHERE crmid = ?", c.crmid).Scan(&modifiedAfter); err != nil {
		t.Fatal(err)
	}
	if modifiedAfter != modifiedBefore {
		t.Errorf("vtiger_crmentity.modifiedtime changed: %s → %s", modifiedBefore, modifiedAfter)
	}

	waitSync(t)
	if got := c.column(t, pair.Replica.DB(), "cf_erp_id"); got.String != "ERP-1001" {
		t.Fatalf("replica cf_erp_id = %v", got)
	}

	// SHOW BINLOG EVENTS on the replica: the Annotate_rows event keeps the
	// tag, followed by the table map and the update of the custom fields.
	events := replicaEvents(t)
	found := false
	for i, e := range events {
		if e.typ != "Annotate_rows" || !strings.Contains(e.info, writeback.Tag+" "+delivery+" */") {
			continue
		}
		found = true
		if !strings.Contains(e.info, "`"+c.schema+"`.`vtiger_potentialscf`") {
			t.Errorf("annotation %q does not name the table", e.info)
		}
		if i+2 >= len(events) || events[i+1].typ != "Table_map" || !strings.Contains(events[i+1].info, "vtiger_potentialscf") ||
			!strings.HasPrefix(events[i+2].typ, "Update_rows") {
			t.Errorf("after the annotation: %+v", events[i+1:min(i+3, len(events))])
		}
	}
	if !found {
		var ann []string
		for _, e := range events {
			if e.typ == "Annotate_rows" {
				ann = append(ann, e.info)
			}
		}
		t.Fatalf("no Annotate_rows with the tag on the replica; annotations: %q", ann)
	}

	// Decoded by the cdc package, the write is recognised as rowhook's own,
	// and nothing else in the schema is.
	own := 0
	for _, tx := range replicaTransactions(t, c.schema) {
		for i := range tx.Changes {
			ch := &tx.Changes[i]
			if writeback.IsOwnChange(ch) {
				own++
				if ch.Table != "vtiger_potentialscf" || ch.After["cf_erp_id"] != "ERP-1001" {
					t.Errorf("own change %s.%s %v", ch.Schema, ch.Table, ch.After)
				}
				if !strings.Contains(ch.Annotation, writeback.Tag+" "+delivery+" */") {
					t.Errorf("annotation %q does not name delivery %s", ch.Annotation, delivery)
				}
			}
		}
	}
	if own != 1 {
		t.Errorf("%d changes recognised as rowhook's own, want 1", own)
	}

	// A user changing the same record afterwards is not rowhook.
	if _, err := c.db.Exec("UPDATE vtiger_potential SET sales_stage = 'Closed Won' WHERE potentialid = ?", c.crmid); err != nil {
		t.Fatal(err)
	}
	waitSync(t)
	txs := replicaTransactions(t, c.schema)
	last := txs[len(txs)-1]
	if last.Changes[0].Table != "vtiger_potential" || writeback.IsOwnChange(&last.Changes[0]) {
		t.Errorf("user's sales_stage change: table %s own %v", last.Changes[0].Table, writeback.IsOwnChange(&last.Changes[0]))
	}

	// Idempotent: applying the same response again succeeds and changes
	// nothing.
	if err := w.Apply(context.Background(), delivery, "new-opportunity", fired, resp); err != nil {
		t.Fatalf("second Apply: %v", err)
	}
	table := c.schema + ".vtiger_potentialscf"
	if got := testutil.ToFloat64(writebacksTotal(reg, table, "ok")); got != 2 {
		t.Errorf("rowhook_writebacks_total{outcome=ok} = %v, want 2", got)
	}
	if n := testutil.CollectAndCount(reg, "rowhook_writeback_duration_seconds"); n != 1 {
		t.Errorf("duration series = %d, want 1", n)
	}
}

// writebacksTotal returns a collector for one series of rowhook_writebacks_total.
func writebacksTotal(reg *prometheus.Registry, table, outcome string) prometheus.Collector {
	return collectorFunc(func(ch chan<- prometheus.Metric) {
		mfs, _ := reg.Gather()
		for _, mf := range mfs {
			if mf.GetName() != "rowhook_writebacks_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				labels := map[string]string{}
				for _, l := range m.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				if labels["table"] == table && labels["outcome"] == outcome {
					ch <- prometheus.MustNewConstMetric(prometheus.NewDesc("x", "x", nil, nil), prometheus.CounterValue, m.GetCounter().GetValue())
				}
			}
		}
	})
}

type collectorFunc func(chan<- prometheus.Metric)

func (f collectorFunc) Describe(chan<- *prometheus.Desc)    {}
func (f collectorFunc) Collect(ch chan<- prometheus.Metric) { f(ch) }

// TestWriter_Apply_marker: in marker mode the marker row is written in the
// same transaction as the update, on the replica too.
func TestWriter_Apply_marker(t *testing.T) {
	c := newCRM(t)
	w := newWriter(t, c.cfg(writeback.ModeMarker), map[string]*writeback.Mapping{"new-opportunity": c.mapping()}, writeback.Deps{})
	if w.Mode() != writeback.ModeMarker || w.MarkerTable() != c.schema+".rowhook_writeback_marker" {
		t.Fatalf("mode %s marker %q", w.Mode(), w.MarkerTable())
	}
	const delivery = "0-1-50:0:new-opportunity:erp"
	if err := w.Apply(context.Background(), delivery, "new-opportunity", c.change(), deliver(t, created(`{"id":"M-1"}`))); err != nil {
		t.Fatal(err)
	}
	waitSync(t)
	var got string
	if err := pair.Replica.DB().QueryRow("SELECT delivery_id FROM `" + c.schema + "`.rowhook_writeback_marker").Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != delivery {
		t.Errorf("replica marker delivery_id = %q", got)
	}
	var own, others int
	for _, tx := range replicaTransactions(t, c.schema) {
		if writeback.IsOwnTransaction(tx, w.MarkerTable()) {
			own++
			tables := map[string]bool{}
			for _, ch := range tx.Changes {
				tables[ch.Table] = true
			}
			if !tables["vtiger_potentialscf"] || !tables["rowhook_writeback_marker"] || len(tx.Changes) != 2 {
				t.Errorf("own transaction %s holds %v", tx.ID, tables)
			}
			for _, ch := range tx.Changes {
				if ch.Table == "vtiger_potentialscf" && ch.After["cf_erp_id"] != "M-1" {
					t.Errorf("update in the marker transaction: %v", ch.After)
				}
			}
		} else {
			others++
		}
	}
	if own != 1 || others == 0 {
		t.Errorf("own transactions %d, others %d; want 1 and some", own, others)
	}
}

// TestNew_errors: bad mappings fail New with the rule's path, the table and
// the column, and near matches.
func TestNew_errors(t *testing.T) {
	c := newCRM(t)
	tests := []struct {
		name string
		m    *writeback.Mapping
		want []string
	}{
		{"unknown column", &writeback.Mapping{Table: c.schema + ".vtiger_potentialscf", Key: map[string]string{"potentialid": "row.potentialid"},
			Set: map[string]string{"cf_erp_idd": "response.json.id"}},
			[]string{"rules[4].writeback.set.cf_erp_idd: table " + c.schema + ".vtiger_potentialscf has no column cf_erp_idd (did you mean cf_erp_id"}},
		{"unknown key column", &writeback.Mapping{Table: "vtiger_potentialscf", Key: map[string]string{"potential_id": "row.potentialid"},
			Set: map[string]string{"cf_erp_id": "response.json.id"}},
			[]string{"rules[4].writeback.key.potential_id: table " + c.schema + ".vtiger_potentialscf has no column potential_id (did you mean potentialid?)"}},
		{"unknown table", &writeback.Mapping{Table: c.schema + ".vtiger_potentialcf", Key: map[string]string{"potentialid": "row.potentialid"},
			Set: map[string]string{"cf_erp_id": "response.json.id"}},
			[]string{"rules[4].writeback.table: table " + c.schema + ".vtiger_potentialcf does not exist", "did you mean vtiger_potentialscf"}},
		{"unknown schema", &writeback.Mapping{Table: "nosuchdb.vtiger_potentialscf", Key: map[string]string{"potentialid": "row.potentialid"},
			Set: map[string]string{"cf_erp_id": "response.json.id"}},
			[]string{"there is no database nosuchdb"}},
		{"key not unique", &writeback.Mapping{Table: "vtiger_potential", Key: map[string]string{"sales_stage": "row.sales_stage"},
			Set: map[string]string{"nextstep": "response.body"}},
			[]string{"rules[4].writeback.key: columns sales_stage are not a primary or unique key", "PRIMARY (potentialid)"}},
		{"two problems at once", &writeback.Mapping{Table: "vtiger_potentialscf", Key: map[string]string{"potentialid": "row.potentialid"},
			Set: map[string]string{"cf_a": "1", "cf_b": "2"}},
			[]string{"set.cf_a: table", "set.cf_b: table"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.m.Validate("rules[4].writeback"); err != nil {
				t.Fatal(err)
			}
			w, err := writeback.New(context.Background(), c.cfg(writeback.ModeMarker), map[string]*writeback.Mapping{"r": tt.m}, writeback.Deps{})
			if err == nil {
				w.Close()
				t.Fatal("New succeeded")
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("New: %v\nwant it to contain %q", err, want)
				}
			}
		})
	}
}

// TestWriter_Apply_conversion: a value that does not fit is a
// ConversionError naming table, column, value and type; nothing is written.
func TestWriter_Apply_conversion(t *testing.T) {
	c := newCRM(t)
	reg := prometheus.NewRegistry()
	m := c.mapping()
	m.Set = map[string]string{"cf_erp_id": "response.json.id", "cf_erp_amount": "response.json.amount"}
	w := newWriter(t, c.cfg(writeback.ModeMarker), map[string]*writeback.Mapping{"r": m}, writeback.Deps{Registerer: reg})
	tests := []struct {
		body, column, reason string
	}{
		{`{"id":"ERP-THIS-ID-IS-FAR-TOO-LONG","amount":1}`, "cf_erp_id", "27 characters, longer than the column's 20"},
		{`{"id":"ok","amount":"12.345"}`, "cf_erp_amount", "3 decimal places; the column keeps 2"},
		{`{"id":"ok","amount":"lots"}`, "cf_erp_amount", "not a decimal number"},
	}
	for _, tt := range tests {
		t.Run(tt.column+" "+tt.reason, func(t *testing.T) {
			err := w.Apply(context.Background(), "d", "r", c.change(), deliver(t, created(tt.body)))
			var ce *writeback.ConversionError
			if !errors.As(err, &ce) {
				t.Fatalf("Apply = %v, want ConversionError", err)
			}
			if ce.Table != c.schema+".vtiger_potentialscf" || ce.Column != tt.column || !strings.Contains(ce.Reason, tt.reason) {
				t.Errorf("ConversionError %+v", ce)
			}
			if !writeback.IsPermanent(err) {
				t.Error("not permanent")
			}
		})
	}
	if got := c.column(t, c.db, "cf_erp_id"); got.String != "" {
		t.Errorf("cf_erp_id = %q after failed writebacks", got.String)
	}
	if got := testutil.ToFloat64(writebacksTotal(reg, c.schema+".vtiger_potentialscf", "conversion_error")); got != 3 {
		t.Errorf("conversion_error count = %v", got)
	}
}

// TestWriter_Apply_env: every field of the expression environment reaches a
// column.
func TestWriter_Apply_env(t *testing.T) {
	c := newCRM(t)
	m := &writeback.Mapping{
		Table: "vtiger_potentialscf",
		Key:   map[string]string{"potentialid": "row.potentialid"},
		Set: map[string]string{
			"cf_erp_status": "response.status",
			"cf_erp_header": `response.headers.Get("x-erp-id") + "/" + response.headers["content-type"]`,
			"cf_erp_reply":  "response.body",
			"cf_erp_id":     `jsonPath(response.body, "data.items.1.id")`,
			"cf_erp_amount": `response.json.data.total`,
			"cf_erp_date":   `response.json.data.due`,
			"cf_erp_stage":  `row.sales_stage == "Closed Won" ? "won" : "open"`,
			"cf_old_stage":  "old.sales_stage",
			"cf_erp_soap":   "response.soap.CreateResponse.Result.Id",
			"cf_erp_at":     `jsonRaw(response.body, "data.at")`,
		},
	}
	w := newWriter(t, c.cfg(writeback.ModeMarker), map[string]*writeback.Mapping{"r": m}, writeback.Deps{})
	body := `{"data":{"items":[{"id":"A"},{"id":"B-2"}],"total":1234.5,"due":"2026-12-31","at":"2026-11-23T10:00:00+01:00"}}`
	resp := deliver(t, created(body))
	resp.SOAP = map[string]any{"CreateResponse": map[string]any{"Result": map[string]any{"Id": "SOAP-9"}}}
	if err := w.Apply(context.Background(), "d-env", "r", c.change(), resp); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"cf_erp_status": "201",
		"cf_erp_header": "HDR-77/application/json",
		"cf_erp_reply":  body,
		"cf_erp_id":     "B-2",
		"cf_erp_amount": "1234.50",
		"cf_erp_date":   "2026-12-31",
		"cf_erp_stage":  "won",
		"cf_old_stage":  "Prospecting",
		"cf_erp_soap":   "SOAP-9",
		"cf_erp_at":     "2026-11-23 09:00:00",
	}
	for col, v := range want {
		if got := c.column(t, c.db, col); got.String != v {
			t.Errorf("%s = %q, want %q", col, got.String, v)
		}
	}
}

// TestWriter_Apply_when: a false `when` writes nothing.
func TestWriter_Apply_when(t *testing.T) {
	c := newCRM(t)
	reg := prometheus.NewRegistry()
	w := newWriter(t, c.cfg(writeback.ModeMarker), map[string]*writeback.Mapping{"r": c.mapping()}, writeback.Deps{Registerer: reg})
	ok := func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"id":"NOPE"}`) } // 200, not 201
	if err := w.Apply(context.Background(), "d", "r", c.change(), deliver(t, ok)); err != nil {
		t.Fatal(err)
	}
	if got := c.column(t, c.db, "cf_erp_id"); got.String != "" {
		t.Errorf("cf_erp_id = %q, want untouched", got.String)
	}
	var n int
	if err := c.db.QueryRow("SELECT COUNT(*) FROM rowhook_writeback_marker").Scan(&n); err != nil || n != 0 {
		t.Errorf("marker rows %d (%v), want 0: nothing may be written", n, err)
	}
	if got := testutil.ToFloat64(writebacksTotal(reg, c.schema+".vtiger_potentialscf", "skipped")); got != 1 {
		t.Errorf("skipped count = %v", got)
	}
}

// TestWriter_Apply_permanent: a deleted record, a failing expression and an
// unknown rule are permanent errors.
func TestWriter_Apply_permanent(t *testing.T) {
	c := newCRM(t)
	m := c.mapping()
	m.When = ""
	m.Set = map[string]string{"cf_erp_id": "response.json.id", "cf_erp_status": "response.json.nested.status"}
	w := newWriter(t, c.cfg(writeback.ModeMarker), map[string]*writeback.Mapping{"r": m}, writeback.Deps{})

	gone := c.change()
	gone.After = cdc.Row{"potentialid": c.crmid + 1000}
	err := w.Apply(context.Background(), "d", "r", gone, deliver(t, created(`{"id":"X","nested":{"status":1}}`)))
	var nf *writeback.RowNotFoundError
	if !errors.As(err, &nf) || !errors.Is(err, writeback.ErrRowNotFound) || !writeback.IsPermanent(err) {
		t.Fatalf("missing row: %v", err)
	}
	if !strings.Contains(err.Error(), "potentialid = ") {
		t.Errorf("error does not show the key: %v", err)
	}
	var n int
	if err := c.db.QueryRow("SELECT COUNT(*) FROM rowhook_writeback_marker").Scan(&n); err != nil || n != 0 {
		t.Errorf("marker rows %d (%v) after a rolled-back writeback", n, err)
	}

	err = w.Apply(context.Background(), "d", "r", c.change(), deliver(t, created(`not json`)))
	var ee *writeback.ExprError
	if !errors.As(err, &ee) || !writeback.IsPermanent(err) || !strings.HasPrefix(ee.Path, "rules[0].writeback.set.") {
		t.Fatalf("non-JSON body: %v", err)
	}
	if !strings.Contains(err.Error(), "use ?. for optional fields") {
		t.Errorf("no hint in %v", err)
	}

	// A delivery id longer than the marker's column still writes back.
	long := strings.Repeat("x", 300)
	if err := w.Apply(context.Background(), long, "r", c.change(), deliver(t, created(`{"id":"LONG","nested":{"status":2}}`))); err != nil {
		t.Fatalf("long delivery id: %v", err)
	}

	err = w.Apply(context.Background(), "d", "other", c.change(), writeback.Response{})
	if !errors.Is(err, writeback.ErrNoMapping) || !writeback.IsPermanent(err) || w.Has("other") || !w.Has("r") {
		t.Fatalf("unknown rule: %v", err)
	}
}

// TestWriter_Apply_primaryDown: with the primary killed Apply fails with a
// transient error; after a restart the same call succeeds.
func TestWriter_Apply_primaryDown(t *testing.T) {
	c := newCRM(t)
	w := newWriter(t, c.cfg(writeback.ModeMarker), map[string]*writeback.Mapping{"r": c.mapping()}, writeback.Deps{})
	resp := deliver(t, created(`{"id":"AFTER-RESTART"}`))

	pair.Primary.Kill()
	restarted := false
	defer func() {
		if !restarted {
			if err := pair.Primary.Restart(); err != nil {
				t.Errorf("restart: %v", err)
			}
		}
	}()
	err := w.Apply(context.Background(), "d-down", "r", c.change(), resp)
	if err == nil || writeback.IsPermanent(err) {
		t.Fatalf("Apply with the primary down = %v, want a transient error", err)
	}
	var dbe *writeback.DBError
	if !errors.As(err, &dbe) || !dbe.Transient {
		t.Errorf("error %v is not a transient DBError", err)
	}

	// ctx is honoured: a cancelled context returns at once.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := w.Apply(ctx, "d-down", "r", c.change(), resp); err == nil || !errors.Is(err, context.Canceled) {
		t.Errorf("Apply with a cancelled ctx = %v", err)
	}

	if err := pair.Primary.Restart(); err != nil {
		t.Fatal(err)
	}
	restarted = true
	if err := w.Apply(context.Background(), "d-down", "r", c.change(), resp); err != nil {
		t.Fatalf("Apply after restart: %v", err)
	}
	if got := c.column(t, pair.Primary.DB(), "cf_erp_id"); got.String != "AFTER-RESTART" {
		t.Errorf("cf_erp_id = %q", got.String)
	}
	waitSync(t)
	if got := c.column(t, pair.Replica.DB(), "cf_erp_id"); got.String != "AFTER-RESTART" {
		t.Errorf("replica cf_erp_id = %q", got.String)
	}
}
