package deploy_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// freeAddr returns a free loopback address.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// process is a rowhook process started by a test; its output is kept.
type process struct {
	cmd     *exec.Cmd
	mu      sync.Mutex
	out     strings.Builder
	line    chan string
	readers sync.WaitGroup
	stopped bool
}

func startProcess(t *testing.T, env []string, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(buildAsDockerfile(t), args...), line: make(chan string, 100)}
	p.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.readers.Add(2)
	for _, r := range []io.Reader{stdout, stderr} {
		go func() {
			defer p.readers.Done()
			sc := bufio.NewScanner(r)
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			for sc.Scan() {
				p.mu.Lock()
				p.out.WriteString(sc.Text() + "\n")
				p.mu.Unlock()
				select {
				case p.line <- sc.Text():
				default:
				}
			}
		}()
	}
	t.Cleanup(func() { p.stop(t) })
	return p
}

// stop sends SIGTERM, as docker stop, systemctl stop and Kubernetes do, and
// fails the test unless the process exits cleanly within 30 seconds.
func (p *process) stop(t *testing.T) {
	t.Helper()
	if p.stopped {
		return
	}
	p.stopped = true
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { p.readers.Wait(); done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("rowhook %s exited with %v on SIGTERM:\n%s", p.cmd.Args[1], err, p.output())
		}
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		t.Errorf("rowhook %s did not stop within 30s of SIGTERM:\n%s", p.cmd.Args[1], p.output())
	}
}

func (p *process) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// httpGet returns the status and body of a GET.
func httpGet(url string) (int, string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// TestComposeStack_EndToEnd runs the compose stack without Docker: the
// databases from the compose files, `rowhook receiver` as the demo ERP, and
// `rowhook run` with compose/rowhook.yaml (hosts and ports pointed at the
// local processes). An opportunity created on the primary with Vtiger's own
// statements reaches the receiver, signed, and the id it answers is written
// back into the primary; the probes and metrics the manifests use answer.
func TestComposeStack_EndToEnd(t *testing.T) {
	dbs := startComposeDBs(t)
	// The Docker secrets, with the passwords the databases were set up with.
	secrets := composeSecrets(t)
	secrets["rowhook_source_password"] = dbs.env["ROWHOOK_SOURCE_PASSWORD"]
	secrets["rowhook_writeback_password"] = dbs.env["ROWHOOK_WRITEBACK_PASSWORD"]
	// No environment: every secret is a file.
	var envList []string

	recvAddr, httpAddr := freeAddr(t), freeAddr(t)
	receiver := startProcess(t, nil, "receiver", "--listen", recvAddr, "--secret", secrets["rowhook_signing_secret"])

	dir := t.TempDir()
	config := localSecrets(t, string(readFile(t, "compose/rowhook.yaml")), secrets)
	for old, repl := range map[string]string{
		"@tcp(replica:3306)/":               fmt.Sprintf("@tcp(127.0.0.1:%d)/", dbs.replica.Port),
		"@tcp(primary:3306)/":               fmt.Sprintf("@tcp(127.0.0.1:%d)/", dbs.primary.Port),
		"http://receiver:8080/":             "http://" + recvAddr + "/",
		"listen: 0.0.0.0:9788":              "listen: " + httpAddr,
		"/var/lib/rowhook/rowhook-state.db": filepath.Join(dir, "state", "rowhook-state.db"),
	} {
		if !strings.Contains(config, old) {
			t.Fatalf("compose/rowhook.yaml no longer contains %q", old)
		}
		config = strings.ReplaceAll(config, old, repl)
	}
	if err := os.Mkdir(filepath.Join(dir, "state"), 0o700); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "rowhook.yaml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	// Online, check also verifies tables and columns against the replica's
	// schema (the Vtiger schema the compose primary loads).
	check := exec.Command(buildAsDockerfile(t), "check", "--config", cfgPath)
	check.Env = append([]string{"PATH=" + os.Getenv("PATH")}, envList...)
	if out, err := check.CombinedOutput(); err != nil || !strings.Contains(string(out), "columns checked against the source") {
		t.Errorf("rowhook check against the compose databases: %v\n%s", err, out)
	} else {
		t.Logf("rowhook check: %s", out)
	}

	rh := startProcess(t, envList, "run", "--config", cfgPath)
	base := "http://" + httpAddr
	waitReady(t, base, rh)
	if code, _, err := httpGet(base + "/healthz"); err != nil || code != 200 {
		t.Errorf("/healthz: %d %v", code, err)
	}

	// Create an opportunity the way Vtiger does (the rule fires on amounts
	// above 1000; the script's is larger): the receiver gets it, signed, and
	// its answer is written back.
	createPotential(t, dbs)
	first := waitRequest(t, receiver, rh)
	waitWriteback(t, dbs, first, rh)

	// The metrics Prometheus scrapes pass promtool's lint and carry what
	// the dashboard and alerts read.
	checkMetrics(t, base)

	// Stop rowhook (docker compose stop / systemctl stop), create another
	// opportunity meanwhile, start it again on the same state file: it
	// resumes from its checkpoint and delivers the change it missed, once.
	rh.stop(t)
	createPotential(t, dbs)
	rh2 := startProcess(t, envList, "run", "--config", cfgPath)
	waitReady(t, base, rh2)
	second := waitRequest(t, receiver, rh2)
	if second["reply_id"] == first["reply_id"] {
		t.Errorf("the second delivery got reply id %v again", second["reply_id"])
	}
	waitWriteback(t, dbs, second, rh2)
	select {
	case l := <-receiver.line:
		t.Errorf("the receiver got another request after the restart (a duplicate?): %s", l)
	case <-time.After(3 * time.Second):
	}
}

// createPotential runs Vtiger's statements for a new opportunity on the primary.
func createPotential(t *testing.T, dbs composeDBs) {
	t.Helper()
	initDB(t, dbs.primary, []string{"MARIADB_DATABASE=vtiger"}, "../internal/vtiger/create_potential.sql")
}

// waitReady waits until /readyz answers 200: binlog connected, state writable.
func waitReady(t *testing.T, base string, rh *process) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, body, err := httpGet(base + "/readyz")
		if err == nil && code == 200 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz not 200 within 60s (last %d %s %v); rowhook output:\n%s", code, body, err, rh.output())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitRequest returns the next request the receiver printed, checking it is
// signed and addressed as the compose configuration says.
func waitRequest(t *testing.T, receiver, rh *process) map[string]any {
	t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		select {
		case l := <-receiver.line:
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) != nil || m["method"] == nil {
				continue
			}
			if m["signature"] != "verified" {
				t.Errorf("receiver signature check %v, want verified: rowhook and the receiver must share ROWHOOK_SIGNING_SECRET", m["signature"])
			}
			if m["path"] != "/opportunities" {
				t.Errorf("request path %v, want /opportunities", m["path"])
			}
			return m
		case <-timeout:
			t.Fatalf("the receiver got no request within 60s\nreceiver:\n%s\nrowhook:\n%s", receiver.output(), rh.output())
		}
	}
}

// waitWriteback waits until the opportunity of the request has the
// receiver's reply id in its ERP id custom field on the primary.
func waitWriteback(t *testing.T, dbs composeDBs, req map[string]any, rh *process) {
	t.Helper()
	body, _ := req["body"].(map[string]any)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	want := fmt.Sprint(req["reply_id"])
	for {
		var n int
		err := dbs.primary.DB().QueryRowContext(ctx, "SELECT COUNT(*) FROM vtiger.vtiger_potentialscf WHERE cf_901 = ?", want).Scan(&n)
		if err == nil && n == 1 {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("no opportunity has cf_901 = %s (err %v); request body %v; rowhook output:\n%s", want, err, body, rh.output())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// checkMetrics lints /metrics with promtool and looks for the series the
// dashboard and alerts depend on.
func checkMetrics(t *testing.T, base string) {
	t.Helper()
	code, metrics, err := httpGet(base + "/metrics")
	if err != nil || code != 200 {
		t.Fatalf("/metrics: %d %v", code, err)
	}
	lint := exec.Command(promtool(t), "check", "metrics")
	lint.Stdin = strings.NewReader(metrics)
	if out, err := lint.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
	for _, want := range []string{
		"rowhook_binlog_connected 1",
		`rowhook_delivery_attempts_total{class="2xx",webhook="erp"} 1`,
		`rowhook_writebacks_total{outcome="ok",table="vtiger.vtiger_potentialscf"} 1`,
		"rowhook_cdc_lag_seconds",
		"rowhook_build_info{",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
