package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rowhook/rowhook/internal/mariadbtest"
)

// A column is renamed on the source while rowhook runs: the body field that
// reads it by its old name goes out null from then on, and rowhook says so
// once (naming rule, field and column) and counts each such event on
// /metrics, instead of sending nulls in silence.
func TestRun_RenamedColumnIsLoud(t *testing.T) {
	s := mariadbtest.New(t, mariadbtest.Options{})
	schema, db := s.NewSchema(t)
	exec := func(q string) {
		t.Helper()
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec("CREATE TABLE contacts (id INT PRIMARY KEY, email VARCHAR(80), phone VARCHAR(20) NULL)")
	var start string
	if err := s.DB().QueryRow("SELECT @@gtid_binlog_pos").Scan(&start); err != nil {
		t.Fatal(err)
	}
	crm := newERP(t)
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
rules:
  - name: contact-created
    table: %s.contacts
    on: [insert]
    event: Contact
    webhooks: [crm]
bodies:
  Contact:
    fields:
      id: row.id
      email: row.email
      phone: row.phone
webhooks:
  crm:
    url: %s/contacts
`, s.URL(), schema, start, schema, crm.URL))
	p, logs := startTestPipeline(t, cfgPath)

	exec("INSERT INTO contacts (id, email) VALUES (1, 'a@example.com')")
	crm.wait(t, 1)
	exec("ALTER TABLE contacts RENAME COLUMN email TO email_address")
	for i := 2; i <= 4; i++ {
		exec(fmt.Sprintf("INSERT INTO contacts (id, email_address) VALUES (%d, 'c%d@example.com')", i, i))
	}
	reqs := crm.wait(t, 4)
	var emails []any
	for _, r := range reqs {
		var body map[string]any
		if err := json.Unmarshal(r.Body, &body); err != nil {
			t.Fatalf("body %s: %v", r.Body, err)
		}
		emails = append(emails, body["email"])
		if body["phone"] != nil {
			t.Errorf("phone = %v, want null (NULL in the row)", body["phone"])
		}
	}
	if js, _ := json.Marshal(emails); string(js) != `["a@example.com",null,null,null]` {
		t.Errorf("email fields = %s", js)
	}

	key := `rowhook_rule_body_field_errors_total{rule="contact-created"}`
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, ok := scrape(t, p.Addr()).series[key]
		if ok && got == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v (present: %v), want 3: one per event sent with the null field", key, got, ok)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var warnings []string
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "column the table does not have") {
			warnings = append(warnings, line)
		}
	}
	if len(warnings) != 1 {
		t.Fatalf("%d drift warnings for three events of one table version, want 1:\n%s", len(warnings), strings.Join(warnings, "\n"))
	}
	for _, want := range []string{"level=WARN", "rule=contact-created", "field=email", "column=email", "email_address"} {
		if !strings.Contains(warnings[0], want) {
			t.Errorf("warning lacks %q: %s", want, warnings[0])
		}
	}
	if strings.Contains(warnings[0], "field=phone") {
		t.Errorf("warning names the NULL but present phone column: %s", warnings[0])
	}
}
