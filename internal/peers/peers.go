// Package peers runs third-party implementations that rowhook's tests talk
// to: the official Standard Webhooks JavaScript library and svix's verifier
// check the signatures rowhook sends, and a node-soap server answers its
// SOAP calls. They live in testdata/node (package.json and package-lock.json
// pin exact versions) and are installed with
//
//	npm ci --prefix internal/peers/testdata/node
//
// which .ci/run does. Without Node or the installed packages a test skips
// saying so, except in CI (CI=true) or with ROWHOOK_REQUIRE_PEERS=1, where
// it fails.
package peers

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// RequireEnv, set to 1, makes a missing Node or missing packages a test
// failure instead of a skip (CI=true does the same).
const RequireEnv = "ROWHOOK_REQUIRE_PEERS"

// minNode is the oldest Node the pinned packages support (soap 1.13 needs
// 20.19).
var minNode = [3]int{20, 19, 0}

// Dir returns the directory holding package.json and the node scripts.
func Dir() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return filepath.Join("internal", "peers", "testdata", "node")
	}
	return filepath.Join(filepath.Dir(file), "testdata", "node")
}

// required reports whether missing peers fail the test.
func required() bool {
	return os.Getenv(RequireEnv) == "1" || strings.EqualFold(os.Getenv("CI"), "true")
}

var (
	findOnce sync.Once
	nodePath string
	findErr  error
)

// find locates node and checks its version and the installed packages.
func find() (string, error) {
	findOnce.Do(func() {
		nodePath, findErr = exec.LookPath("node")
		if findErr != nil {
			findErr = fmt.Errorf("node is not on PATH")
			return
		}
		out, err := exec.Command(nodePath, "--version").Output()
		if err != nil {
			findErr = fmt.Errorf("%s --version: %v", nodePath, err)
			return
		}
		v := strings.TrimSpace(string(out))
		if !atLeast(v, minNode) {
			findErr = fmt.Errorf("node %s is older than v%d.%d.%d, which the pinned packages need", v, minNode[0], minNode[1], minNode[2])
			return
		}
		var pkg struct {
			Dependencies map[string]string `json:"dependencies"`
		}
		b, err := os.ReadFile(filepath.Join(Dir(), "package.json"))
		if err == nil {
			err = json.Unmarshal(b, &pkg)
		}
		if err != nil {
			findErr = fmt.Errorf("read %s: %v", filepath.Join(Dir(), "package.json"), err)
			return
		}
		for name, want := range pkg.Dependencies {
			var got struct {
				Version string `json:"version"`
			}
			b, err := os.ReadFile(filepath.Join(Dir(), "node_modules", name, "package.json"))
			if err == nil {
				err = json.Unmarshal(b, &got)
			}
			if err != nil {
				findErr = fmt.Errorf("package %s is not installed", name)
				return
			}
			if got.Version != want {
				findErr = fmt.Errorf("package %s is %s, package.json pins %s", name, got.Version, want)
				return
			}
		}
	})
	return nodePath, findErr
}

// atLeast reports whether the version "v20.20.2" is at least min.
func atLeast(v string, min [3]int) bool {
	parts := strings.SplitN(strings.TrimPrefix(v, "v"), ".", 3)
	for i := 0; i < 3; i++ {
		n := 0
		if i < len(parts) {
			n, _ = strconv.Atoi(strings.TrimFunc(parts[i], func(r rune) bool { return r < '0' || r > '9' }))
		}
		if n != min[i] {
			return n > min[i]
		}
	}
	return true
}

// Node returns the path of node with the peers installed, or ends the test:
// a skip that says how to install them, or a failure in CI.
func Node(t testing.TB) string {
	t.Helper()
	node, err := find()
	if err == nil {
		return node
	}
	msg := fmt.Sprintf("node peers not installed (%v): run npm ci --prefix %s", err, Dir())
	if required() {
		t.Fatalf("%s (required: CI=true or %s=1)", msg, RequireEnv)
	}
	t.Skip(msg)
	return ""
}

// Request is one HTTP request as a receiver got it.
type Request struct {
	// Name labels the request in results.
	Name string `json:"name"`
	// Header holds the request's headers.
	Header map[string][]string `json:"headers"`
	// Body is the raw body.
	Body []byte `json:"body"`
}

// Verdict is one verifier's answer for one request.
type Verdict struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// Result is the verdict of each library for one Request.
type Result struct {
	Name             string  `json:"name"`
	StandardWebhooks Verdict `json:"standardwebhooks"`
	Svix             Verdict `json:"svix"`
}

// Verify checks each request's Standard Webhooks signature with the
// standardwebhooks and svix libraries under secret ("whsec_…"), in one node
// process, and returns their verdicts in order.
func Verify(t testing.TB, secret string, reqs []Request) []Result {
	t.Helper()
	node := Node(t)
	in, err := json.Marshal(struct {
		Secret   string    `json:"secret"`
		Requests []Request `json:"requests"`
	}{secret, reqs})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "requests.json")
	if err := os.WriteFile(path, in, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(Dir(), "verify.js"), path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("verify.js: %v\n%s", err, stderr.String())
	}
	var res []Result
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("verify.js output: %v\n%s\n%s", err, out, stderr.String())
	}
	if len(res) != len(reqs) {
		t.Fatalf("verify.js answered %d of %d requests", len(res), len(reqs))
	}
	return res
}

// SOAPServer is a running node-soap service (testdata/node/soap-server.js).
type SOAPServer struct {
	// URL is the server's base URL ("http://127.0.0.1:port").
	URL string

	mu    sync.Mutex
	calls []Call
	out   bytes.Buffer // everything node printed
}

// Call is a request the node-soap service handled, as node-soap parsed it.
type Call struct {
	// Path is the request path (/accounts for SOAP 1.1, /accounts12 for 1.2).
	Path string `json:"path"`
	// Operation is the operation called.
	Operation string `json:"operation"`
	// Args is the parsed input message.
	Args map[string]any `json:"args"`
	// Outcome is "ok", "server-fault", "sender-fault" or "client-fault".
	Outcome string `json:"outcome"`
}

// StartSOAP starts the node-soap service on a free loopback port and stops
// it when the test ends. Its WSDL is at URL+"/accounts?wsdl"; the SOAP 1.1
// port is URL+"/accounts", the SOAP 1.2 port URL+"/accounts12".
func StartSOAP(t testing.TB) *SOAPServer {
	t.Helper()
	node := Node(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, node, filepath.Join(Dir(), "soap-server.js"))
	cmd.Dir = Dir()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &SOAPServer{}
	cmd.Stderr = &lockedWriter{s: s}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	ready := make(chan string, 1)
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 8<<20)
		for sc.Scan() {
			line := sc.Text()
			var msg struct {
				Listening string `json:"listening"`
				Call      *Call  `json:"call"`
			}
			if json.Unmarshal([]byte(line), &msg) == nil {
				if msg.Listening != "" {
					ready <- msg.Listening
				}
				if msg.Call != nil {
					s.mu.Lock()
					s.calls = append(s.calls, *msg.Call)
					s.mu.Unlock()
				}
			}
			s.mu.Lock()
			s.out.WriteString(line + "\n")
			s.mu.Unlock()
		}
		io.Copy(io.Discard, stdout)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("node-soap output:\n%s", s.Output())
		}
	})
	select {
	case s.URL = <-ready:
	case <-done:
		t.Fatalf("soap-server.js exited before listening:\n%s", s.Output())
	case <-time.After(30 * time.Second):
		t.Fatalf("soap-server.js did not start listening within 30s:\n%s", s.Output())
	}
	return s
}

// Calls returns the requests handled so far.
func (s *SOAPServer) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// Output returns what the node process printed.
func (s *SOAPServer) Output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.String()
}

type lockedWriter struct{ s *SOAPServer }

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	return w.s.out.Write(p)
}
