package adminui_test

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
	"sync/atomic"
	"testing"
	"time"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/dispatch"
	"github.com/rowhook/rowhook/dispatch/adminapi"
	"github.com/rowhook/rowhook/dispatch/sqlitestore"
	"github.com/rowhook/rowhook/internal/adminui"
	"github.com/rowhook/rowhook/rules"
)

const adminToken = "admin-t0ken-for-test"

// receiver answers /erp with 500 while erpDown is set, /legacy with 410
// Gone, and everything else with 200.
type receiver struct {
	*httptest.Server
	erpDown atomic.Bool
	mu      sync.Mutex
	got     map[string]int
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{got: map[string]int{}}
	rc.erpDown.Store(true)
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		rc.mu.Lock()
		rc.got[r.URL.Path]++
		rc.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/legacy" {
			w.WriteHeader(http.StatusGone)
			_, _ = io.WriteString(w, `{"error":"this endpoint was retired"}`)
			return
		}
		if strings.HasPrefix(r.URL.Path, "/erp") && rc.erpDown.Load() {
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, `{"error":"erp database is down"}`)
			return
		}
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) count(path string) int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.got[path]
}

type env struct {
	d    *dispatch.Dispatcher
	recv *receiver
	srv  *httptest.Server
	ids  map[string][]string // delivery ids by webhook
}

// xssKey is a record key that would run script if the page rendered data
// as HTML.
const xssKey = `crm.vtiger_potential:<img src=x onerror="window.__xss=1">`

// startEnv runs a real dispatcher over SQLite delivering to a receiver where
// webhook "crm" succeeds and "erp" fails until told otherwise, with three
// events delivered to both ("nightly", scheduled once a year, has none), and serves the admin API at / and the page at
// /ui/ (re-run allowed) and /ui-readonly/ (re-run off).
func startEnv(t *testing.T) *env {
	t.Helper()
	e := &env{recv: newReceiver(t), ids: map[string][]string{}}
	store, err := sqlitestore.Open(filepath.Join(t.TempDir(), "state.db"), sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	retry := dispatch.RetryConfig{MaxAttempts: 2, InitialInterval: 10 * time.Millisecond, MaxInterval: 20 * time.Millisecond}
	cfg := dispatch.Config{
		Webhooks: map[string]dispatch.WebhookConfig{
			// A path with escapes: the page shows it decoded.
			"crm":    {URL: e.recv.URL + "/crm/Gesch%C3%A4ft/neu%20deal", Retry: retry},
			"erp":    {URL: e.recv.URL + "/erp", Retry: retry, Auth: dispatch.AuthConfig{Type: "bearer", Token: "erp-secret-value"}},
			"legacy": {URL: e.recv.URL + "/legacy", Retry: retry},
			// Sent once a year: what is queued for it stays pending.
			"nightly": {URL: e.recv.URL + "/nightly", Retry: retry, Mode: dispatch.ModeScheduled, Schedule: "0 0 1 1 *"},
		},
		Admin: dispatch.AdminConfig{Token: adminToken, AllowRedeliver: true},
	}
	e.d, err = dispatch.New(cfg, store, dispatch.Deps{Logger: slog.New(slog.DiscardHandler), PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("dispatcher Run: %v", err)
		}
		store.Close()
	})

	var events []rules.Event
	for i := 1; i <= 3; i++ {
		key := fmt.Sprintf("crm.vtiger_potential:%d", 100+i)
		if i == 2 {
			key = xssKey
		}
		events = append(events, rules.Event{
			ID: fmt.Sprintf("0-1-%d:0:new-opportunity", i), Rule: "new-opportunity", Name: "NewOpportunity",
			Webhooks: []string{"crm", "erp"}, Key: key, Timestamp: time.Date(2026, 11, 23, 10, i, 0, 0, time.UTC),
			Body: rules.Body{{Name: "potentialid", Value: int64(100 + i)}, {Name: "name", Value: fmt.Sprintf("Deal %d", i)}},
			Change: &cdc.Change{Schema: "crm", Table: "vtiger_potential", Op: cdc.OpInsert,
				After: cdc.Row{"potentialid": int64(100 + i)}, PK: cdc.Row{"potentialid": int64(100 + i)}, PKColumns: []string{"potentialid"}},
		})
		for _, w := range []string{"crm", "erp"} {
			e.ids[w] = append(e.ids[w], dispatch.DeliveryID(events[i-1].Timestamp, events[i-1].ID, w, ""))
		}
	}
	legacy := rules.Event{ID: "0-1-4:0:account", Rule: "account", Name: "AccountChanged", Webhooks: []string{"legacy"},
		Key: "crm.vtiger_account:7", Timestamp: time.Date(2026, 11, 23, 10, 4, 0, 0, time.UTC),
		Body: rules.Body{{Name: "accountid", Value: int64(7)}},
		Change: &cdc.Change{Schema: "crm", Table: "vtiger_account", Op: cdc.OpUpdate,
			After: cdc.Row{"accountid": int64(7)}, PK: cdc.Row{"accountid": int64(7)}, PKColumns: []string{"accountid"}}}
	events = append(events, legacy)
	e.ids["legacy"] = []string{dispatch.DeliveryID(legacy.Timestamp, legacy.ID, "legacy", "")}
	if err := e.d.Enqueue(context.Background(), cdc.Checkpoint{Flavor: "mariadb", File: "bin.000001", Pos: 4}, events); err != nil {
		t.Fatal(err)
	}
	if err := e.d.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}

	lag := 1.5
	evTime := time.Date(2026, 11, 23, 10, 3, 0, 0, time.UTC)
	status := func(ctx context.Context) adminui.Status {
		st := adminui.Status{
			Version: "v0.0.0-test",
			Binlog: adminui.BinlogStatus{Connected: true, Source: "replica.example:3306", Flavor: "mariadb",
				File: "mariadb-bin.000042", Pos: 73421, GTIDSet: "0-1-1234", LagSeconds: &lag, EventTime: &evTime},
			Rules: adminui.NewRuleStatuses([]rules.RuleConfig{{Name: "new-opportunity", Table: "crm.vtiger_potential",
				On: []string{"insert"}, Event: "NewOpportunity", Webhooks: []string{"crm", "erp"}}}),
		}
		st.Webhooks = adminui.NewWebhookStatuses(e.d.WebhookStates(), cfg.Webhooks, nil)
		return st
	}
	mux := http.NewServeMux()
	mux.Handle("/", adminapi.New(e.d))
	mux.Handle("/ui/", adminui.Handler(adminui.Options{Prefix: "/ui/", Status: status, AllowRedeliver: true, Token: adminToken}))
	mux.Handle("/ui-readonly/", adminui.Handler(adminui.Options{Prefix: "/ui-readonly/", Status: status, Token: adminToken}))
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)

	e.waitStatus(t, e.ids["crm"], dispatch.StatusOK)
	e.waitStatus(t, e.ids["erp"], dispatch.StatusDead)
	e.waitStatus(t, e.ids["legacy"], dispatch.StatusFailed)
	if st := e.webhookState("legacy"); st != "disabled" {
		t.Fatalf("webhook legacy is %s after a 410, want disabled", st)
	}
	return e
}

// delivery reads one delivery through the admin API, as an operator would.
func (e *env) delivery(t *testing.T, id string) dispatch.DeliveryView {
	t.Helper()
	req, _ := http.NewRequest("GET", e.srv.URL+"/deliveries/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var v dispatch.DeliveryView
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("GET /deliveries/%s: %s %s", id, res.Status, b)
	}
	if err := json.NewDecoder(res.Body).Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func (e *env) webhookState(name string) string {
	for _, s := range e.d.WebhookStates() {
		if s.Name == name {
			return s.State
		}
	}
	return "missing"
}

func (e *env) waitStatus(t *testing.T, ids []string, want dispatch.Status) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for _, id := range ids {
		for {
			v := e.delivery(t, id)
			if v.Status == want {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("delivery %s is %s after 15s, want %s", id, v.Status, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// TestHandler_Browser drives the page in headless Chromium: it asks for the
// token, lists the deliveries, filters by status, opens a dead delivery,
// shows its attempts, and re-runs it.
func TestHandler_Browser(t *testing.T) {
	e := startEnv(t)
	b := startBrowser(t)
	shots := t.TempDir()
	if dir := os.Getenv("ADMINUI_SCREENSHOTS"); dir != "" {
		shots = dir
	}

	b.navigate(e.srv.URL + "/ui/")
	// Without the token the API answers 401 and the page says what it needs.
	b.waitJS("the token prompt", `!document.getElementById('banner').hidden && document.getElementById('banner').textContent.includes('admin token')`)
	b.click("#token")
	b.typeText(adminToken)
	b.click("#token-save")
	b.waitJS("seven deliveries", `document.querySelectorAll('#deliveries tr.row').length === 7`)
	b.waitJS("the status panels", `document.getElementById('position').textContent === 'mariadb-bin.000042:73421' &&
		document.getElementById('lag').textContent === '1.5 s' &&
		document.getElementById('rules').textContent.includes('NewOpportunity') &&
		document.getElementById('webhooks').textContent.includes('/erp')`)
	// erp failed every attempt: its endpoint circuit is open, with the
	// next probe's time; crm's is closed and shows nothing.
	b.waitJS("erp's circuit open", `(() => {
		const rows = Array.from(document.querySelectorAll('#webhooks tr'));
		const erp = rows.find(r => r.textContent.includes('/erp')), crm = rows.find(r => r.textContent.includes('/crm'));
		const badge = erp && erp.querySelector('[data-circuit="open"]');
		return badge && badge.textContent === 'open' && erp.textContent.includes('next probe') && crm && crm.querySelector('[data-circuit="closed"]');
	})()`)

	// Data is text, never markup: the record key with an <img> stays text.
	var xss struct {
		Ran    bool
		Images int
		Shown  bool
	}
	b.eval(`({Ran: window.__xss === 1, Images: document.querySelectorAll('main img, #deliveries img').length,
		Shown: document.getElementById('deliveries').textContent.includes('<img src=x onerror=')})`, &xss)
	if xss.Ran || xss.Images != 0 || !xss.Shown {
		t.Errorf("record key rendered as HTML: %+v", xss)
	}
	var statuses []string
	b.eval(`Array.from(document.querySelectorAll('#deliveries tr.row')).map(r => r.dataset.status).sort()`, &statuses)
	if got := strings.Join(statuses, ","); got != "dead,dead,dead,failed,ok,ok,ok" {
		t.Errorf("statuses listed = %s, want three dead, one failed and three ok", got)
	}

	// Filter on status: only the dead deliveries remain, and the URL keeps it.
	b.eval(`(() => { const s = document.getElementById('f-status'); s.value = 'dead'; s.dispatchEvent(new Event('change')); })()`, nil)
	b.waitJS("three dead deliveries", `(() => { const rows = Array.from(document.querySelectorAll('#deliveries tr.row'));
		return rows.length === 3 && rows.every(r => r.dataset.status === 'dead') && location.search === '?status=dead'; })()`)
	var webhooks []string
	b.eval(`Array.from(document.querySelectorAll('#deliveries tr.row td:nth-child(3)')).map(td => td.textContent)`, &webhooks)
	if strings.Join(webhooks, ",") != "erp,erp,erp" {
		t.Errorf("dead deliveries' webhooks = %v, want erp only", webhooks)
	}

	// Open the delivery of event 1 to erp: every attempt's request and response.
	target := e.ids["erp"][0]
	b.click(fmt.Sprintf(`#deliveries tr.row[data-id=%q]`, target))
	b.waitJS("the detail pane", fmt.Sprintf(`!document.getElementById('detail').hidden && document.getElementById('d-id').textContent === %q &&
		document.querySelectorAll('#d-log li.kind-attempt').length === 2`, target))
	var detail string
	b.eval(`document.getElementById('detail').innerText`, &detail)
	for _, want := range []string{"HTTP 500", "POST " + e.recv.URL + "/erp", "erp database is down", "Content-Type", "{\n  \"potentialid\": 101,\n  \"name\": \"Deal 1\"\n}", "NewOpportunity"} {
		if !strings.Contains(detail, want) {
			t.Errorf("detail pane lacks %q:\n%s", want, detail)
		}
	}
	var page string
	b.eval(`document.documentElement.outerHTML`, &page)
	if strings.Contains(page, "erp-secret-value") {
		t.Error("the page shows the erp webhook's bearer token")
	}
	var rerunDisabled bool
	b.eval(`document.getElementById('rerun').disabled`, &rerunDisabled)
	if rerunDisabled {
		t.Fatal("Re-run is disabled on a dead delivery with admin.allow_redeliver on")
	}
	b.screenshot(filepath.Join(shots, "adminui-dead.png"))

	// The receiver recovers; Re-run sends the delivery again.
	before := e.recv.count("/erp")
	e.recv.erpDown.Store(false)
	b.click("#rerun")
	b.waitJS("the re-run's success in the detail pane", `document.querySelector('#d-fields .badge') && document.querySelector('#d-fields .badge').textContent === 'ok' &&
		document.querySelectorAll('#d-log li.kind-redeliver').length === 1 && document.getElementById('banner').textContent.includes('Re-run queued')`)
	v := e.delivery(t, target)
	if v.Status != dispatch.StatusOK || v.Redelivered != 1 || v.LastStatus != 200 {
		t.Errorf("after Re-run: status %s, redelivered %d, last HTTP %d; want ok, 1, 200", v.Status, v.Redelivered, v.LastStatus)
	}
	if got := e.recv.count("/erp"); got != before+1 {
		t.Errorf("erp received %d requests after Re-run, want %d", got, before+1)
	}
	// The list refreshes: the re-run delivery is no longer dead.
	b.waitJS("two dead deliveries left", `document.querySelectorAll('#deliveries tr.row').length === 2`)
	b.screenshot(filepath.Join(shots, "adminui-rerun.png"))

	// Bulk re-run of what the filters select: the first click arms the
	// button and says what it will do, the second sends.
	before = e.recv.count("/erp")
	b.click("#bulk")
	b.waitJS("the armed bulk button", `document.getElementById('bulk').textContent === 'Confirm: re-run every dead delivery'`)
	if got := e.recv.count("/erp"); got != before {
		t.Fatalf("the first click on the bulk button sent %d deliveries", got-before)
	}
	b.click("#bulk")
	b.waitJS("no dead delivery left", `document.querySelectorAll('#deliveries tr.row').length === 0 && document.getElementById('banner').textContent.includes('Re-run queued for 2 deliveries')`)
	e.waitStatus(t, e.ids["erp"], dispatch.StatusOK)
	if got := e.recv.count("/erp"); got != before+2 {
		t.Errorf("erp received %d requests after the bulk re-run, want %d", got, before+2)
	}

	// A webhook disabled by 410 Gone is enabled from its panel.
	b.waitJS("the Enable button", `document.querySelector('#webhooks button.enable[data-webhook="legacy"]')`)
	b.click(`#webhooks button.enable[data-webhook="legacy"]`)
	b.waitJS("legacy active again", `!document.querySelector('#webhooks button.enable') && document.getElementById('banner').textContent.includes('legacy enabled')`)
	if st := e.webhookState("legacy"); st != "active" {
		t.Errorf("webhook legacy is %s after Enable, want active", st)
	}
	b.eval(`(() => { const s = document.getElementById('f-status'); s.value = ''; s.dispatchEvent(new Event('change')); })()`, nil)
	b.waitJS("every delivery listed again", `document.querySelectorAll('#deliveries tr.row').length === 7`)
	b.screenshot(filepath.Join(shots, "adminui-all.png"))

	// With re-runs turned off the button is disabled and says why.
	b.navigate(e.srv.URL + "/ui-readonly/#" + e.ids["erp"][1])
	b.waitJS("the read-only detail", fmt.Sprintf(`document.getElementById('d-id').textContent === %q && document.getElementById('rerun').disabled &&
		document.getElementById('rerun-reason').textContent.includes('admin.allow_redeliver')`, e.ids["erp"][1]))
	b.screenshot(filepath.Join(shots, "adminui-readonly.png"))

	if errs := b.cdp.pageErrors(); len(errs) > 0 {
		t.Errorf("page errors: %v", errs)
	}
}
