package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rowhook/rowhook/internal/mariadbtest"
)

// get answers GET url: status and body ("" and 0 when nothing answers).
func get(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// A source down when rowhook starts is not a crash: rowhook serves
// /healthz and /metrics, /readyz answers 503 naming source.dsn and the next
// attempt, and once the source is up it starts and delivers. rowhook check
// still fails on the unreachable source.
func TestRun_SourceDownAtStart(t *testing.T) {
	bin := buildRowhook(t)
	s := mariadbtest.New(t, mariadbtest.Options{})
	schema, db := s.NewSchema(t)
	if _, err := db.Exec("CREATE TABLE deals (id INT PRIMARY KEY, name VARCHAR(40))"); err != nil {
		t.Fatal(err)
	}
	hs, got := countReceiver(t)
	listen := freeAddr(t)
	cfgPath := writeConfig(t, t.TempDir(), dealsConfig(s, schema, listen, hs.URL))
	s.Kill()

	if out, errOut, code := runCommand(t, "check", "--config", cfgPath); code != 1 || !strings.Contains(errOut, "source.dsn") {
		t.Errorf("check with the source down: exit %d, want 1 naming source.dsn\n%s%s", code, out, errOut)
	}

	logs := &syncWriter{}
	proc := startRowhook(t, bin, cfgPath, logs)
	t.Cleanup(func() {
		if proc.running() {
			proc.kill()
		}
		if t.Failed() {
			t.Logf("rowhook log:\n%s", logs)
		}
	})
	var ready string
	waitFor(t, 30*time.Second, "/readyz naming the source", func() bool {
		code, body := get("http://" + listen + "/readyz")
		ready = body
		return code == http.StatusServiceUnavailable && strings.Contains(body, "source.dsn") && strings.Contains(body, "retrying in")
	})
	if !strings.Contains(ready, "connection refused") {
		t.Errorf("/readyz does not say why: %s", ready)
	}
	if code, body := get("http://" + listen + "/healthz"); code != 200 {
		t.Errorf("/healthz with the source down: %d %s", code, body)
	}
	if code, body := get("http://" + listen + "/metrics"); code != 200 || !strings.Contains(body, "rowhook_build_info") {
		t.Errorf("/metrics with the source down: %d", code)
	}
	// Several attempts, and still running.
	waitFor(t, 30*time.Second, "a few attempts logged", func() bool {
		return strings.Count(logs.String(), "retrying") >= 3
	})
	if !proc.running() {
		t.Fatalf("rowhook exited with the source down: %v", proc.err)
	}

	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	waitReady(t, listen)
	s.Exec(t, "INSERT INTO "+schema+".deals VALUES (1, 'written once the source is back')")
	waitFor(t, 30*time.Second, "the row delivered", func() bool { return got.Load() >= 1 })
	if err := proc.stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
	if n := got.Load(); n != 1 {
		t.Errorf("receiver got %d requests, want 1", n)
	}
}

// A wrong source password at start is a configuration error: rowhook exits
// 1 at once, naming source.dsn, and does not retry.
func TestRun_WrongPasswordAtStartExits(t *testing.T) {
	bin := buildRowhook(t)
	s := mariadbtest.New(t, mariadbtest.Options{})
	schema, db := s.NewSchema(t)
	if _, err := db.Exec("CREATE TABLE deals (id INT PRIMARY KEY, name VARCHAR(40))"); err != nil {
		t.Fatal(err)
	}
	s.Exec(t, "CREATE USER 'rh_pw'@'%' IDENTIFIED BY 'right-pw'")
	hs, _ := countReceiver(t)
	text := strings.Replace(dealsConfig(s, schema, freeAddr(t), hs.URL), s.URL(), fmt.Sprintf("mysql://rh_pw:wrong-pw@127.0.0.1:%d/", s.Port), 1)
	logs := &syncWriter{}
	proc := startRowhook(t, bin, writeConfig(t, t.TempDir(), text), logs)
	select {
	case <-proc.exited:
	case <-time.After(60 * time.Second):
		proc.kill()
		t.Fatalf("rowhook kept running with a wrong source password:\n%s", logs)
	}
	if proc.err == nil || !strings.Contains(logs.String(), "source.dsn") || strings.Contains(logs.String(), "retrying") {
		t.Errorf("exit %v, want an error naming source.dsn without retries:\n%s", proc.err, logs)
	}
}

// reloadReceiver records each delivery's path and the id in its body.
type reloadReceiver struct {
	mu  sync.Mutex
	got map[string][]int // path → ids in arrival order
}

func (r *reloadReceiver) ids(path string) []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got[path])
}

func reloadConfig(s *mariadbtest.Server, schema, listen, url, when string) string {
	return fmt.Sprintf(`
source:
  dsn: %s
  include: ['%s.*']
  heartbeat: 1s
  max_backoff: 500ms
http:
  listen: %s
admin:
  token: reload-tok-1
state:
  path: state.db
rules:
  - name: big
    table: %s.deals
    "on": [insert]
    when: %s
    event: Big
    webhooks: [big]
  - name: all
    table: %s.deals
    "on": [insert]
    event: Any
    webhooks: [all]
bodies:
  Big:
    fields: { id: row.id }
  Any:
    fields: { id: row.id }
webhooks:
  big:
    url: %s/big
  all:
    url: %s/all
`, s.URL(), schema, listen, schema, when, schema, url, url)
}

// SIGHUP and POST /admin/reload re-read the rules: a changed condition
// holds for rows written after the reload; rows written during it are
// delivered once each (the reader resumes at its checkpoint, the queue
// keeps what was in flight); an invalid file keeps the running rules and
// the process, and /admin/reload answers 422 with the error (401 without
// the admin token). The reloads are counted in /metrics.
func TestRun_ReloadRules(t *testing.T) {
	bin := buildRowhook(t)
	s := mariadbtest.New(t, mariadbtest.Options{})
	schema, db := s.NewSchema(t)
	if _, err := db.Exec("CREATE TABLE deals (id INT PRIMARY KEY, amount INT)"); err != nil {
		t.Fatal(err)
	}
	rr := &reloadReceiver{got: map[string][]int{}}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct{ ID int }
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			t.Errorf("body: %v", err)
		}
		rr.mu.Lock()
		rr.got[r.URL.Path] = append(rr.got[r.URL.Path], body.ID)
		rr.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(hs.Close)
	port := freeAddr(t)[len("127.0.0.1:"):]
	listen := "127.0.0.1:" + port
	dir := t.TempDir()
	write := func(text string) {
		t.Helper()
		if err := os.WriteFile(dir+"/rowhook.yaml", []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Off loopback, so that the admin token is asked for.
	write(reloadConfig(s, schema, "0.0.0.0:"+port, hs.URL, "row.amount > 100"))
	logs := &syncWriter{}
	proc := startRowhook(t, bin, dir+"/rowhook.yaml", logs)
	t.Cleanup(func() {
		if proc.running() {
			proc.kill()
		}
		if t.Failed() {
			t.Logf("rowhook log:\n%s", logs)
		}
	})
	waitReady(t, listen)
	insert := func(id, amount int) {
		t.Helper()
		if _, err := db.Exec("INSERT INTO deals VALUES (?, ?)", id, amount); err != nil {
			t.Fatal(err)
		}
	}
	insert(1, 50)
	insert(2, 500)
	waitFor(t, 30*time.Second, "rows 1 and 2 on /all", func() bool { return len(rr.ids("/all")) >= 2 })

	// Rows written all through the reload.
	var written atomic.Int64
	written.Store(2)
	stopWriter := make(chan struct{})
	writerDone := make(chan error, 1)
	go func() {
		for id := 100; ; id++ {
			select {
			case <-stopWriter:
				writerDone <- nil
				return
			default:
			}
			if _, err := db.Exec("INSERT INTO deals VALUES (?, ?)", id, 1000); err != nil {
				writerDone <- err
				return
			}
			written.Add(1)
			time.Sleep(5 * time.Millisecond)
		}
	}()
	write(reloadConfig(s, schema, "0.0.0.0:"+port, hs.URL, "row.amount < 100"))
	if err := proc.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "the reload logged", func() bool {
		return strings.Contains(logs.String(), "the new configuration runs")
	})
	if !proc.running() {
		t.Fatalf("SIGHUP ended rowhook: %v", proc.err)
	}
	if out := logs.String(); !strings.Contains(out, "pipeline stopped for a configuration reload") || strings.Contains(out, "rowhook stopped") {
		t.Errorf("the reload's stop is not logged as one (or as rowhook's):\n%s", out)
	}
	waitReady(t, listen)
	insert(10001, 50)  // the new condition: delivered to /big
	insert(10002, 500) // the old one only: not
	close(stopWriter)
	if err := <-writerDone; err != nil {
		t.Fatal(err)
	}
	total := int(written.Load()) + 2
	waitFor(t, 60*time.Second, "every row on /all", func() bool { return len(rr.ids("/all")) >= total })
	waitFor(t, 30*time.Second, "row 10001 on /big", func() bool { return slices.Contains(rr.ids("/big"), 10001) })

	// An invalid file: SIGHUP logs why and keeps the rules; /admin/reload
	// answers 422 with the error, 401 without the token.
	write(strings.Replace(reloadConfig(s, schema, "0.0.0.0:"+port, hs.URL, "row.amount < 100"), "webhooks: [all]", "webhooks: [nowhere]", 1))
	if err := proc.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the refused reload logged", func() bool {
		return strings.Contains(logs.String(), "the file is invalid; kept the running configuration")
	})
	if code, body := requestAs(t, "POST", "http://"+listen+"/admin/reload", ""); code != http.StatusUnauthorized {
		t.Errorf("POST /admin/reload without the token: %d %s, want 401", code, body)
	}
	code, body := requestAs(t, "POST", "http://"+listen+"/admin/reload", "reload-tok-1")
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, "nowhere") || !strings.Contains(body, "rowhook.yaml:") {
		t.Errorf("POST /admin/reload of an invalid file: %d %s, want 422 naming the place and the unknown webhook", code, body)
	}
	insert(10003, 60) // still the reloaded condition
	waitFor(t, 30*time.Second, "row 10003 on /big", func() bool { return slices.Contains(rr.ids("/big"), 10003) })
	if !proc.running() {
		t.Fatalf("an invalid file ended rowhook: %v", proc.err)
	}

	// Valid offline, refused by the source (a column the table lacks): the
	// running configuration opens again, 422 names the column.
	write(reloadConfig(s, schema, "0.0.0.0:"+port, hs.URL, "row.nosuchcol < 100"))
	code, body = requestAs(t, "POST", "http://"+listen+"/admin/reload", "reload-tok-1")
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, "nosuchcol") {
		t.Errorf("POST /admin/reload naming a missing column: %d %s, want 422 naming it", code, body)
	}
	waitReady(t, listen)
	insert(10005, 80) // the running condition again
	waitFor(t, 30*time.Second, "row 10005 on /big", func() bool { return slices.Contains(rr.ids("/big"), 10005) })

	// A valid file again, through the admin API: 200, and a setting that
	// needs a restart is named and kept.
	write(strings.Replace(reloadConfig(s, schema, "0.0.0.0:"+port, hs.URL, "row.amount < 100"), "path: state.db", "path: other.db", 1))
	code, body = requestAs(t, "POST", "http://"+listen+"/admin/reload", "reload-tok-1")
	if code != 200 || !strings.Contains(body, "changed state.path needs a restart; kept the running value") {
		t.Errorf("POST /admin/reload: %d %s, want 200 naming state.path", code, body)
	}
	if _, err := os.Stat(dir + "/other.db"); err == nil {
		t.Errorf("the reload opened state.path's new value")
	}
	waitReady(t, listen)
	insert(10004, 70)
	waitFor(t, 30*time.Second, "row 10004 on /big", func() bool { return slices.Contains(rr.ids("/big"), 10004) })

	metrics := httpGet(t, "http://"+listen+"/metrics")
	for _, want := range []string{
		`rowhook_config_reloads_total{result="success"} 2`,
		`rowhook_config_reloads_total{result="failure"} 3`,
		`rowhook_config_last_reload_successful 1`,
		`rowhook_config_last_reload_success_timestamp_seconds `,
		`rowhook_rule_events_total{rule="big"}`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if err := proc.stop(); err != nil {
		t.Errorf("stop: %v", err)
	}

	// Each row exactly once on /all; /big by the rule of its time.
	all := rr.ids("/all")
	seen := map[int]int{}
	for _, id := range all {
		seen[id]++
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("row %d delivered %d times to /all", id, n)
		}
	}
	if len(seen) != total+3 { // + 10003, 10004, 10005
		t.Errorf("/all got %d distinct rows, want %d", len(seen), total+3)
	}
	big := rr.ids("/big")
	t.Logf("%d rows written through the reload and after it, each delivered once to /all; /big got %d", total+3, len(big))
	for _, tc := range []struct {
		id   int
		want bool
	}{{1, false}, {2, true}, {10001, true}, {10002, false}, {10003, true}, {10004, true}, {10005, true}} {
		if slices.Contains(big, tc.id) != tc.want {
			t.Errorf("row %d on /big: %v, want %v (got %v)", tc.id, !tc.want, tc.want, big)
		}
	}
	bseen := map[int]bool{}
	for _, id := range big {
		if bseen[id] {
			t.Errorf("row %d delivered twice to /big", id)
		}
		bseen[id] = true
	}
}

// requestAs sends method url with the admin token (none when "").
func requestAs(t *testing.T, method, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
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
