package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/rowhook/rowhook/internal/mariadbtest"
	"github.com/rowhook/rowhook/internal/pipeline"
	"github.com/rowhook/rowhook/internal/vtiger"
)

const (
	testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	testToken  = "erp-token-s3cr3t-value"
)

// erpServer is a real HTTP receiver standing in for the ERP.
type erpServer struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []erpRequest
}

type erpRequest struct {
	Path   string
	Header http.Header
	Body   []byte
}

func newERP(t *testing.T) *erpServer {
	e := &erpServer{}
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		e.mu.Lock()
		e.reqs = append(e.reqs, erpRequest{Path: r.URL.Path, Header: r.Header.Clone(), Body: body})
		n := len(e.reqs)
		e.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"id": "ERP-%d", "status": "created"}`, 1000+n)
	}))
	t.Cleanup(e.Close)
	return e
}

func (e *erpServer) requests() []erpRequest {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]erpRequest(nil), e.reqs...)
}

func (e *erpServer) wait(t *testing.T, n int) []erpRequest {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for len(e.requests()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("ERP got %d requests, want %d", len(e.requests()), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return e.requests()
}

func writeConfig(t *testing.T, dir, text string) string {
	t.Helper()
	p := filepath.Join(dir, "rowhook.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// pairConfig is a config reading the replica, delivering to erpURL and
// writing back on the primary.
func pairConfig(pair *mariadbtest.Pair, erpURL string) string {
	return fmt.Sprintf(`
source:
  dsn: mysql://root@127.0.0.1:%d/
  include: ['vtiger.*']
  heartbeat: 1s
  read_timeout: 10s
  max_backoff: 1s
http:
  listen: 127.0.0.1:0
state:
  path: state.db
vtiger:
  schema: vtiger
  settle: 1s
rules:
  - name: new-opportunity
    table: vtiger.vtiger_potential
    on: [insert]
    when: 'row.amount > 1000'
    event: NewOpportunity
    webhooks: [erp]
    writeback:
      table: vtiger.vtiger_potentialscf
      key: { potentialid: 'row.potentialid' }
      set: { cf_856: 'response.json.id' }
  - name: stage-changed
    table: vtiger.vtiger_potential
    on: [update]
    when: 'changed("sales_stage")'
    event: OpportunityUpdated
    webhooks: [erp]
webhooks:
  erp:
    url: '%s/deals/{{ row.potentialid }}'
    method: POST
    content_type: json
    auth: { type: bearer, token: '${ROWHOOK_TEST_ERP_TOKEN}' }
    signing: { secret: '%s' }
    retry: { max_attempts: 5, initial_interval: 100ms, max_interval: 1s }
writeback:
  dsn: mysql://root@127.0.0.1:%d/vtiger
`, pair.Replica.Port, erpURL, testSecret, pair.Primary.Port)
}

// syncWriter is an io.Writer safe for concurrent loggers.
type syncWriter struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// The whole path on a primary + replica pair: a Vtiger opportunity created on
// the primary is read from the replica's binlog, delivered with the exact
// body, auth and signature, its ERP id written back on the primary; the
// written-back value replicates and triggers no second delivery, while a
// user's later change of sales_stage still fires.
func TestRun_EndToEndOnReplicaWithWriteback(t *testing.T) {
	pair := mariadbtest.NewPair(t, mariadbtest.Options{})
	t.Cleanup(pair.Stop)
	ctx := context.Background()
	if err := vtiger.Load(ctx, pair.Primary.DB(), "vtiger"); err != nil {
		t.Fatal(err)
	}
	if err := pair.WaitSync(ctx); err != nil {
		t.Fatal(err)
	}
	erp := newERP(t)
	t.Setenv("ROWHOOK_TEST_ERP_TOKEN", testToken)
	cfgPath := writeConfig(t, t.TempDir(), pairConfig(pair, erp.URL))
	cfg, _, err := pipeline.Load(context.Background(), cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncWriter{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	runCtx, cancel := context.WithCancel(ctx)
	p, err := startPipeline(runCtx, cfg, filepath.Dir(cfgPath), logger)
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			if err := p.Wait(); err != nil {
				t.Errorf("pipeline stopped with %v", err)
			}
		}
	}
	t.Cleanup(stop)
	waitReady(t, p.Addr())

	// Vtiger creates an opportunity: ~25 autocommit statements.
	conn, err := vtiger.Session(ctx, pair.Primary.DB(), "vtiger")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := vtiger.Exec(ctx, conn, vtiger.CreatePotential); err != nil {
		t.Fatal(err)
	}
	var crmid int
	if err := conn.QueryRowContext(ctx, "SELECT @crmid").Scan(&crmid); err != nil {
		t.Fatal(err)
	}

	reqs := erp.wait(t, 1)
	r := reqs[0]
	if r.Path != fmt.Sprintf("/deals/%d", crmid) {
		t.Errorf("path = %s, want the templated /deals/%d", r.Path, crmid)
	}
	if got := r.Header.Get("Authorization"); got != "Bearer "+testToken {
		t.Errorf("Authorization = %q", got)
	}
	wh, _ := standardwebhooks.NewWebhook(testSecret)
	if err := wh.Verify(r.Body, r.Header); err != nil {
		t.Errorf("signature does not verify with the standard-webhooks library: %v", err)
	}
	var body map[string]any
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, r.Body)
	}
	// The settled body: the module row, the crmentity row and the workflow's
	// forecast_amount update, as of the create.
	if body["potentialname"] != "Acme - 500 seats" || body["sales_stage"] != "Prospecting" || body["forecast_amount"] != "2500.00000000" {
		t.Errorf("body = %s", r.Body)
	}
	if body["id"] != float64(crmid) && body["potentialid"] != float64(crmid) {
		t.Errorf("body does not carry the record id %d: %s", crmid, r.Body)
	}

	// Written back on the primary, replicated to the replica.
	waitValue(t, pair.Primary, fmt.Sprintf("SELECT cf_856 FROM vtiger.vtiger_potentialscf WHERE potentialid = %d", crmid), "ERP-1001")
	wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
	defer wcancel()
	if err := pair.WaitSync(wctx); err != nil {
		t.Fatal(err)
	}
	waitValue(t, pair.Replica, fmt.Sprintf("SELECT cf_856 FROM vtiger.vtiger_potentialscf WHERE potentialid = %d", crmid), "ERP-1001")

	// A user changes the stage afterwards: that still fires.
	if err := vtiger.Exec(ctx, conn, "SET @now = DATE_FORMAT(UTC_TIMESTAMP(), '%Y-%m-%d %H:%i:%s'); UPDATE vtiger_potential SET sales_stage='Negotiation or Review' WHERE potentialid=@crmid;"); err != nil {
		t.Fatal(err)
	}
	reqs = erp.wait(t, 2)
	if !strings.Contains(string(reqs[1].Body), "Negotiation or Review") {
		t.Errorf("second delivery is not the stage change: %s", reqs[1].Body)
	}
	// Give a self-triggered delivery (the writeback's update coming back
	// through the replica) every chance to show up.
	time.Sleep(3 * time.Second)
	if n := len(erp.requests()); n != 2 {
		for i, r := range erp.requests() {
			t.Logf("request %d: %s %s", i, r.Path, r.Body)
		}
		t.Fatalf("ERP got %d requests, want exactly 2 (the writeback must not trigger a delivery)", n)
	}
	if reqs[0].Header.Get("webhook-id") == reqs[1].Header.Get("webhook-id") {
		t.Errorf("two different events share webhook-id %s", reqs[0].Header.Get("webhook-id"))
	}

	// Metrics are served and name the delivery.
	metrics := httpGet(t, "http://"+p.Addr()+"/metrics")
	for _, want := range []string{"rowhook_build_info", "rowhook_binlog_rows_total", "rowhook_cdc_lag_seconds", `webhook="erp"`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	stop()
	if out := logs.String(); strings.Contains(out, testToken) || strings.Contains(out, strings.TrimPrefix(testSecret, "whsec_")) {
		t.Errorf("a secret reached the logs")
	}
}

func waitReady(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("not ready after 30s: %s", b)
			}
		} else if time.Now().After(deadline) {
			t.Fatalf("readyz: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func waitValue(t *testing.T, s *mariadbtest.Server, query, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var got string
	for {
		err := s.DB().QueryRow(query).Scan(&got)
		if err == nil && got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %q (%v), want %q", query, got, err, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
