package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rowhook/rowhook/internal/mariadbtest"
	"github.com/rowhook/rowhook/internal/pipeline"
)

// haProc is one `rowhook run` subprocess of the HA test.
type haProc struct {
	name string
	cmd  *exec.Cmd

	mu   sync.Mutex
	logs strings.Builder
	addr string

	exited chan struct{}
	err    error // the exit status, once exited is closed
}

var listenLine = regexp.MustCompile(`msg=listening addr=(\S+)`)

func startHAProc(t *testing.T, bin, cfgPath, name string) *haProc {
	t.Helper()
	p := &haProc{name: name, cmd: exec.Command(bin, "run", "--config", cfgPath), exited: make(chan struct{})}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.logs.WriteString(line + "\n")
			if m := listenLine.FindStringSubmatch(line); m != nil && p.addr == "" {
				p.addr = m[1]
			}
			p.mu.Unlock()
		}
	}()
	go func() {
		<-scanned
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.exited:
			case <-time.After(20 * time.Second):
				p.cmd.Process.Kill()
				<-p.exited
			}
		}
	})
	return p
}

func (p *haProc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

func (p *haProc) listenAddr(t *testing.T) string {
	t.Helper()
	waitUntil(t, p, "the listener", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.addr != ""
	})
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.addr
}

// readyz returns /readyz's status code and body (0 when unreachable).
func (p *haProc) readyz(t *testing.T) (int, string) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + p.listenAddr(t) + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (p *haProc) metric(t *testing.T, name string) string {
	body := httpGet(t, "http://"+p.listenAddr(t)+"/metrics")
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	return "(absent)"
}

// waitUntil polls cond; the bound only keeps a broken build from hanging.
func waitUntil(t *testing.T, p *haProc, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		select {
		case <-p.exited:
			t.Fatalf("%s exited (%v) while waiting for %s; its log:\n%s", p.name, p.err, what, p.output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: timed out waiting for %s; its log:\n%s", p.name, what, p.output())
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// Two `rowhook run` processes on one config (one state file, one lock on
// the test server). The active one is SIGKILLed three times while rows
// stream in, then its lock session is killed on the server, then it gets
// SIGTERM: each time the standby takes over within ha.takeover and a new
// standby is started. Every row arrives, a row twice only with the same
// webhook-id.
func TestRun_HAFailover(t *testing.T) {
	bin := buildRowhook(t)
	t.Run("sqlite", func(t *testing.T) { haFailover(t, bin, false) })
	// The host-failover layout: the shared checkpoint and outbox on a
	// MySQL state server of their own.
	t.Run("mysql", func(t *testing.T) { haFailover(t, bin, true) })
}

func haFailover(t *testing.T, bin string, mysqlState bool) {
	s := mariadbtest.New(t, mariadbtest.Options{})
	schema, db := s.NewSchema(t)
	if _, err := db.Exec("CREATE TABLE orders (id BIGINT PRIMARY KEY, amount DECIMAL(10,2))"); err != nil {
		t.Fatal(err)
	}
	recv := &testReceiver{}
	hs := httptest.NewServer(recv)
	t.Cleanup(hs.Close)
	var start string
	if err := s.DB().QueryRow("SELECT @@gtid_binlog_pos").Scan(&start); err != nil {
		t.Fatal(err)
	}
	const (
		lockName = "rowhook-ha-test"
		takeover = 8 * time.Second
	)
	stateYAML := "  path: state.db"
	if mysqlState {
		st := mariadbtest.New(t, mariadbtest.Options{})
		st.Exec(t, "CREATE DATABASE rowhook_state")
		stateYAML = fmt.Sprintf("  driver: mysql\n  dsn: mysql://root@127.0.0.1:%d/rowhook_state", st.Port)
	}
	dir := t.TempDir()
	cfgPath := writeConfig(t, dir, fmt.Sprintf(`
source:
  dsn: %s
  include: ['%s.*']
  start: 'gtid:%s'
  heartbeat: 1s
  max_backoff: 500ms
http:
  listen: 127.0.0.1:0
state:
%s
ha:
  enabled: true
  dsn: %s
  name: %s
  interval: 500ms
  takeover: %s
rules:
  - name: every-order
    table: %s.orders
    on: [insert]
    event: RowChanged
    webhooks: [sink]
webhooks:
  sink:
    url: %s/orders
    retry: { max_attempts: 20, initial_interval: 50ms, max_interval: 500ms }
`, s.URL(), schema, start, stateYAML, s.URL(), lockName, takeover, schema, hs.URL))

	n := 0
	next := func() *haProc {
		n++
		return startHAProc(t, bin, cfgPath, fmt.Sprintf("rowhook#%d", n))
	}
	isActive := func(p *haProc) bool { code, _ := p.readyz(t); return code == http.StatusOK }
	waitStandby := func(p *haProc) {
		t.Helper()
		waitUntil(t, p, "readyz 503 naming the lock's holder", func() bool {
			code, body := p.readyz(t)
			return code == http.StatusServiceUnavailable && strings.Contains(body, "standby: waiting for the lock") &&
				strings.Contains(body, "held by connection")
		})
		if got := p.metric(t, "rowhook_ha_leader"); got != "0" {
			t.Errorf("%s standby: rowhook_ha_leader %s, want 0", p.name, got)
		}
		if code := httpStatus(t, "http://"+p.listenAddr(t)+"/deliveries"); code != http.StatusServiceUnavailable {
			t.Errorf("%s standby: /deliveries answered %d, want 503", p.name, code)
		}
	}

	active := next()
	waitUntil(t, active, "the first process to become active", func() bool { return isActive(active) })
	standby := next()
	waitStandby(standby)

	const rows = 1200
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	writerDone := make(chan error, 1)
	go func() {
		for i := 1; i <= rows; i++ {
			if _, err := db.ExecContext(ctx, "INSERT INTO orders VALUES (?, 1.00)", i); err != nil {
				writerDone <- err
				return
			}
			if i%50 == 0 {
				time.Sleep(40 * time.Millisecond)
			}
		}
		writerDone <- nil
	}()

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	var figures []string
	failover := func(how string, stop func(p *haProc)) {
		t.Helper()
		time.Sleep(time.Duration(300+rng.IntN(500)) * time.Millisecond)
		if got := active.metric(t, "rowhook_ha_leader"); got != "1" {
			t.Errorf("%s active: rowhook_ha_leader %s, want 1", active.name, got)
		}
		t0 := time.Now()
		stop(active)
		waitUntil(t, standby, "takeover after "+how, func() bool { return isActive(standby) })
		took := time.Since(t0)
		figures = append(figures, fmt.Sprintf("%s %s", how, took.Round(10*time.Millisecond)))
		if took > takeover {
			t.Errorf("%s: standby took over after %s, over ha.takeover %s", how, took, takeover)
		}
		if got := standby.metric(t, "rowhook_ha_takeovers_total"); got != "1" {
			t.Errorf("%s new active: rowhook_ha_takeovers_total %s, want 1", standby.name, got)
		}
		active, standby = standby, next()
		waitStandby(standby)
	}
	sigkill := func(p *haProc) {
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-p.exited
	}
	for range 3 {
		failover("SIGKILL", sigkill)
	}
	// The lock session killed on the server: the active process must stop
	// at once and exit with an error saying so.
	failover("KILL CONNECTION", func(p *haProc) {
		var id int64
		if err := s.DB().QueryRow("SELECT IS_USED_LOCK(?)", lockName).Scan(&id); err != nil {
			t.Fatal(err)
		}
		if _, err := s.DB().Exec(fmt.Sprintf("KILL CONNECTION %d", id)); err != nil {
			t.Fatal(err)
		}
		select {
		case <-p.exited:
		case <-time.After(30 * time.Second):
			t.Fatalf("%s still running after its lock session was killed:\n%s", p.name, p.output())
		}
		var ee *exec.ExitError
		if !errors.As(p.err, &ee) || ee.ExitCode() != 1 {
			t.Errorf("%s after losing the lock: exit %v, want status 1", p.name, p.err)
		}
		if out := p.output(); !strings.Contains(out, "ha: lost the lock") {
			t.Errorf("%s's output does not say it lost the lock:\n%s", p.name, out)
		}
	})
	if err := <-writerDone; err != nil {
		t.Fatal(err)
	}
	// SIGTERM: ordered shutdown, then the lock is released for the standby,
	// which may start before the old process has exited.
	terminated := active
	failover("SIGTERM", func(p *haProc) { p.cmd.Process.Signal(syscall.SIGTERM) })
	<-terminated.exited
	if terminated.err != nil {
		t.Errorf("%s after SIGTERM: %v\n%s", terminated.name, terminated.err, terminated.output())
	}
	if out := terminated.output(); !strings.Contains(out, "lock released") {
		t.Errorf("%s did not release the lock on SIGTERM:\n%s", terminated.name, out)
	}

	deadline := time.Now().Add(60 * time.Second)
	for recv.distinct() < rows {
		if time.Now().After(deadline) {
			t.Fatalf("delivered %d distinct rows of %d; active %s log:\n%s", recv.distinct(), rows, active.name, active.output())
		}
		time.Sleep(100 * time.Millisecond)
	}
	recv.mu.Lock()
	defer recv.mu.Unlock()
	dups := 0
	for id, ids := range recv.byRow {
		if ids[0] == "" {
			t.Errorf("row %d delivered without webhook-id", id)
		}
		for _, wid := range ids[1:] {
			dups++
			if wid != ids[0] {
				t.Errorf("row %d delivered with different webhook-ids %q and %q", id, ids[0], wid)
			}
		}
	}
	t.Logf("%d rows delivered across %d processes; takeovers: %s; %d redeliveries, all with the same webhook-id",
		rows, n, strings.Join(figures, ", "), dups)
}

func httpStatus(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

const haBaseConfig = `source:
  dsn: mysql://rowhook:s3cret-pw@127.0.0.1:1/
webhooks:
  erp:
    url: https://erp.example/hook
rules:
  - name: every-deal
    table: crm.vtiger_potential
    on: [insert]
    event: RowChanged
    webhooks: [erp]
`

// The ha: section's errors name their place, in `rowhook check` and
// `rowhook run`.
func TestHAConfig_Validate(t *testing.T) {
	for _, tc := range []struct {
		name, ha string
		want     []string // substrings of the error; none: valid
	}{
		{"disabled ignores the rest", "ha:\n  enabled: false\n  interval: 1ms\n", nil},
		{"defaults with a dsn", "ha:\n  enabled: true\n  dsn: mysql://u:p@db:3306/\n", nil},
		{"interval too short", "ha:\n  enabled: true\n  dsn: mysql://u:p@db/\n  interval: 10ms\n", []string{":15:", "ha.interval: must be at least 100ms"}},
		{"takeover too short", "ha:\n  enabled: true\n  dsn: mysql://u:p@db/\n  interval: 2s\n  takeover: 5s\n", []string{"ha.takeover: 5s cannot be kept with ha.interval 2s", "raise takeover or lower interval"}},
		{"bad dsn", "ha:\n  enabled: true\n  dsn: 'postgres://db/'\n", []string{"ha.dsn: URL scheme must be mysql://"}},
		{"long name", "ha:\n  enabled: true\n  dsn: mysql://u:p@db/\n  name: " + strings.Repeat("n", 65) + "\n", []string{"ha.name: at most 64 characters"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeTemp(t, "rowhook.yaml", haBaseConfig+tc.ha)
			_, stderr, code := runCommand(t, "check", "--offline", "--config", path)
			if len(tc.want) == 0 {
				if code != 0 {
					t.Fatalf("check: exit %d: %s", code, stderr)
				}
				return
			}
			if code != 1 {
				t.Fatalf("check: exit %d, want 1: %s", code, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("check's errors %q do not contain %q", stderr, w)
				}
			}
			if strings.Contains(stderr, "s3cret-pw") || strings.Contains(stderr, "u:p@") {
				t.Errorf("error shows a password: %s", stderr)
			}
		})
	}
}

// Without ha.dsn the lock lives on writeback.dsn; with neither, run says
// where to put one.
func TestHADSN(t *testing.T) {
	cfg := pipeline.DefaultConfig()
	cfg.HA.Enabled = true
	if _, err := pipeline.HADSN(&cfg); err == nil || !strings.Contains(err.Error(), "ha.dsn: required") {
		t.Errorf("haDSN without dsns: %v", err)
	}
	cfg.Writeback.DSN = "wb:pw@tcp(primary:3306)/crm"
	if got, _ := pipeline.HADSN(&cfg); got != cfg.Writeback.DSN {
		t.Errorf("haDSN = %q, want writeback.dsn", got)
	}
	cfg.HA.DSN = "ha:pw@tcp(locks:3306)/"
	if got, _ := pipeline.HADSN(&cfg); got != cfg.HA.DSN {
		t.Errorf("haDSN = %q, want ha.dsn", got)
	}

	path := writeTemp(t, "rowhook.yaml", haBaseConfig+"ha:\n  enabled: true\n")
	_, stderr, code := runCommand(t, "run", "--config", path)
	if code != 1 || !strings.Contains(stderr, "rowhook.yaml:") || !strings.Contains(stderr, "ha.dsn: required with ha.enabled") {
		t.Errorf("run without a lock server: exit %d: %s", code, stderr)
	}
}

// Processes sharing a state file share a lock name; another state file
// gets another lock; names fit GET_LOCK's 64 characters.
func TestHALockName(t *testing.T) {
	dir := t.TempDir()
	a := pipeline.HALockName(pipeline.HAConfig{}, dir+"/state.db")
	if b := pipeline.HALockName(pipeline.HAConfig{}, dir+"/./state.db"); a != b {
		t.Errorf("same state file, different names %q and %q", a, b)
	}
	if c := pipeline.HALockName(pipeline.HAConfig{}, dir+"/other.db"); c == a {
		t.Errorf("different state files share the name %q", a)
	}
	long := pipeline.HALockName(pipeline.HAConfig{}, dir+"/"+strings.Repeat("x", 200)+".db")
	if len(long) > 64 || len(a) > 64 {
		t.Errorf("names over 64 characters: %q (%d), %q (%d)", a, len(a), long, len(long))
	}
	if got := pipeline.HALockName(pipeline.HAConfig{Name: "crm-prod"}, dir+"/state.db"); got != "crm-prod" {
		t.Errorf("ha.name ignored: %q", got)
	}
	if !strings.HasPrefix(a, "rowhook:state.db:") {
		t.Errorf("name %q does not say whose lock it is", a)
	}
}

// The example in docs/ha.md validates.
func TestHADoc_ExampleIsValid(t *testing.T) {
	b, err := os.ReadFile("../../docs/ha.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "```yaml\n")
	block, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 || !strings.Contains(block, "ha:") {
		t.Fatal("docs/ha.md has no yaml example with an ha: section")
	}
	t.Setenv("HA_PASSWORD", "x")
	path := writeTemp(t, "rowhook.yaml", haBaseConfig+block)
	if _, stderr, code := runCommand(t, "check", "--offline", "--config", path); code != 0 {
		t.Errorf("docs/ha.md's example: exit %d: %s", code, stderr)
	}
}
