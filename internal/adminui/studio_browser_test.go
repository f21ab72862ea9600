package adminui_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/dispatch"
	"github.com/rowhook/rowhook/internal/adminui"
	"github.com/rowhook/rowhook/internal/studio"
	"github.com/rowhook/rowhook/rules"
)

// studioEnv serves the admin page and the studio API over a ring of deal
// changes: amounts 500, 1000, … 5000 for deals 1–10, deal 3's customer
// updated once.
func studioEnv(t *testing.T) (*httptest.Server, *receiver) {
	t.Helper()
	recv := newReceiver(t)
	ring := studio.NewRing(studio.Config{Size: 100, MaxBytes: 1 << 20, Redact: []string{"*password*"}})
	ts := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	cols := []string{"id", "customer", "amount", "user_password"}
	for i := 1; i <= 10; i++ {
		row := cdc.Row{"id": int64(i), "customer": fmt.Sprintf("Customer %d", i), "amount": cdc.Decimal(fmt.Sprintf("%d.00", i*500)), "user_password": "hunter2"}
		ring.Add(&cdc.Transaction{ID: fmt.Sprint("tx", i), Timestamp: ts.Add(time.Duration(i) * time.Minute), Changes: []cdc.Change{{
			ID: fmt.Sprint("c", i), Schema: "crm", Table: "deals", Op: cdc.OpInsert, After: row, PK: cdc.Row{"id": int64(i)},
			Columns: cols, PKColumns: []string{"id"}, File: "mysql-bin.000001", Pos: uint32(1000 * i), Tx: fmt.Sprint("tx", i),
			Timestamp: ts.Add(time.Duration(i) * time.Minute),
		}}})
	}
	st := studio.New(studio.Deps{
		Webhooks: map[string]dispatch.WebhookConfig{"erp": {URL: recv.URL + "/erp/{{ row.id }}", Auth: dispatch.AuthConfig{Type: "bearer", Token: "erp-secret-value"}}},
		Changes:  func() []cdc.Change { return ring.Changes(nil) },
		Columns:  ring.ColumnsFor,
		Rules: rules.Config{
			Rules:  []rules.RuleConfig{{Name: "studio-rule", Table: "deals", When: "row.amount > 1000", Event: "deal_body", Webhooks: []string{"erp"}}},
			Bodies: map[string]rules.BodyConfig{"deal_body": {Fields: rules.Fields{{Name: "deal", Expr: "row.id"}}}},
		},
	})
	api := st.Handler(ring)
	mux := http.NewServeMux()
	ui := adminui.Handler(adminui.Options{Token: adminToken})
	mux.Handle("/ui/", ui)
	mux.Handle("/studio/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+adminToken {
			http.Error(w, `{"error":"missing or wrong bearer token"}`, http.StatusUnauthorized)
			return
		}
		api.ServeHTTP(w, r)
	}))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, recv
}

func TestStudio_Browser(t *testing.T) {
	srv, recv := studioEnv(t)
	b := startBrowser(t)
	b.timezone("UTC")

	b.navigate(srv.URL + "/ui/studio.html")
	b.waitJS("the token prompt", `!document.getElementById('banner').hidden && document.getElementById('banner').textContent.includes('admin token')`)
	b.click("#token")
	b.typeText(adminToken)
	b.eval(`document.getElementById('token-form').requestSubmit()`, nil)
	b.waitJS("the recent changes", `document.querySelectorAll('#changes tr').length === 10 && document.getElementById('table').value === 'crm.deals'`)
	var changes string
	b.eval(`document.getElementById('changes').textContent`, &changes)
	if strings.Contains(changes, "hunter2") || !strings.Contains(changes, "***") {
		t.Errorf("recent changes show a redacted column: %s", changes)
	}

	// Type a condition with completion of a column name: "row.am" offers
	// amount; clicking it completes.
	b.click("#when")
	b.typeText("row.am")
	b.waitJS("the completion", `!document.getElementById('complete-when').hidden && document.getElementById('complete-when').textContent.includes('amount')`)
	b.click("#complete-when li")
	b.typeText(" > 3600")
	b.waitJS("three matches", `document.getElementById('when').value === 'row.amount > 3600' && document.body.dataset.state === 'done' &&
		document.getElementById('summary').textContent.startsWith('3 of 10 changes committed 2026-12-02 09:01:00 UTC – 2026-12-02 09:10:00 UTC') &&
		document.querySelectorAll('#matches tr.match').length === 3`)
	var keys []string
	b.eval(`Array.from(document.querySelectorAll('#matches tr.match')).map(r => r.dataset.key)`, &keys)
	if strings.Join(keys, ",") != "crm.deals:8,crm.deals:9,crm.deals:10" {
		t.Errorf("matches %v, want deals 8, 9 and 10", keys)
	}

	// A mistake: the located error under the editor, no matches.
	b.typeText(" && row.custmer == 'x'")
	b.waitJS("the located error", `!document.getElementById('err-when').hidden && document.getElementById('err-when').textContent.includes('custmer') &&
		document.querySelectorAll('#matches tr.match').length === 0`)
	// Fix it; add body fields and a webhook: the body and the request
	// (secret masked) show, and nothing is sent.
	b.eval(`(() => { const w = document.getElementById('when'); w.value = 'row.amount > 3600'; w.dispatchEvent(new Event('input')); })()`, nil)
	b.click("#body")
	b.typeText("deal: row.id\ncustomer: row.customer")
	b.click(".wh[value=erp]")
	b.waitJS("bodies and requests", `document.querySelectorAll('#matches tr.match').length === 3 && document.getElementById('matches').textContent.includes('"customer": "Customer 9"') &&
		document.getElementById('matches').textContent.includes('/erp/9') && document.getElementById('yaml').textContent.includes('webhooks: [erp]')`)
	var page string
	b.eval(`document.documentElement.outerHTML`, &page)
	if strings.Contains(page, "erp-secret-value") || strings.Contains(page, "hunter2") {
		t.Error("the studio shows a secret")
	}
	if n := recv.count("/erp/9") + recv.count("/erp/8") + recv.count("/erp/10"); n != 0 {
		t.Errorf("the receiver got %d requests", n)
	}
	// The diff against the running config's rule of the same name.
	b.click("#diff-toggle")
	b.waitJS("the diff", `(() => { const d = document.getElementById('diff'); return !d.hidden &&
		Array.from(d.querySelectorAll('.del')).some(e => e.textContent.includes('when: row.amount > 1000')) &&
		Array.from(d.querySelectorAll('.add')).some(e => e.textContent.includes('when: row.amount > 3600')); })()`)
	if p := os.Getenv("STUDIO_SCREENSHOT"); p != "" {
		b.screenshot(p)
	}
	if errs := b.cdp.pageErrors(); len(errs) > 0 {
		t.Errorf("page errors: %v", errs)
	}
}
