package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rowhook/rowhook/internal/mariadbtest"
)

// In marker mode rowhook recognises its own writes by a marker row in a
// table of its own. The source's include list names only the CRM table, so
// the pipeline must read the marker table anyway: otherwise the writeback
// would come back as an ordinary update and fire the rule a second time.
func TestRun_MarkerModeOutsideIncludeList(t *testing.T) {
	// Without statement annotations, as on a server that does not log
	// them: the marker is rowhook's only way to know its own writes.
	s := mariadbtest.New(t, mariadbtest.Options{ExtraArgs: []string{"--binlog-annotate-row-events=OFF"}})
	schema, db := s.NewSchema(t)
	if _, err := db.Exec("CREATE TABLE deals (id INT PRIMARY KEY, name VARCHAR(80), stage VARCHAR(20), erp_ref VARCHAR(20))"); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int64
	erp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id": "ERP-%d"}`, n)
	}))
	t.Cleanup(erp.Close)
	var start string
	s.DB().QueryRow("SELECT @@gtid_binlog_pos").Scan(&start)
	cfgPath := writeConfig(t, t.TempDir(), fmt.Sprintf(`
source:
  dsn: %s
  include: ['%s.deals']
  start: 'gtid:%s'
  heartbeat: 1s
http:
  listen: 127.0.0.1:0
state:
  path: state.db
rules:
  - name: deal
    table: %s.deals
    on: [insert, update]
    event: RowChanged
    webhooks: [erp]
    writeback:
      table: %s.deals
      key: { id: 'row.id' }
      set: { erp_ref: 'response.json.id' }
webhooks:
  erp:
    url: %s
    retry: { max_attempts: 2, initial_interval: 100ms }
writeback:
  dsn: mysql://root@127.0.0.1:%d/%s
  mode: marker
  marker_table: %s.rowhook_marker
`, s.URL(), schema, start, schema, schema, erp.URL, s.Port, schema, schema))
	p, logs := startTestPipeline(t, cfgPath)

	if _, err := db.Exec("INSERT INTO deals (id, name, stage) VALUES (1, 'Acme', 'new')"); err != nil {
		t.Fatal(err)
	}
	waitValue(t, s, "SELECT COALESCE(erp_ref, '') FROM "+schema+".deals WHERE id = 1", "ERP-1")
	var markers int
	if err := db.QueryRow("SELECT COUNT(*) FROM rowhook_marker").Scan(&markers); err != nil || markers == 0 {
		t.Fatalf("marker table: %d rows (%v), want the writeback's marker", markers, err)
	}
	// A user's later change fires; its writeback again does not.
	if _, err := db.Exec("UPDATE deals SET stage = 'won' WHERE id = 1"); err != nil {
		t.Fatal(err)
	}
	waitValue(t, s, "SELECT COALESCE(erp_ref, '') FROM "+schema+".deals WHERE id = 1", "ERP-2")
	// Give a wrongly fired third delivery time to arrive: the reader has
	// passed both writebacks once the position reaches the primary's.
	var end string
	s.DB().QueryRow("SELECT @@gtid_binlog_pos").Scan(&end)
	deadline := time.Now().Add(20 * time.Second)
	for p.Reader().Position().GTIDSet != end && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if got := p.Reader().Position().GTIDSet; got != end {
		t.Fatalf("reader at %s, primary at %s", got, end)
	}
	time.Sleep(500 * time.Millisecond)
	if n := calls.Load(); n != 2 {
		t.Errorf("ERP got %d calls, want 2 (insert, user's update): rowhook's own writeback fired the rule\n%s", n, logs.String())
	}
}
