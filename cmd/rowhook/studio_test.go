package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rowhook/rowhook/internal/mariadbtest"
)

type studioAnswer struct {
	Scanned int
	Matches []struct {
		ID       string
		Key      string
		Body     map[string]any
		Requests []struct {
			URL     string
			Headers map[string][]string
			Body    string
		}
	}
	Errors []struct {
		Line, Col     int
		Path, Message string
	}
	Warnings []string
	YAML     string
}

func studioTry(t *testing.T, base, token, rule string) (int, studioAnswer) {
	t.Helper()
	code, body := requestBody(t, "POST", base+"/studio/try", token, rule)
	var a studioAnswer
	if err := json.Unmarshal([]byte(body), &a); err != nil && code != 401 {
		t.Fatalf("answer %d %s: %v", code, body, err)
	}
	return code, a
}

// The studio over a running pipeline: the reader fills the ring, a rule
// tried there matches exactly what rowhook replay finds in the same binlog,
// nothing is enqueued or sent, and bad rules get located errors.
func TestStudio_LivePipelineMatchesReplay(t *testing.T) {
	s := mariadbtest.New(t, mariadbtest.Options{})
	schema, db := s.NewSchema(t)
	for _, q := range []string{
		"CREATE TABLE deals (id INT PRIMARY KEY, customer VARCHAR(64), amount DECIMAL(10,2), api_password VARCHAR(64))",
		"CREATE TABLE nothing_here (id INT PRIMARY KEY)",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	var hits atomic.Int64
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	t.Cleanup(recv.Close)
	const token = "studio-tok-77"
	cfgText := fmt.Sprintf(`
source:
  dsn: %s
  include: ['%s.*']
  heartbeat: 1s
http:
  listen: 127.0.0.1:0
state:
  path: state.db
admin:
  token: '%s'
studio:
  enabled: true
  size: 100
webhooks:
  erp:
    url: %s/deals/{{ row.id }}?api_key=K3Y-SECRET
    auth: { type: bearer, token: BEARER-SECRET }
rules:
  - name: unrelated
    table: %s.nothing_here
    event: RowChanged
    webhooks: [erp]
`, s.URL(), schema, token, recv.URL, schema)
	dir := t.TempDir()
	cfgPath := writeConfig(t, dir, cfgText)
	p, _ := startTestPipeline(t, cfgPath)
	// Listening on loopback the token is not needed; send it anyway.
	base := "http://" + localAddr(t, p.Addr())

	for i := 1; i <= 8; i++ {
		if _, err := db.Exec("INSERT INTO deals VALUES (?, ?, ?, 'hunter2')", i, fmt.Sprint("Customer ", i), i*500); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec("UPDATE deals SET amount = amount + 3000 WHERE id IN (1, 2)"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("DELETE FROM deals WHERE id = 8"); err != nil {
		t.Fatal(err)
	}
	// Wait until the ring holds all 11 changes.
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, body := request(t, "GET", base+"/studio/changes?table="+schema+".deals", token)
		var ch struct{ Changes []map[string]any }
		_ = json.Unmarshal([]byte(body), &ch)
		if len(ch.Changes) == 11 {
			if strings.Contains(body, "hunter2") {
				t.Errorf("a redacted column's value is in /studio/changes")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ring holds %d changes, want 11: %s", len(ch.Changes), body)
		}
		time.Sleep(100 * time.Millisecond)
	}

	rule := `name: big-deals
table: deals
on: [insert, update]
when: row.amount > 2000
body:
  id: row.id
  customer: row.customer
  doubled: row.amount * 2
webhooks: [erp]
`
	code, a := studioTry(t, base, token, rule)
	if code != 200 {
		t.Fatalf("try: %d %+v", code, a)
	}
	var ids []string
	for _, m := range a.Matches {
		ids = append(ids, m.ID)
		if len(m.Requests) != 1 || !strings.Contains(m.Requests[0].URL, "/deals/") {
			t.Errorf("match %s: requests %+v", m.ID, m.Requests)
		}
		for _, r := range m.Requests {
			all, _ := json.Marshal(r)
			if bytes.Contains(all, []byte("K3Y-SECRET")) || bytes.Contains(all, []byte("BEARER-SECRET")) {
				t.Errorf("secret shown: %s", all)
			}
		}
	}
	// rows 5..7 inserted over 2000, rows 1 and 2 updated over 2000 (row 8's
	// insert too: 4000).
	if len(ids) != 6 {
		t.Errorf("matches %v, want 6", ids)
	}

	// rowhook replay over the same binlog, with the same rule.
	files, err := filepath.Glob(filepath.Join(s.Dir, "binlog", "mysql-bin.[0-9]*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("binlog files %v: %v", files, err)
	}
	replayCfg := writeTemp(t, "replay.yaml", fmt.Sprintf(`source:
  dsn: %s
  include: ['%s.*']
webhooks:
  erp:
    url: %s/x
rules:
  - name: big-deals
    table: deals
    on: [insert, update]
    when: row.amount > 2000
    event: b
    webhooks: [erp]
bodies:
  b:
    fields:
      id: row.id
`, s.URL(), schema, recv.URL))
	out, errOut, rc := runCommand(t, append([]string{"replay", "--config", replayCfg, "--progress", "never"}, files...)...)
	if rc != 0 {
		t.Fatalf("replay: %d %s", rc, errOut)
	}
	var replayIDs []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var x struct{ ID string }
		if err := json.Unmarshal([]byte(l), &x); err == nil && x.ID != "" {
			replayIDs = append(replayIDs, x.ID)
		}
	}
	slices.Sort(ids)
	slices.Sort(replayIDs)
	if !slices.Equal(ids, replayIDs) || len(ids) == 0 {
		t.Errorf("studio matched %v\nreplay found  %v", ids, replayIDs)
	}

	// Bad rules: 422 with located errors, never a 500.
	for _, bad := range []struct{ rule, path, msg string }{
		{"table: deals\nwhen: row.amout > 1\n", "when", `did you mean "amount"`},
		{"table: deals\nwhen: row.amount >\n", "when", ""},
		{"table: deals\nevent: Nope\n", "event", "unknown body function"},
		{"{\"table\": \"deals\", \"when\": \"row.customer == 5\"}", "when", "text column"},
		{"table: [\n", "", ""},
	} {
		code, a := studioTry(t, base, token, bad.rule)
		if code != 422 || len(a.Errors) == 0 || a.Errors[0].Path != bad.path && bad.path != "" || !strings.Contains(a.Errors[0].Message, bad.msg) || a.Errors[0].Line == 0 {
			t.Errorf("%q: %d %+v, want 422 at %s with %q", bad.rule, code, a.Errors, bad.path, bad.msg)
		}
	}
	// A runaway expression is stopped with a clear message.
	code, a = studioTry(t, base, token, "table: deals\nwhen: 'all(1..100000000, {# > 0})'\n")
	if code != 200 || len(a.Matches) != 0 || len(a.Warnings) == 0 || !strings.Contains(a.Warnings[0], "memory budget") {
		t.Errorf("runaway: %d %+v", code, a)
	}

	// Nothing enqueued, nothing sent.
	stats, err := p.State().Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range stats {
		if st.Count != 0 {
			t.Errorf("store holds deliveries: %+v", stats)
		}
	}
	if hits.Load() != 0 {
		t.Errorf("the receiver got %d requests", hits.Load())
	}
}

// rowhook studio serves the page and the API over binlog files offline.
func TestStudio_Offline(t *testing.T) {
	s := mariadbtest.New(t, mariadbtest.Options{})
	schema, db := s.NewSchema(t)
	for _, q := range []string{
		"CREATE TABLE deals (id INT PRIMARY KEY, stage VARCHAR(32))",
		"INSERT INTO deals VALUES (1, 'Open'), (2, 'Closed Won'), (3, 'Open')",
		"UPDATE deals SET stage = 'Closed Won' WHERE id = 3",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	files, _ := filepath.Glob(filepath.Join(s.Dir, "binlog", "mysql-bin.[0-9]*"))
	cfg := writeTemp(t, "rowhook.yaml", fmt.Sprintf("source:\n  dsn: %s\n  include: ['%s.*']\n", s.URL(), schema))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var errOut syncWriter
	go func() {
		done <- run(ctx, append([]string{"studio", "--config", cfg, "--listen", addr}, files...), stdio{in: strings.NewReader(""), out: &bytes.Buffer{}, err: &errOut})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("studio: %v", err)
		}
	})
	base := "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		if resp, err := http.Get(base + "/ui/studio.html"); err == nil {
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("studio.html: %d", resp.StatusCode)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("studio did not listen: %s", errOut.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	code, a := studioTry(t, base, "", "table: deals\nwhen: row.stage == 'Closed Won'\n")
	if code != 200 || len(a.Matches) != 2 || a.Scanned != 4 {
		t.Fatalf("try: %d %+v", code, a)
	}
	// Offline, column names are checked against the binlog's own.
	code, a = studioTry(t, base, "", "table: deals\nwhen: row.stgae == 'Open'\n")
	if code != 422 || len(a.Errors) != 1 || !strings.Contains(a.Errors[0].Message, `did you mean "stage"`) || a.Errors[0].Line != 2 {
		t.Errorf("misspelt column offline: %d %+v", code, a.Errors)
	}
	if !strings.Contains(errOut.String(), "4 changes kept") {
		t.Errorf("stderr: %s", errOut.String())
	}
}

// A bad studio: section is refused with the place in the file.
func TestStudio_ConfigErrors(t *testing.T) {
	path := writeTemp(t, "rowhook.yaml", checkConfig+"studio:\n  enabled: true\n  size: 0\n  redact: ['[']\n")
	_, errOut, code := runCommand(t, "check", "--config", path, "--offline")
	line := strings.Count(checkConfig, "\n") + 3
	if code != 1 || !strings.Contains(errOut, fmt.Sprintf("%s:%d:", path, line)) || !strings.Contains(errOut, "studio.size: must be between 1 and 100000") ||
		!strings.Contains(errOut, "studio.redact[0]") {
		t.Errorf("exit %d: %s", code, errOut)
	}
	// Off by default: no /studio routes.
	path = writeTemp(t, "rowhook.yaml", checkConfig)
	if out, errOut, code := runCommand(t, "check", "--config", path, "--offline"); code != 0 {
		t.Errorf("default config: %d %s %s", code, out, errOut)
	}
}

// localAddr is addr with an unspecified host replaced by 127.0.0.1.
func localAddr(t *testing.T, addr string) string {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// requestBody sends body with the bearer token and returns the status and
// the answer.
func requestBody(t *testing.T, method, url, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func request(t *testing.T, method, url, token string) (int, string) {
	t.Helper()
	return requestBody(t, method, url, token, "")
}
