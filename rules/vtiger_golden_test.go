package rules

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/internal/mariadbtest"
	"github.com/rowhook/rowhook/internal/vtiger"
)

var srv *mariadbtest.Server

func TestMain(m *testing.M) { os.Exit(mariadbtest.Main(m, &srv, mariadbtest.Options{})) }

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// step is one script Vtiger (or a sidecar) runs at a given time; the
// session's timestamp is fixed so NOW() and the binlog commit times are
// reproducible.
type step struct {
	at  time.Time
	sql string
}

var goldenT0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func testdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "vtiger", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// updateDeleteParts splits the fixture's update/delete script at its
// "-- (A)", "-- (B1)", … sections.
func updateDeleteParts(t *testing.T) map[string]string {
	t.Helper()
	parts := map[string]string{}
	cur := "head"
	for _, line := range strings.SplitAfter(vtiger.UpdateDeletePotential, "\n") {
		if strings.HasPrefix(line, "-- (") {
			cur = line[4:strings.IndexByte(line, ')')]
		}
		parts[cur] += line
	}
	for _, k := range []string{"head", "A", "B1", "B2", "C"} {
		if parts[k] == "" {
			t.Fatalf("fixture update_delete_potential.sql has no section %s", k)
		}
	}
	return parts
}

var goldenRules = []RuleConfig{
	{Name: "new-account", Table: "vtiger_account", On: []string{"insert"}, Event: "NewAccount", Webhooks: []string{"erp"}},
	{Name: "new-contact", Table: "vtiger_contactdetails", On: []string{"insert"}, Event: "NewContact", Webhooks: []string{"erp"}},
	{Name: "new-lead", Table: "vtiger_leaddetails", On: []string{"insert"}, Event: "NewLead", Webhooks: []string{"erp"}},
	{Name: "new-ticket", Table: "vtiger_troubletickets", On: []string{"insert"}, Event: "NewTicket", Webhooks: []string{"helpdesk"}},
	{Name: "new-opportunity", Table: "vtiger_potential", On: []string{"insert"}, When: `row.amount > 1000 && row.sales_stage != "Closed Lost"`, Event: "NewOpportunity", Webhooks: []string{"erp"}, Once: true},
	{Name: "opportunity-updated", Table: "vtiger_potential", On: []string{"update"}, Event: "OpportunityUpdated", Webhooks: []string{"erp"}},
	{Name: "opportunity-cf-updated", Table: "vtiger_potentialscf", On: []string{"update"}, When: `changed("cf_856")`, Event: "OpportunityUpdated", Webhooks: []string{"erp"}},
	{Name: "opportunity-deleted", Table: "vtiger_crmentity", On: []string{"update"}, When: `changedTo("deleted", 1) && row.setype == "Potentials"`, Event: "OpportunityDeleted", Webhooks: []string{"erp"}},
}

// runScenario loads the Vtiger schema into a fresh database, runs the steps
// one statement (= one binlog transaction) at a time, reads each step's
// transactions back from the binlog files and feeds them to an engine whose
// source is the same database, flushing idle windows between steps as a
// live rowhook would. It returns the events, normalised for golden files.
func runScenario(t *testing.T, steps []step, withSource bool) []map[string]any {
	t.Helper()
	ctx := context.Background()
	schema, db := srv.NewSchema(t)
	if err := vtiger.Load(ctx, db, schema); err != nil {
		t.Fatal(err)
	}
	var source *sql.DB
	if withSource {
		source = db
	}
	e := mustEngine(t, Config{Rules: goldenRules, Vtiger: VtigerConfig{Schema: schema}}, Deps{Source: source})
	conn, err := vtiger.Session(ctx, db, schema)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	file, pos := masterStatus(t, db)
	var events []Event
	txOrdinal := map[string]int{}
	for _, s := range steps {
		if _, err := conn.ExecContext(ctx, fmt.Sprintf("SET timestamp = %d", s.at.Unix())); err != nil {
			t.Fatal(err)
		}
		if err := vtiger.Exec(ctx, conn, s.sql); err != nil {
			t.Fatal(err)
		}
		files, err := filepath.Glob(filepath.Join(srv.Dir, "binlog", "mysql-bin.[0-9]*"))
		if err != nil || len(files) == 0 {
			t.Fatalf("binlog files: %v %v", files, err)
		}
		err = cdc.ReadFiles(ctx, files, cdc.DecoderConfig{Flavor: "mariadb", Filter: cdc.NewFilter([]string{schema + ".*"}, nil)},
			cdc.FileRange{FromFile: file, From: pos}, func(tx *cdc.Transaction) error {
				file, pos = tx.Checkpoint.File, tx.Checkpoint.Pos
				if len(tx.Changes) == 0 {
					return nil // other tests' transactions, DDL
				}
				txOrdinal[tx.ID] = len(txOrdinal) + 1
				evs, err := e.Process(ctx, tx)
				events = append(events, evs...)
				return err
			}, nil)
		if err != nil {
			t.Fatal(err)
		}
		// The source goes idle after each step: windows due by then close.
		evs, err := e.Flush(ctx, s.at.Add(30*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, evs...)
	}
	if n := e.Pending(); n != 0 {
		t.Errorf("%d events still held after the last flush", n)
	}
	out := []map[string]any{}
	for _, ev := range events {
		if want := ev.Change.ID + ":" + ev.Rule; ev.ID != want {
			t.Errorf("event id %q, want change id + rule %q", ev.ID, want)
		}
		body, err := json.Marshal(ev.Body)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, map[string]any{
			"id":        fmt.Sprintf("tx%d:%d:%s", txOrdinal[ev.Change.Tx], ev.Change.Seq, ev.Rule),
			"rule":      ev.Rule,
			"event":     ev.Name,
			"key":       strings.Replace(ev.Key, schema+".", "crm.", 1),
			"once":      ev.Once,
			"webhooks":  ev.Webhooks,
			"timestamp": ev.Timestamp.UTC().Format(time.RFC3339),
			"body":      json.RawMessage(body),
		})
	}
	return out
}

func masterStatus(t *testing.T, db *sql.DB) (string, uint32) {
	t.Helper()
	rows, err := db.Query("SHOW MASTER STATUS")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	if !rows.Next() {
		t.Fatal("SHOW MASTER STATUS: no row (binlog off?)")
	}
	vals := make([]any, len(cols))
	var file string
	var pos uint32
	vals[0], vals[1] = &file, &pos
	for i := 2; i < len(cols); i++ {
		vals[i] = new(sql.RawBytes)
	}
	if err := rows.Scan(vals...); err != nil {
		t.Fatal(err)
	}
	return file, pos
}

// golden compares got with testdata/<name>/events.json (-update rewrites it).
func golden(t *testing.T, name string, got []map[string]any) {
	t.Helper()
	js, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	js = append(js, '\n')
	path := filepath.Join("testdata", name, "events.json")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, js, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./rules -run %s -update to create it)", err, t.Name())
	}
	if !bytes.Equal(want, js) {
		t.Errorf("events differ from %s (go test ./rules -run %s -update rewrites it):\n%s", path, t.Name(), lineDiff(string(want), string(js)))
	}
}

func TestVtiger_Golden(t *testing.T) {
	ud := updateDeleteParts(t)
	sec := func(n int) time.Time { return goldenT0.Add(time.Duration(n) * time.Second) }
	tests := []struct {
		name  string
		steps []step
	}{
		{"create_opportunity", []step{
			{sec(0), testdata(t, "create_account.sql")},
			{sec(60), vtiger.CreatePotential},
		}},
		{"update_delete_opportunity", []step{
			{sec(0), testdata(t, "create_account.sql")},
			{sec(60), vtiger.CreatePotential},
			{sec(120), ud["head"] + ud["A"]},
			{sec(180), ud["B1"]},
			{sec(240), ud["B2"]},
			{sec(300), ud["C"]},
		}},
		{"created_and_deleted_in_window", []step{
			{sec(0), testdata(t, "create_account.sql")},
			{sec(60), vtiger.CreatePotential + ";\n" + ud["head"] + ud["C"]},
		}},
		{"new_contact", []step{
			{sec(0), testdata(t, "create_account.sql")},
			{sec(60), testdata(t, "create_contact.sql")},
		}},
		{"new_lead", []step{{sec(0), testdata(t, "create_lead.sql")}}},
		{"new_ticket", []step{
			{sec(0), testdata(t, "create_account.sql")},
			{sec(60), testdata(t, "create_ticket.sql")},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			golden(t, tt.name, runScenario(t, tt.steps, true))
		})
	}
}
