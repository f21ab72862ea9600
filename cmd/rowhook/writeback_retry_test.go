package main

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rowhook/rowhook/dispatch"
	"github.com/rowhook/rowhook/internal/mariadbtest"
)

// The writeback: section's retry settings are the ones the dispatcher
// follows: a writeback that hits a row lock (transient) is tried
// writeback.max_attempts times, not delivery.writeback's; a value the
// column cannot hold (a ConversionError) is permanent and tried once.
func TestRun_WritebackRetrySettings(t *testing.T) {
	s := mariadbtest.New(t, mariadbtest.Options{})
	schema, db := s.NewSchema(t)
	if _, err := db.Exec("CREATE TABLE deals (id INT PRIMARY KEY, name VARCHAR(80), erp_ref VARCHAR(6))"); err != nil {
		t.Fatal(err)
	}
	// Deal 1: the ERP answers once a CRM user holds the deal's row lock,
	// and keeps it. Deal 2: an id too long for erp_ref.
	ctx := context.Background()
	var lockMu sync.Mutex
	var lockTx *sql.Tx
	t.Cleanup(func() {
		lockMu.Lock()
		defer lockMu.Unlock()
		if lockTx != nil {
			lockTx.Rollback()
		}
	})
	erp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/deals/"))
		ref := "E-1"
		if id == 1 {
			lockMu.Lock()
			if lockTx == nil {
				tx, err := db.BeginTx(ctx, nil)
				if err == nil {
					_, err = tx.Exec("SELECT id FROM deals WHERE id = 1 FOR UPDATE")
				}
				if err != nil {
					t.Errorf("lock the deal: %v", err)
				}
				lockTx = tx
			}
			lockMu.Unlock()
		} else {
			ref = "ERP-2-MUCH-TOO-LONG"
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id": %q}`, ref)
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
    on: [insert]
    event: RowChanged
    webhooks: [erp]
    writeback:
      table: %s.deals
      key: { id: 'row.id' }
      set: { erp_ref: 'response.json.id' }
webhooks:
  erp:
    url: '%s/deals/{{ row.id }}'
delivery:
  writeback: { max_attempts: 9, initial_interval: 100ms, max_interval: 100ms }
writeback:
  dsn: mysql://root@127.0.0.1:%d/%s
  lock_wait_timeout: 1s
  max_attempts: 2
  backoff: 200ms
  max_backoff: 200ms
`, s.URL(), schema, start, schema, schema, erp.URL, s.Port, schema))
	p, logs := startTestPipeline(t, cfgPath)
	if _, err := db.Exec("INSERT INTO deals (id, name) VALUES (1, 'Acme'), (2, 'Globex')"); err != nil {
		t.Fatal(err)
	}
	var ds []dispatch.Delivery
	var err error
	deadline := time.Now().Add(45 * time.Second)
	for {
		ds, err = p.State().List(ctx, dispatch.Filter{Webhook: "erp"})
		if err != nil {
			t.Fatal(err)
		}
		done := len(ds) == 2
		for _, d := range ds {
			done = done && d.Writeback == dispatch.WritebackFailed
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("writebacks not failed after 45s: %+v\n%s", ds, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, d := range ds {
		_, log, err := p.State().Get(ctx, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		tries := 0
		for _, a := range log {
			if a.Kind == dispatch.KindWriteback {
				tries++
			}
		}
		want, what := 2, "lock wait timeout"
		if strings.HasSuffix(d.URL, "/deals/2") {
			want, what = 1, "ERP-2-MUCH-TOO-LONG"
		}
		if tries != want || !strings.Contains(strings.ToLower(d.WritebackError), strings.ToLower(what)) {
			t.Errorf("%s: %d writeback tries ending in %q, want %d ending in %s", d.URL, tries, d.WritebackError, want, what)
		}
	}
}
