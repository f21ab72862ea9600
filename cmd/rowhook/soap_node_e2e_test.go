package main

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rowhook/rowhook/internal/mariadbtest"
	"github.com/rowhook/rowhook/internal/peers"
)

// rowhook against a node-soap service (a third-party SOAP stack, not our
// own fixture): a document/literal operation with nested and repeated
// types over SOAP 1.1 and SOAP 1.2, its answer (XML special characters,
// non-ASCII, a repeated element) written back into the CRM row, and its
// faults in both dialects in both envelopes: node-soap's own Server fault
// for a handler exception is retried and its Reason reaches the delivery
// log; Sender and Client faults fail at once.
func TestRun_NodeSOAPService(t *testing.T) {
	svc := peers.StartSOAP(t)
	s := mariadbtest.New(t, mariadbtest.Options{})
	schema, db := s.NewSchema(t)
	if _, err := db.Exec(`CREATE TABLE accounts (
		id INT PRIMARY KEY, via VARCHAR(3), name VARCHAR(80), owner_name VARCHAR(80), owner_email VARCHAR(80),
		city VARCHAR(40), tags VARCHAR(80), sku VARCHAR(20), qty INT, price DECIMAL(10,2),
		erp_ref VARCHAR(40), erp_note VARCHAR(400), erp_lines INT, erp_total VARCHAR(20), erp_skus VARCHAR(80))`); err != nil {
		t.Fatal(err)
	}
	var start string
	s.DB().QueryRow("SELECT @@gtid_binlog_pos").Scan(&start)
	rule := func(version string) string {
		return fmt.Sprintf(`
  - name: sync-%[1]s
    table: %[2]s.accounts
    on: [insert]
    when: 'row.via == "%[1]s"'
    event: RowChanged
    webhooks: [erp%[1]s]
    writeback:
      table: %[2]s.accounts
      key: { id: 'row.id' }
      set:
        erp_ref: 'response.soap.accountRef'
        erp_note: 'response.soap.note'
        erp_lines: 'response.soap.summary.lineCount'
        erp_total: 'response.soap.summary.total'
        erp_skus: 'join(response.soap.summary.sku, ",")'`, version, schema)
	}
	webhook := func(version string) string {
		return fmt.Sprintf(`
  erp%[1]s:
    url: %[2]s/%[4]s
    content_type: soap
    retry: { max_attempts: 3, initial_interval: 100ms, max_interval: 300ms }
    soap:
      wsdl: %[2]s/accounts?wsdl
      operation: SyncAccount
      soap_version: "%[3]s"
      params:
        account.name: row.name
        account.owner.name: row.owner_name
        account.owner.email: row.owner_email
        account.owner.address.city: row.city
        account.owner.address.country: '"DE"'
        account.tag: 'split(row.tags, ",")'
        account.line: '[{"sku": row.sku, "quantity": row.qty, "price": row.price}, {"sku": "GIFT<&>", "quantity": 1, "price": "0.00"}]'`,
			strings.ReplaceAll(version, ".", ""), svc.URL, version, map[string]string{"1.1": "accounts", "1.2": "accounts12"}[version])
	}
	cfgPath := writeConfig(t, t.TempDir(), fmt.Sprintf(`
source:
  dsn: %s
  include: ['%s.*']
  start: 'gtid:%s'
  heartbeat: 1s
http:
  listen: 127.0.0.1:0
state:
  path: state.db
rules:%s%s
webhooks:%s%s
writeback:
  dsn: mysql://root@127.0.0.1:%d/%s
`, s.URL(), schema, start, rule("11"), rule("12"), webhook("1.1"), webhook("1.2"), s.Port, schema))
	p, logs := startTestPipeline(t, cfgPath)

	type account struct {
		id                            int
		via, name, owner, email, city string
		tags, sku                     string
		qty                           int
		price                         string
	}
	ok := []account{
		{1, "11", `O'Brien & "Sons" <GmbH>`, "Zoë Ærø", "zoe@example.com", "Köln", "vip,b2b", "SKU-1", 3, "19.99"},
		{2, "12", `Tom & Jerry's <SOAP 1.2>`, "Jürgen", "j@example.com", "Zürich", "one", "SKU-&", 2, "0.50"},
	}
	faults := []struct {
		account
		permanent bool
		code      string
		reason    string
	}{
		// node-soap's answer to a thrown Error: Code/Reason in either envelope.
		{account{3, "11", "boom-11", "A", "a@example.com", "X", "t", "S", 1, "1.00"}, false, "Server", "Error: ledger locked for boom-11"},
		{account{4, "12", "boom-12", "A", "a@example.com", "X", "t", "S", 1, "1.00"}, false, "Server", "Error: ledger locked for boom-12"},
		// A Sender fault written SOAP 1.2 style: in a 1.1 envelope, then a 1.2 one.
		{account{5, "11", "reject12-in-11", "A", "a@example.com", "X", "t", "S", 1, "1.00"}, true, "Sender", "account reject12-in-11 rejected: owner email is not allowed"},
		{account{6, "12", "reject12-in-12", "A", "a@example.com", "X", "t", "S", 1, "1.00"}, true, "Sender", "account reject12-in-12 rejected: owner email is not allowed"},
		// A Client fault written SOAP 1.1 style: in a 1.2 envelope, then a 1.1 one.
		{account{7, "12", "reject11-in-12", "A", "a@example.com", "X", "t", "S", 1, "1.00"}, true, "Client", "account reject11-in-12 rejected: tag list is invalid"},
		{account{8, "11", "reject11-in-11", "A", "a@example.com", "X", "t", "S", 1, "1.00"}, true, "Client", "account reject11-in-11 rejected: tag list is invalid"},
	}
	all := append([]account(nil), ok...)
	for _, f := range faults {
		all = append(all, f.account)
	}
	for _, a := range all {
		if _, err := db.Exec("INSERT INTO accounts (id, via, name, owner_name, owner_email, city, tags, sku, qty, price) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			a.id, a.via, a.name, a.owner, a.email, a.city, a.tags, a.sku, a.qty, a.price); err != nil {
			t.Fatal(err)
		}
	}

	// Success: node-soap's answer, special characters and all, in the row.
	for _, a := range ok {
		ref := fmt.Sprintf("ACC-%s-%d-2", a.via, len(a.name))
		waitValue(t, s, fmt.Sprintf("SELECT COALESCE(erp_ref, '') FROM %s.accounts WHERE id = %d", schema, a.id), ref)
		var note, total, skus string
		var lines int
		if err := db.QueryRow("SELECT erp_note, erp_lines, erp_total, erp_skus FROM accounts WHERE id = ?", a.id).Scan(&note, &lines, &total, &skus); err != nil {
			t.Fatal(err)
		}
		wantNote := fmt.Sprintf(`Tom & Jerry <"%s"> 'since 1940' %s @ %s [%s]`, a.name, a.email, a.city, strings.ReplaceAll(a.tags, ",", "|"))
		if note != wantNote {
			t.Errorf("row %d: erp_note = %q, want %q", a.id, note, wantNote)
		}
		if lines != 2 || skus != a.sku+",GIFT<&>" {
			t.Errorf("row %d: erp_lines = %d, erp_skus = %q", a.id, lines, skus)
		}
		var wantTotal string
		db.QueryRow("SELECT CAST(? * ? AS DECIMAL(10,2))", a.qty, a.price).Scan(&wantTotal)
		if total != wantTotal {
			t.Errorf("row %d: erp_total = %q, want %q", a.id, total, wantTotal)
		}
	}
	// node-soap parsed the nested and repeated input as the WSDL says.
	calls := map[string][]peers.Call{}
	for _, c := range svc.Calls() {
		name, _ := c.Args["account"].(map[string]any)["name"].(string)
		calls[name] = append(calls[name], c)
	}
	for _, a := range ok {
		cs := calls[a.name]
		if len(cs) != 1 {
			t.Fatalf("%q: %d calls, want 1", a.name, len(cs))
		}
		path := map[string]string{"11": "/accounts", "12": "/accounts12"}[a.via]
		if cs[0].Path != path {
			t.Errorf("%q went to %s, want %s", a.name, cs[0].Path, path)
		}
		want := map[string]any{
			"name":  a.name,
			"owner": map[string]any{"name": a.owner, "email": a.email, "address": map[string]any{"city": a.city, "country": "DE"}},
			"tag":   strings.Split(a.tags, ","),
			"line": []any{
				map[string]any{"sku": a.sku, "quantity": float64(a.qty), "price": mustFloat(t, a.price)},
				map[string]any{"sku": "GIFT<&>", "quantity": float64(1), "price": float64(0)},
			},
		}
		got, _ := json.Marshal(cs[0].Args["account"])
		wantJSON, _ := json.Marshal(want)
		var g, w any
		json.Unmarshal(got, &g)
		json.Unmarshal(wantJSON, &w)
		if !reflect.DeepEqual(g, w) {
			t.Errorf("%q: node-soap parsed\n%s\nwant\n%s", a.name, got, wantJSON)
		}
	}

	// Faults: wait until each has settled, then check attempts and log.
	type view struct {
		Status    string `json:"status"`
		LastError string `json:"last_error"`
		Attempts  int    `json:"attempts"`
		Key       string `json:"record_key"`
	}
	byID := map[int]view{}
	deadline := time.Now().Add(60 * time.Second)
	for {
		var list struct {
			Deliveries []view `json:"deliveries"`
		}
		got := httpGet(t, "http://"+p.Addr()+"/deliveries?limit=1000")
		if err := json.Unmarshal([]byte(got), &list); err != nil {
			t.Fatalf("GET /deliveries: %v\n%s", err, got)
		}
		for _, d := range list.Deliveries {
			var id int
			if _, err := fmt.Sscanf(d.Key[strings.LastIndex(d.Key, ":")+1:], "%d", &id); err == nil {
				byID[id] = d
			}
		}
		settled := 0
		for _, f := range faults {
			if d := byID[f.id]; d.Status == "dead" || d.Status == "failed" {
				settled++
			}
		}
		if settled == len(faults) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("faults not settled after 60s:\n%s", got)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, f := range faults {
		d := byID[f.id]
		wantAttempts := 3
		if f.permanent {
			wantAttempts = 1
		}
		if d.Attempts != wantAttempts {
			t.Errorf("%s: %s after %d attempts, want %d (%s fault, permanent %v)", f.name, d.Status, d.Attempts, wantAttempts, f.code, f.permanent)
		}
		if !strings.Contains(d.LastError, "soap fault "+f.code) || !strings.Contains(d.LastError, f.reason) {
			t.Errorf("%s: last_error %q lacks the code %s and the reason %q", f.name, d.LastError, f.code, f.reason)
		}
	}
	calls = map[string][]peers.Call{}
	for _, c := range svc.Calls() {
		name, _ := c.Args["account"].(map[string]any)["name"].(string)
		calls[name] = append(calls[name], c)
	}
	for _, f := range faults {
		want := 3
		if f.permanent {
			want = 1
		}
		if n := len(calls[f.name]); n != want {
			t.Errorf("%s: node-soap was called %d times, want %d", f.name, n, want)
		}
	}
	if !strings.Contains(logs.String(), "ledger locked for boom-11") {
		t.Errorf("the Server fault's reason is not in rowhook's log:\n%s", logs.String())
	}
}

func mustFloat(t *testing.T, s string) float64 {
	t.Helper()
	var f float64
	if _, err := fmt.Sscanf(s, "%g", &f); err != nil {
		t.Fatal(err)
	}
	return f
}
