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
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  strings.Builder
	line chan string
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
	var wg sync.WaitGroup
	wg.Add(2)
	for _, r := range []io.Reader{stdout, stderr} {
		go func() {
			defer wg.Done()
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
	t.Cleanup(func() {
		// SIGTERM, as docker stop and systemd do; rowhook must stop cleanly.
		p.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { wg.Wait(); done <- p.cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("rowhook %s exited with %v on SIGTERM:\n%s", args[0], err, p.output())
			}
		case <-time.After(30 * time.Second):
			p.cmd.Process.Kill()
			t.Errorf("rowhook %s did not stop within 30s of SIGTERM:\n%s", args[0], p.output())
		}
	})
	return p
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
	services := composeServices(t)
	env := composeEnv(services["rowhook"])
	env["ROWHOOK_SOURCE_PASSWORD"] = dbs.env["ROWHOOK_SOURCE_PASSWORD"]
	env["ROWHOOK_WRITEBACK_PASSWORD"] = dbs.env["ROWHOOK_WRITEBACK_PASSWORD"]
	var envList []string
	for k, v := range env {
		envList = append(envList, k+"="+v)
	}

	recvAddr, httpAddr := freeAddr(t), freeAddr(t)
	receiver := startProcess(t, nil, "receiver", "--listen", recvAddr, "--secret", env["ROWHOOK_SIGNING_SECRET"])

	dir := t.TempDir()
	config := string(readFile(t, "compose/rowhook.yaml"))
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
	rh := startProcess(t, envList, "run", "--config", cfgPath)

	// Ready: binlog connected, state writable (the readiness probe).
	base := "http://" + httpAddr
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, body, err := httpGet(base + "/readyz")
		if err == nil && code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz not 200 within 60s (last %d %s %v); rowhook output:\n%s", code, body, err, rh.output())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if code, _, err := httpGet(base + "/healthz"); err != nil || code != 200 {
		t.Errorf("/healthz: %d %v", code, err)
	}

	// Create an opportunity the way Vtiger does (the rule fires on amounts
	// above 1000; the script's is larger).
	initDB(t, dbs.primary, []string{"MARIADB_DATABASE=vtiger"}, "../internal/vtiger/create_potential.sql")

	// The receiver gets one signed request.
	var got map[string]any
	timeout := time.After(60 * time.Second)
	for got == nil {
		select {
		case l := <-receiver.line:
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) == nil && m["method"] != nil {
				got = m
			}
		case <-timeout:
			t.Fatalf("the receiver got no request within 60s\nreceiver:\n%s\nrowhook:\n%s", receiver.output(), rh.output())
		}
	}
	if got["signature"] != "verified" {
		t.Errorf("receiver signature check %v, want verified: rowhook and the receiver must share ROWHOOK_SIGNING_SECRET", got["signature"])
	}
	if got["path"] != "/opportunities" {
		t.Errorf("request path %v, want /opportunities", got["path"])
	}

	// The id the receiver answered is written back on the primary.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		var id *string
		err := dbs.primary.DB().QueryRowContext(ctx, "SELECT cf_901 FROM vtiger.vtiger_potentialscf LIMIT 1").Scan(&id)
		if err == nil && id != nil && *id == fmt.Sprint(got["reply_id"]) {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("cf_901 is %v (err %v), want the receiver's id %v; rowhook output:\n%s", id, err, got["reply_id"], rh.output())
		}
		time.Sleep(200 * time.Millisecond)
	}

	// The metrics Prometheus scrapes pass promtool's lint and carry what
	// the dashboard and alerts read.
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
		`rowhook_deliveries_total{outcome="ok",webhook="erp"} 1`,
		`rowhook_writebacks_total{outcome="ok",table="vtiger.vtiger_potentialscf"} 1`,
		"rowhook_cdc_lag_seconds",
		"rowhook_build_info{",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
