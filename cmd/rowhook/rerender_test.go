package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/dispatch"
	"github.com/rowhook/rowhook/dispatch/sqlitestore"
	"github.com/rowhook/rowhook/internal/mariadbtest"
	"github.com/rowhook/rowhook/internal/pipeline"
)

// rowhook redeliver --rerender builds a delivered request again from its
// binlog transaction with the current config: the new webhook URL and body
// fields, over the row as it was at the event (the row was updated since).
// What cannot be rebuilt (the binlog purged, the rule gone or no longer
// matching, the webhook gone, a pending delivery) is refused with the
// reason and changes nothing; plain redeliver still re-sends the stored
// request, purged binlog or not.
func TestRedeliver_Rerender(t *testing.T) {
	s := mariadbtest.New(t, mariadbtest.Options{})
	schema, db := s.NewSchema(t)
	exec := func(q string) {
		t.Helper()
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec("CREATE TABLE orders (id INT PRIMARY KEY, amount INT, note VARCHAR(20))")
	var start string
	if err := db.QueryRow("SELECT @@gtid_binlog_pos").Scan(&start); err != nil {
		t.Fatal(err)
	}
	erp := newERP(t)
	dir := t.TempDir()
	config := func(rule, when, webhook, url, fields string) string {
		return fmt.Sprintf(`
source:
  dsn: %s
  include: ['%s.*']
  start: 'gtid:%s'
  heartbeat: 1s
http:
  listen: 127.0.0.1:0
state:
  path: state.db
admin:
  allow_redeliver: true
rules:
  - name: %s
    table: %s.orders
    on: [insert]
    when: '%s'
    event: Order
    webhooks: [%s]
bodies:
  Order:
    fields:
%s
webhooks:
  %s:
    url: '%s'
`, s.URL(), schema, start, rule, schema, when, webhook, fields, webhook, url)
	}
	v1 := config("order-created", "true", "erp", erp.URL+"/v1/{{ row.id }}", "      amount: row.amount")
	cfgPath := writeConfig(t, dir, v1)
	cfg, _, err := pipeline.Load(context.Background(), cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p, err := startPipeline(ctx, cfg, dir, nil)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	waitReady(t, p.Addr())
	exec("INSERT INTO orders VALUES (1, 100, 'a')")
	exec("FLUSH BINARY LOGS")
	exec("INSERT INTO orders VALUES (2, 200, 'b')")
	erp.wait(t, 2)
	st, err := sqlitestore.Open(filepath.Join(dir, "state.db"), sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	byKey := map[string]dispatch.Delivery{}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		ds, err := st.List(context.Background(), dispatch.Filter{Status: dispatch.StatusOK})
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) == 2 {
			for _, d := range ds {
				byKey[d.Key] = d
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d deliveries ok, want 2", len(ds))
		}
	}
	cancel()
	if err := p.Wait(); err != nil {
		t.Fatalf("pipeline: %v", err)
	}
	d1, d2 := byKey[schema+".orders:1"], byKey[schema+".orders:2"]
	tx1, err := pipeline.EventTx(d1.EventID, d1.Rule)
	if err != nil {
		t.Fatal(err)
	}
	tx2, _ := pipeline.EventTx(d2.EventID, d2.Rule)
	if !strings.HasPrefix(d2.EventID, tx2+":0:") || d1.URL != erp.URL+"/v1/1" {
		t.Fatalf("deliveries: %+v %+v", d1, d2)
	}

	// Today's rows differ from the events'; the binlog holding order 1 is
	// purged.
	exec("UPDATE orders SET amount = 999")
	binlogs := func() []string {
		t.Helper()
		rows, err := db.Query("SHOW BINARY LOGS")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var names []string
		for rows.Next() {
			var name string
			var size any
			if err := rows.Scan(&name, &size); err != nil {
				t.Fatal(err)
			}
			names = append(names, name)
		}
		return names
	}
	logs := binlogs()
	// A file still read by a binlog dump thread (the stopped pipeline's,
	// until the server notices) is kept: purge until it is gone.
	for deadline := time.Now().Add(30 * time.Second); len(binlogs()) == len(logs); time.Sleep(100 * time.Millisecond) {
		exec("PURGE BINARY LOGS TO '" + logs[len(logs)-1] + "'")
		if time.Now().After(deadline) {
			t.Fatalf("binlogs %v not purged", logs)
		}
	}

	unchanged := func(d dispatch.Delivery) {
		t.Helper()
		got, log, err := st.Get(context.Background(), d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != dispatch.StatusOK || got.URL != d.URL || string(got.Body) != string(d.Body) || got.Redelivered != 0 || len(log) != 1 {
			t.Errorf("a refused re-render changed %s: %+v, %d log entries", d.ID, got, len(log))
		}
	}
	refused := func(cfgText, want string, ids ...string) {
		t.Helper()
		path := writeConfig(t, dir, cfgText)
		_, _, err := runCmd(append([]string{"redeliver", "--rerender", "--config", path}, ids...)...)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("redeliver --rerender %v: %v, want an error with %q", ids, err, want)
		}
		unchanged(d1)
		unchanged(d2)
	}
	// The new config: another URL, another body, and a condition that the
	// row held at the event (200) but not today (999).
	v2 := config("order-created", "row.amount < 500", "erp", erp.URL+"/v2/orders/{{ row.id }}",
		"      amount: row.amount\n      doubled: row.amount * 2")
	refused(v2, fmt.Sprintf("binlog for %s is no longer on the source", tx1), d2.ID, d1.ID)
	refused(v2, "the stored request can still be re-sent without --rerender", d1.ID)
	refused(config("order-placed", "true", "erp", erp.URL+"/x", "      a: 1"), `rule "order-created", whose event it delivers, no longer exists`, d2.ID)
	refused(config("order-created", "row.amount > 500", "erp", erp.URL+"/x", "      a: 1"), `rule "order-created" no longer matches row 0 of binlog transaction `+tx2, d2.ID)
	refused(config("order-created", "true", "crm", erp.URL+"/x", "      a: 1"), `webhook "erp" no longer exists`, d2.ID)

	// An event id naming a transaction the source never wrote.
	ghost := d2.NewDelivery
	ghost.EventID, ghost.ID, ghost.Error = "0-1-999:0:order-created", "msg_ghost", "failed at once"
	if _, err := st.Commit(context.Background(), cdc.Checkpoint{}, []dispatch.NewDelivery{ghost}); err != nil {
		t.Fatal(err)
	}
	refused(v2, fmt.Sprintf("read binlog transaction 0-1-999 from root@%s:%d: ", s.Host, s.Port), "msg_ghost")

	path := writeConfig(t, dir, v2)
	out, stderr, err := runCmd("redeliver", "--rerender", d2.ID, "--config", path)
	if err != nil {
		t.Fatalf("redeliver --rerender: %v\n%s", err, stderr)
	}
	if want := d2.ID + "\tPOST " + erp.URL + "/v2/orders/2\n"; out != want || !strings.Contains(stderr, "1 deliveries re-rendered") {
		t.Errorf("redeliver --rerender printed %q (stderr %q), want %q", out, stderr, want)
	}
	got, log, err := st.Get(context.Background(), d2.ID)
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	if err := json.Unmarshal(got.Body, &body); err != nil {
		t.Fatalf("body %q: %v", got.Body, err)
	}
	if got.Status != dispatch.StatusPending || got.URL != erp.URL+"/v2/orders/2" || body["amount"] != 200.0 || body["doubled"] != 400.0 ||
		len(body) != 2 || got.Redelivered != 1 || got.EventID != d2.EventID {
		t.Errorf("after re-render: %+v, body %s", got, got.Body)
	}
	last := log[len(log)-1]
	if last.Kind != dispatch.KindRedeliver || !strings.HasPrefix(last.Note, "re-rendered by rowhook redeliver (") ||
		!strings.HasSuffix(last.Note, " from binlog "+tx2+" (was ok)") {
		t.Errorf("log note: %+v", last)
	}
	// Pending now: a second re-render is refused until it is sent.
	if _, _, err := runCmd("redeliver", "--rerender", d2.ID, "--config", path); err == nil || !strings.Contains(err.Error(), "is pending") {
		t.Errorf("re-render of a pending delivery: %v", err)
	}
	// Plain redeliver re-sends order 1's stored request, binlog or not.
	if out, _, err := runCmd("redeliver", d1.ID, "--config", path); err != nil || out != d1.ID+"\tPOST "+erp.URL+"/v1/1\n" {
		t.Errorf("plain redeliver: %q, %v", out, err)
	}

	// A running rowhook sends both.
	cfg, _, err = pipeline.Load(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	p, err = startPipeline(ctx, cfg, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	reqs := erp.wait(t, 4)
	sent := map[string]string{}
	for _, r := range reqs[2:] {
		sent[r.Path] = string(r.Body)
	}
	if sent["/v1/1"] != `{"amount":100}` || sent["/v2/orders/2"] != `{"amount":200,"doubled":400}` {
		t.Errorf("sent after the re-runs: %v", sent)
	}
	cancel()
	if err := p.Wait(); err != nil {
		t.Errorf("pipeline: %v", err)
	}
}

// --rerender takes ids and a config (its source, rules and webhooks), and
// says so in redeliver's help.
func TestRedeliver_RerenderUsage(t *testing.T) {
	for _, args := range [][]string{
		{"redeliver", "--rerender", "--config", "rowhook.yaml"},
		{"redeliver", "--rerender", "--status", "dead", "--config", "rowhook.yaml"},
		{"redeliver", "--rerender", "msg_x", "--state", "state.db", "--force"},
	} {
		_, _, err := runCmd(args...)
		if err == nil || !strings.Contains(err.Error(), "redeliver --rerender: give delivery ids and --config") {
			t.Errorf("%v: %v", args, err)
		}
	}
	_, help, _ := runCmd("redeliver", "--help")
	for _, want := range []string{"rowhook redeliver --rerender ID... --config FILE", "  -rerender\n",
		"from the row images of the event's binlog transaction", "rowhook redeliver --rerender --config rowhook.yaml msg_"} {
		if !strings.Contains(help, want) {
			t.Errorf("redeliver --help lacks %q:\n%s", want, help)
		}
	}
}
