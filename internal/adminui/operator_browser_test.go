package adminui_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/dispatch"
	"github.com/rowhook/rowhook/rules"
)

// TestHandler_BrowserOperator drives the page in a 1280 px wide Chromium
// in Berlin's time zone, as an operator looking for one record's deliveries
// would: nothing overflows the window in any view, every time carries its
// zone, URLs are decoded and JSON bodies indented, each webhook shows its
// pending count, oldest pending age and circuit, the list narrows to an
// absolute time range and to a record key, event id or delivery id, and a
// re-run from the page is logged with who and when.
//
// ADMINUI_DOCS=$PWD/docs (from the repository root) writes the screenshots
// docs/admin.md shows.
func TestHandler_BrowserOperator(t *testing.T) {
	e := startEnv(t)
	shots := t.TempDir()
	if dir := os.Getenv("ADMINUI_DOCS"); dir != "" {
		shots = dir
	}
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	// cut splits the deliveries queued so far from two invoices queued
	// after it, to the second (the page's range inputs count in seconds).
	cut := time.Now().Truncate(time.Second).Add(time.Second)
	for time.Now().Before(cut) {
		time.Sleep(10 * time.Millisecond)
	}
	var invoices []rules.Event
	for i := 1; i <= 2; i++ {
		invoices = append(invoices, rules.Event{
			ID: fmt.Sprintf("0-1-%d:0:invoice", 10+i), Rule: "invoice", Name: "InvoiceCreated", Webhooks: []string{"nightly"},
			Key: fmt.Sprintf("crm.vtiger_invoice:%d", i), Timestamp: time.Date(2026, 11, 23, 10, 10+i, 0, 0, time.UTC),
			Body: rules.Body{{Name: "invoiceid", Value: int64(i)}, {Name: "total", Value: cdc.Decimal("1500.00")},
				{Name: "erp_ref", Value: int64(9007199254740993)}, {Name: "lines", Value: []any{map[string]any{"sku": "A-1", "qty": int64(2)}}},
				{Name: "tags", Value: []any{}}},
			Change: &cdc.Change{Schema: "crm", Table: "vtiger_invoice", Op: cdc.OpInsert, After: cdc.Row{"invoiceid": int64(i)},
				PK: cdc.Row{"invoiceid": int64(i)}, PKColumns: []string{"invoiceid"}},
		})
	}
	if err := e.d.Enqueue(context.Background(), cdc.Checkpoint{Flavor: "mariadb", File: "bin.000001", Pos: 900}, invoices); err != nil {
		t.Fatal(err)
	}
	if err := e.d.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	invoice := dispatch.DeliveryID(invoices[0].Timestamp, invoices[0].ID, "nightly", "")

	b := startBrowser(t)
	b.emulate(1280, 900, "Europe/Berlin")
	noOverflow := func(view string) {
		t.Helper()
		var w struct {
			Doc, Body int
			Boxes     []string
		}
		// Nor inside a panel, where the next one would hide what sticks out.
		b.eval(`({Doc: document.documentElement.scrollWidth, Body: document.body.scrollWidth,
			Boxes: Array.from(document.querySelectorAll('.panel, #log, #detail, pre.body')).filter(e => e.offsetParent && e.scrollWidth > e.clientWidth + 1)
				.map(e => (e.id || e.className) + ' ' + e.scrollWidth + '>' + e.clientWidth)})`, &w)
		if w.Doc > 1280 || w.Body > 1280 || len(w.Boxes) > 0 {
			t.Errorf("%s: the page is %d px wide (body %d) in a 1280 px window; boxes wider than they show: %v", view, w.Doc, w.Body, w.Boxes)
		}
	}
	list := func(what string, n int) {
		t.Helper()
		b.waitJS(what, fmt.Sprintf(`document.querySelectorAll('#deliveries tr.row').length === %d && document.getElementById('banner').hidden`, n))
	}
	setFilter := func(id, value string) {
		t.Helper()
		b.eval(fmt.Sprintf(`(() => { const f = document.getElementById(%q); f.value = %q; f.dispatchEvent(new Event('change')); })()`, id, value), nil)
	}

	b.navigate(e.srv.URL + "/ui/")
	b.waitJS("the token prompt", `document.getElementById('banner').textContent.includes('admin token')`)
	b.click("#token")
	b.typeText(adminToken)
	b.click("#token-save")
	list("nine deliveries", 9)
	b.waitJS("the status panels", `document.getElementById('position').textContent === 'mariadb-bin.000042:73421'`)
	noOverflow("the delivery log")

	// Per webhook: circuit, pending count and the oldest pending one's age.
	var hooks map[string]struct{ Circuit, Pending, Oldest, URL string }
	b.eval(`Object.fromEntries(Array.from(document.querySelectorAll('#webhooks tr[data-webhook]')).map(r => [r.dataset.webhook, {
		Circuit: r.querySelector('[data-circuit]').dataset.circuit, Pending: r.querySelector('td.pending').textContent,
		Oldest: r.querySelector('td.oldest').textContent, URL: r.querySelector('code').textContent}]))`, &hooks)
	if h := hooks["nightly"]; h.Circuit != "closed" || h.Pending != "2" || !regexp.MustCompile(`^\d+(s|m \d\ds)$`).MatchString(h.Oldest) {
		t.Errorf("nightly's row = %+v, want circuit closed, 2 pending and the oldest one's age", h)
	}
	if h := hooks["erp"]; h.Circuit != "open" || h.Pending != "0" || h.Oldest != "" {
		t.Errorf("erp's row = %+v, want circuit open, 0 pending, no age", h)
	}
	// URLs decoded.
	if h := hooks["crm"]; h.URL != e.recv.URL+"/crm/Geschäft/neu deal" {
		t.Errorf("crm's URL shown as %q, want it decoded", h.URL)
	}

	// One time format, with the zone, everywhere: no raw RFC 3339 text or
	// tooltip, and the binlog's last event (10:03 UTC) in Berlin's time.
	var times struct {
		All, Bad []string
		ISO      bool
	}
	b.eval(`(() => { const all = Array.from(document.querySelectorAll('.ts')).map(s => s.textContent);
		const iso = /\d{4}-\d\d-\d\dT\d\d:\d\d/;
		return {All: all, Bad: all.filter(s => !/^(\D+ )?\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC([+-]\d\d:\d\d)?$/.test(s)),
			ISO: iso.test(document.body.innerText) || Array.from(document.querySelectorAll('[title]')).some(e => iso.test(e.title))}; })()`, &times)
	if times.ISO {
		var where []string
		b.eval(`(() => { const iso = /\d{4}-\d\d-\d\dT\d\d:\d\d/; return Array.from(document.querySelectorAll('*')).filter(e =>
			iso.test(e.title || '') || Array.from(e.childNodes).some(n => n.nodeType === 3 && iso.test(n.textContent))).map(e => e.outerHTML.slice(0, 200)); })()`, &where)
		t.Logf("raw times in: %q", where)
	}
	if len(times.All) < 10 || len(times.Bad) > 0 || times.ISO {
		t.Errorf("times shown: %d, not in the page's format: %q, raw RFC 3339 somewhere: %v", len(times.All), times.Bad, times.ISO)
	}
	var lastEvent string
	b.eval(`document.querySelector('#binlog .ts').textContent`, &lastEvent)
	if lastEvent != "2026-11-23 11:03:00 UTC+01:00" {
		t.Errorf("the binlog's last event shown as %q, want 2026-11-23 11:03:00 UTC+01:00", lastEvent)
	}
	b.screenshot(filepath.Join(shots, "admin.png"))

	// An absolute range, in the browser's zone: before the cut, the seven
	// first deliveries; from it, the two invoices; a range ending before it
	// starts is refused with the reason.
	local := cut.In(berlin).Format("2006-01-02T15:04:05")
	setFilter("f-to", local)
	list("the deliveries before the cut", 7)
	var search string
	b.eval(`location.search`, &search)
	if want := "until=" + strings.ReplaceAll(cut.UTC().Format(time.RFC3339), ":", "%3A"); !strings.Contains(search, want) {
		t.Errorf("the page's URL %q lacks %s", search, want)
	}
	setFilter("f-to", "")
	setFilter("f-from", local)
	list("the invoices", 2)
	setFilter("f-to", cut.Add(-time.Hour).In(berlin).Format("2006-01-02T15:04:05"))
	b.waitJS("the refused range", `document.getElementById('banner').textContent.includes('is not after since')`)
	setFilter("f-from", "")
	setFilter("f-to", "")
	list("every delivery", 9)

	// Search: a record key (even one that looks like markup), a key prefix,
	// an event id, a delivery id.
	for _, s := range []struct {
		q    string
		want []string
	}{
		{xssKey, []string{e.ids["erp"][1], e.ids["crm"][1]}},
		{"crm.vtiger_invoice:*", []string{dispatch.DeliveryID(invoices[1].Timestamp, invoices[1].ID, "nightly", ""), invoice}},
		{"0-1-1:0:new-opportunity", []string{e.ids["erp"][0], e.ids["crm"][0]}},
		{e.ids["legacy"][0], e.ids["legacy"]},
	} {
		setFilter("f-q", s.q)
		want := append([]string(nil), s.want...)
		sort.Strings(want)
		b.waitJS(fmt.Sprintf("the search for %s to list %v", s.q, want), fmt.Sprintf(
			`Array.from(document.querySelectorAll('#deliveries tr.row')).map(r => r.dataset.id).sort().join() === %q`, strings.Join(want, ",")))
	}

	// A JSON body indented, its numbers as sent.
	setFilter("f-q", invoice)
	b.waitJS("the invoice", fmt.Sprintf(`document.querySelectorAll('#deliveries tr.row').length === 1 && document.querySelector('#deliveries tr.row[data-id=%q]')`, invoice))
	b.click(fmt.Sprintf(`#deliveries tr.row[data-id=%q]`, invoice))
	b.waitJS("the invoice's detail", fmt.Sprintf(`document.getElementById('d-id').textContent === %q`, invoice))
	var shown string
	b.eval(`document.getElementById('d-body').textContent`, &shown)
	raw := e.delivery(t, invoice).Body
	strip := func(s string) string { return strings.Join(strings.Fields(s), "") }
	if !strings.Contains(shown, "\n  \"invoiceid\": 1,\n") || !strings.Contains(shown, "\"erp_ref\": 9007199254740993") ||
		!strings.Contains(shown, "\n    {\n      \"") || !strings.Contains(shown, "\"tags\": []") || strip(shown) != strip(raw) {
		t.Errorf("body shown as\n%s\nwant %s indented, tokens unchanged", shown, raw)
	}
	noOverflow("an invoice's detail")

	// A re-run from the page, logged with who and when.
	target := e.ids["erp"][2]
	setFilter("f-q", "")
	list("every delivery", 9)
	b.click(fmt.Sprintf(`#deliveries tr.row[data-id=%q]`, target))
	b.waitJS("the dead delivery", fmt.Sprintf(`document.getElementById('d-id').textContent === %q && !document.getElementById('rerun').disabled`, target))
	b.click("#rerun")
	b.waitJS("the re-run in the log", `document.querySelector('#d-log li.kind-redeliver p.note')`)
	var note string
	b.eval(`document.querySelector('#d-log li.kind-redeliver p.note').textContent`, &note)
	if !regexp.MustCompile(`^redelivered by admin page \(token-authenticated, from 127\.0\.0\.1\) at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC[+-]\d\d:\d\d \(was dead\)$`).MatchString(note) {
		t.Errorf("re-run note = %q, want who (the admin page, with the token, from where) and when", note)
	}
	if strings.Contains(note, adminToken) {
		t.Error("the re-run note carries the admin token")
	}
	// Another attempt fails (erp is still down): the log shows both.
	b.waitJS("the re-run's attempts", `document.querySelectorAll('#d-log li.kind-attempt').length >= 3`)
	noOverflow("a re-run delivery's detail")
	b.screenshot(filepath.Join(shots, "admin-delivery.png"))

	if errs := b.cdp.pageErrors(); len(errs) > 0 {
		t.Errorf("page errors: %v", errs)
	}
}
