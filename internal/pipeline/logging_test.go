package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rowhook/rowhook/dispatch"
	"github.com/rowhook/rowhook/internal/mariadbtest"
)

// durationish are the keys that hold a time span.
var durationish = regexp.MustCompile(`duration|interval|timeout|lag|after|latency|took|elapsed|age|wait|backoff|takeover`)

func TestNewLogger_DurationsInSeconds(t *testing.T) {
	for _, format := range []string{"json", "text"} {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			logger, err := NewLogger(&buf, format, "info")
			if err != nil {
				t.Fatal(err)
			}
			logger.With("component", "x").WithGroup("g").Info("m", "duration", 1500*time.Millisecond,
				slog.Any("retry_after", 30*time.Second), "lag_seconds", 2*time.Millisecond, "n", 7)
			out := buf.String()
			want := []string{`"duration_seconds":1.5`, `"retry_after_seconds":30`, `"lag_seconds":0.002`, `"n":7`}
			if format == "text" {
				want = []string{"g.duration_seconds=1.5", "g.retry_after_seconds=30", "g.lag_seconds=0.002", "g.n=7"}
			}
			for _, w := range want {
				if !strings.Contains(out, w) {
					t.Errorf("%s lacks %s", out, w)
				}
			}
			if strings.Contains(out, "1500000000") || strings.Contains(out, "1.5s") {
				t.Errorf("a duration kept slog's own form: %s", out)
			}
		})
	}
	if _, err := NewLogger(&bytes.Buffer{}, "xml", "info"); err == nil {
		t.Error("format xml accepted")
	}
	if _, err := NewLogger(&bytes.Buffer{}, "json", "loud"); err == nil {
		t.Error("level loud accepted")
	}
}

func TestAdminPageURL(t *testing.T) {
	host, _ := os.Hostname()
	for _, tt := range []struct{ addr, want string }{
		{"127.0.0.1:43121", "http://127.0.0.1:43121/ui/"},
		{"[::1]:9788", "http://[::1]:9788/ui/"},
		{"0.0.0.0:9788", "http://" + host + ":9788/ui/"},
		{"[::]:9788", "http://" + host + ":9788/ui/"},
	} {
		if got := AdminPageURL(tt.addr); got != tt.want {
			t.Errorf("AdminPageURL(%q) = %q, want %q", tt.addr, got, tt.want)
		}
	}
}

// A run logs in JSON: the start line names the admin page at the real port
// (listen :0) and notes the token without showing it; a delivery shows up
// in the summary written at shutdown; the stop line says where the
// checkpoint is, what became of the attempts in flight and that the store
// is closed; no duration is an integer of nanoseconds.
func TestPipeline_StartSummaryStopLog(t *testing.T) {
	s := mariadbtest.New(t, mariadbtest.Options{})
	schema, db := s.NewSchema(t)
	if _, err := db.Exec("CREATE TABLE deals (id INT PRIMARY KEY, customer VARCHAR(64))"); err != nil {
		t.Fatal(err)
	}
	var got atomic.Int32
	erp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(erp.Close)
	const token = "admin-tok-77e1b2"
	cfgPath := writeConfig(t, t.TempDir(), fmt.Sprintf(`
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
rules:
  - name: deals
    table: %s.deals
    on: [insert]
    event: Deal
    webhooks: [erp]
bodies:
  Deal:
    fields:
      id: row.id
webhooks:
  erp:
    url: %s/deals
log:
  delivery_success: summary
  summary_interval: 1h
`, s.URL(), schema, token, schema, erp.URL))
	cfg, _, err := Load(context.Background(), cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncWriter{}
	logger, err := NewLogger(logs, "json", "info")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p, err := Open(ctx, cfg, Options{Dir: filepath.Dir(cfgPath), Logger: logger, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	p.Start(ctx)
	waitReady(t, p.Addr())
	if _, err := db.Exec("INSERT INTO deals VALUES (1, 'Acme')"); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); got.Load() < 1; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no delivery within 30s:\n%s", logs.String())
		}
	}
	// Wait until the delivery's result is stored, so the summary counts it.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if ds, err := p.store.List(ctx, dispatch.Filter{Status: dispatch.StatusOK}); err == nil && len(ds) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the delivery's result was not stored within 30s")
		}
	}
	cancel()
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}

	out := logs.String()
	if strings.Contains(out, token) {
		t.Errorf("the admin token reached the log:\n%s", out)
	}
	lines := map[string]map[string]any{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not a JSON line: %q", l)
		}
		for k, v := range m {
			if _, isNum := v.(float64); isNum && durationish.MatchString(k) && !strings.HasSuffix(k, "_seconds") {
				t.Errorf("line %q: %s = %v is a duration without its unit (slog's integer nanoseconds)", m["msg"], k, v)
			}
		}
		lines[m["msg"].(string)] = m
	}
	start := lines["rowhook started"]
	if want := "http://" + p.Addr() + "/ui/"; start["admin_page"] != want || !strings.HasSuffix(want, "/ui/") || strings.HasSuffix(p.Addr(), ":0") {
		t.Errorf("start line admin_page = %v, want %s", start["admin_page"], want)
	}
	if note, _ := start["admin_token"].(string); !strings.HasPrefix(note, "set") {
		t.Errorf("start line admin_token = %v, want a note that it is set", start["admin_token"])
	}
	sum := lines["deliveries"]
	if sum["webhook"] != "erp" || sum["ok"] != 1.0 || sum["retry"] != 0.0 || sum["dead"] != 0.0 {
		t.Errorf("summary line = %v, want webhook erp ok 1", sum)
	}
	if p50, ok := sum["latency_p50_seconds"].(float64); !ok || p50 <= 0 || p50 > 30 {
		t.Errorf("summary latency_p50_seconds = %v, want seconds of one request", sum["latency_p50_seconds"])
	}
	stop := lines["rowhook stopped"]
	if cp, _ := stop["checkpoint"].(string); cp == "" || cp == "none" {
		t.Errorf("stop line checkpoint = %v", stop["checkpoint"])
	}
	if stop["in_flight_left_pending"] != 0.0 || stop["store_closed"] != p.store.Where {
		t.Errorf("stop line = %v", stop)
	}
}
