package pipeline

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// startTestPipeline loads the config at cfgPath, opens and starts the
// pipeline with a captured text log, waits until it is ready and stops it
// (failing the test on a pipeline error) at cleanup.
func startTestPipeline(t *testing.T, cfgPath string) (*Pipeline, *syncWriter) {
	t.Helper()
	cfg, _, err := Load(context.Background(), cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncWriter{}
	ctx, cancel := context.WithCancel(context.Background())
	p, err := Open(ctx, cfg, Options{Dir: filepath.Dir(cfgPath), Logger: slog.New(slog.NewTextHandler(logs, nil)), Version: "test"})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	p.Start(ctx)
	t.Cleanup(func() {
		cancel()
		if err := p.Wait(); err != nil {
			t.Errorf("pipeline: %v", err)
		}
	})
	waitReady(t, p.Addr())
	return p, logs
}

// writeConfig writes text as rowhook.yaml in dir.
func writeConfig(t *testing.T, dir, text string) string {
	t.Helper()
	p := filepath.Join(dir, "rowhook.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// waitReady waits until /readyz on addr answers 200.
func waitReady(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + localAddrOf(addr) + "/readyz")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("not ready after 30s: %s", b)
			}
		} else if time.Now().After(deadline) {
			t.Fatalf("not ready after 30s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// localAddrOf turns a wildcard listener address into one to dial.
func localAddrOf(addr string) string {
	if strings.HasPrefix(addr, "[::]:") || strings.HasPrefix(addr, "0.0.0.0:") {
		return "127.0.0.1" + addr[strings.LastIndex(addr, ":"):]
	}
	return addr
}

// syncWriter is a log sink tests read while the pipeline writes.
type syncWriter struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
