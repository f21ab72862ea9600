package pipeline

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/rowhook/rowhook/internal/mariadbtest"
)

// routeCase is one request to rowhook's listener, the mounted route that
// serves it, and whether that route answers without the admin token.
type routeCase struct {
	method, path string
	pattern      string
	public       bool
}

// routeTable is every route `rowhook run` mounts, with at least one request
// each. TestRoutes_AdminToken fails when a mounted route is missing here,
// so a new route cannot be added without deciding on its protection.
var routeTable = []routeCase{
	{"GET", "/healthz", "GET /healthz", true},
	{"GET", "/readyz", "GET /readyz", true},
	{"GET", "/metrics", "GET /metrics", true},
	// The admin page's static files carry no data.
	{"GET", "/ui/", "/ui/", true},
	{"GET", "/ui/app.js", "/ui/", true},
	{"GET", "/ui/style.css", "/ui/", true},
	// / redirects to the page.
	{"GET", "/", "GET /{$}", true},
	// Its data does.
	{"GET", "/ui/api/status", "/ui/api/", false},
	// The perform list: records' bodies.
	{"GET", "/events/Deal/sample?limit=100", "GET /events/{name}/sample", false},
	{"GET", "/soap/lookup", "GET /soap/lookup", false},
	// Reloading re-reads the file, secrets included.
	{"POST", "/admin/reload", "POST /admin/reload", false},
	// The rule studio: recent CRM changes and what a rule would send.
	{"POST", "/studio/try", "POST /studio/try", false},
	{"GET", "/studio/changes", "GET /studio/changes", false},
	{"GET", "/studio/meta", "GET /studio/meta", false},
	// The admin API (and every unknown path, which falls to it).
	{"GET", "/deliveries", "/", false},
	{"GET", "/deliveries/d_nope", "/", false},
	{"POST", "/deliveries/d_nope/redeliver", "/", false},
	{"POST", "/deliveries/redeliver?status=dead", "/", false},
	{"GET", "/subscriptions", "/", false},
	{"POST", "/subscriptions", "/", false},
	{"GET", "/subscriptions/sub_nope", "/", false},
	{"DELETE", "/subscriptions/sub_nope", "/", false},
	{"GET", "/webhooks", "/", false},
	{"POST", "/webhooks/nope/enable", "/", false},
	{"GET", "/no/such/route", "/", false},
	{"POST", "/healthz", "/", false},
}

// routesConfig is a pipeline on 0.0.0.0 (off loopback) with a rule whose
// perform list reads table deals; token is admin.token ("" for none).
func routesConfig(s *mariadbtest.Server, schema, token string) string {
	return fmt.Sprintf(`
source:
  dsn: %s
  include: ['%s.*']
  heartbeat: 1s
http:
  listen: 0.0.0.0:0
state:
  path: state.db
studio:
  enabled: true
admin:
  token: '%s'
  allow_redeliver: true
  subscriptions: { enabled: true, allowed_hosts: [127.0.0.1] }
rules:
  - name: deals
    table: %s.deals
    event: Deal
bodies:
  Deal:
    fields:
      id: row.id
      customer: row.customer
`, s.URL(), schema, token, schema)
}

// Every route that returns CRM data, delivery logs or configuration needs
// the admin token on a listener off loopback; the probes, /metrics and the
// admin page's static files do not. The table must name every route the
// real server mounts.
func TestRoutes_AdminToken(t *testing.T) {
	s := mariadbtest.New(t, mariadbtest.Options{})
	schema, db := s.NewSchema(t)
	const secretRow = "Private Customer GmbH"
	if _, err := db.Exec("CREATE TABLE deals (id INT PRIMARY KEY, customer VARCHAR(64))"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("INSERT INTO deals VALUES (1, ?)", secretRow); err != nil {
		t.Fatal(err)
	}
	const token = "admin-tok-3f9a1c"

	p, logs := startTestPipeline(t, writeConfig(t, t.TempDir(), routesConfig(s, schema, token)))
	base := "http://" + localAddr(t, p.Addr())

	// The table against what is mounted, both ways.
	mounted := p.http.routes()
	for _, r := range mounted {
		i := slices.IndexFunc(routeTable, func(c routeCase) bool { return c.pattern == r.pattern })
		switch {
		case i < 0:
			t.Errorf("route %q is mounted but not in routeTable: add it, public or not", r.pattern)
		case routeTable[i].public != r.public:
			t.Errorf("route %q: mounted public=%v, routeTable says %v", r.pattern, r.public, routeTable[i].public)
		}
	}
	for _, c := range routeTable {
		if !slices.ContainsFunc(mounted, func(r route) bool { return r.pattern == c.pattern }) {
			t.Errorf("routeTable names %q, which is not mounted", c.pattern)
		}
		if got := p.http.pattern(httptest.NewRequest(c.method, c.path, nil)); got != c.pattern {
			t.Errorf("%s %s is served by route %q, routeTable says %q", c.method, c.path, got, c.pattern)
		}
	}

	for _, c := range routeTable {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			for _, tok := range []string{"", "wrong-token"} {
				code, body := request(t, c.method, base+c.path, tok)
				if c.public {
					if code == http.StatusUnauthorized || code == http.StatusForbidden || code >= 500 {
						t.Errorf("token %q: %d, want the public route served", tok, code)
					}
					continue
				}
				if code != http.StatusUnauthorized {
					t.Errorf("token %q: %d %s, want 401", tok, code, body)
				}
				if strings.Contains(body, secretRow) {
					t.Errorf("token %q: the answer carries CRM data: %s", tok, body)
				}
			}
			code, body := request(t, c.method, base+c.path, token)
			if code == http.StatusUnauthorized || code == http.StatusForbidden {
				t.Errorf("with the token: %d %s", code, body)
			}
		})
	}
	// Paths dressed up to reach protected handlers through public routes
	// or the mux's cleaning: none answers with data without the token.
	for _, path := range []string{
		"/ui/api%2Fstatus", "/ui/%61pi/status", "/ui//api/status", "/ui/./api/status", "/ui/x/../api/status",
		"/UI/api/status", "/ui/api/status/", "/events/Deal/sample/", "/events/Deal%2Fsample", "/./events/Deal/sample",
		"/healthz/../events/Deal/sample", "/metrics/../deliveries", "/ui/../events/Deal/sample",
	} {
		code, body := request(t, "GET", base+path, "")
		if code < 300 && (strings.Contains(body, secretRow) || strings.Contains(body, `"binlog"`) || strings.Contains(body, `"deliveries"`)) {
			t.Errorf("GET %s without the token: %d %s", path, code, body)
		}
	}
	// / sends a browser to the admin page.
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if res, err := noFollow.Get(base + "/"); err != nil {
		t.Error(err)
	} else if res.Body.Close(); res.StatusCode != http.StatusFound || res.Header.Get("Location") != "/ui/" {
		t.Errorf("GET / = %s to %q, want 302 to /ui/", res.Status, res.Header.Get("Location"))
	}
	// With the token (as Zapier's perform list sends it), the records.
	if code, body := request(t, "GET", base+"/events/Deal/sample", token); code != 200 || !strings.Contains(body, secretRow) {
		t.Errorf("perform list with the token: %d %s", code, body)
	}
	// REST hooks as Zapier subscribes: only to events the rules produce,
	// read back by id with the token only.
	zap := `{"subscription_url": "http://127.0.0.1:1/hooks/standard/1/x", "target_url": "http://127.0.0.1:1/hooks/standard/1/x", "event": "%s"}`
	if code, body := requestBody(t, "POST", base+"/subscriptions", token, fmt.Sprintf(zap, "new_contact")); code != 422 || !strings.Contains(body, `"Deal"`) {
		t.Errorf("subscribe to an event no rule produces: %d %s, want 422 naming Deal", code, body)
	}
	code, body := requestBody(t, "POST", base+"/subscriptions", token, fmt.Sprintf(zap, "Deal"))
	if code != 201 {
		t.Fatalf("Zapier's subscribe: %d %s", code, body)
	}
	var sub struct{ ID string }
	if err := json.Unmarshal([]byte(body), &sub); err != nil || sub.ID == "" {
		t.Fatalf("subscribe answer %s: %v", body, err)
	}
	id := sub.ID
	if code, body := request(t, "GET", base+"/subscriptions/"+id, token); code != 200 || !strings.Contains(body, `"event": "Deal"`) {
		t.Errorf("GET /subscriptions/%s: %d %s", id, code, body)
	}
	if code, _ := request(t, "GET", base+"/subscriptions/"+id, ""); code != 401 {
		t.Errorf("GET /subscriptions/%s without the token: %d, want 401", id, code)
	}
	if strings.Contains(logs.String(), "admin.token is not set") {
		t.Errorf("warned about admin.token while it is set:\n%s", logs)
	}
}

// Off loopback without admin.token, `run` warns at start naming the key,
// and every protected route answers 403 (the public ones still serve).
func TestRoutes_NoAdminToken(t *testing.T) {
	s := mariadbtest.New(t, mariadbtest.Options{})
	schema, db := s.NewSchema(t)
	if _, err := db.Exec("CREATE TABLE deals (id INT PRIMARY KEY, customer VARCHAR(64))"); err != nil {
		t.Fatal(err)
	}
	p, logs := startTestPipeline(t, writeConfig(t, t.TempDir(), routesConfig(s, schema, "")))
	base := "http://" + localAddr(t, p.Addr())
	for _, c := range routeTable {
		code, body := request(t, c.method, base+c.path, "some-token")
		if c.public && (code == http.StatusUnauthorized || code == http.StatusForbidden) {
			t.Errorf("%s %s: %d, want the public route served", c.method, c.path, code)
		}
		if !c.public && (code != http.StatusForbidden || !strings.Contains(body, "admin.token")) {
			t.Errorf("%s %s: %d %s, want 403 naming admin.token", c.method, c.path, code, body)
		}
	}
	var warn string
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "level=WARN") && strings.Contains(line, "admin.token") {
			warn = line
		}
	}
	if warn == "" || !strings.Contains(warn, "0.0.0.0:0") || !strings.Contains(warn, "403") {
		t.Errorf("no start-up warning naming http.listen, admin.token and the 403:\n%s", logs)
	}
}

// localAddr is a listener address to connect to from this host.
func localAddr(t *testing.T, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", port)
}

func request(t *testing.T, method, url, token string) (int, string) {
	t.Helper()
	return requestBody(t, method, url, token, "")
}

func requestBody(t *testing.T, method, url, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
