package adminui_test

import (
	"context"
	"encoding/json"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rowhook/rowhook/internal/adminui"
)

func serve(t *testing.T, h http.Handler, method, path, token string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestHandler_Assets(t *testing.T) {
	h := adminui.Handler(adminui.Options{Token: "tok"})
	tests := []struct {
		path       string
		wantStatus int
		wantType   string
		wantBody   string
	}{
		{"/ui/", 200, "text/html; charset=utf-8", `<script src="app.js" defer></script>`},
		{"/ui/index.html", 200, "text/html; charset=utf-8", `<meta name="rowhook-api" content="/">`},
		{"/ui/app.js", 200, "text/javascript; charset=utf-8", "'use strict';"},
		{"/ui/style.css", 200, "text/css; charset=utf-8", ":root {"},
		{"/ui/missing.js", 404, "", ""},
		{"/ui/assets/app.js", 404, "", ""},
		{"/ui", 301, "", ""},
		{"/elsewhere", 404, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			rec := serve(t, h, "GET", tt.path, "")
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d; body %s", rec.Code, tt.wantStatus, rec.Body)
			}
			if tt.wantStatus == 301 {
				if loc := rec.Header().Get("Location"); loc != "/ui/" {
					t.Errorf("Location %q, want /ui/", loc)
				}
				return
			}
			if tt.wantStatus != 200 {
				return
			}
			if ct := rec.Header().Get("Content-Type"); ct != tt.wantType {
				t.Errorf("Content-Type %q, want %q", ct, tt.wantType)
			}
			if !strings.Contains(rec.Body.String(), tt.wantBody) {
				t.Errorf("body lacks %q", tt.wantBody)
			}
			for k, want := range map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY"} {
				if got := rec.Header().Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self'") {
				t.Errorf("Content-Security-Policy %q", csp)
			}
		})
	}
}

func TestHandler_Options(t *testing.T) {
	tests := []struct {
		name      string
		opts      adminui.Options
		path      string
		wantMeta  string
		wantRedir string
	}{
		{"custom prefix and API base", adminui.Options{Prefix: "/admin/page", APIBase: "/api"}, "/admin/page/", `content="/api/"`, "/admin/page/"},
		{"API base is escaped", adminui.Options{APIBase: `/a"><script>x</script>/`}, "/ui/", `content="/a&#34;&gt;&lt;script&gt;x&lt;/script&gt;/"`, "/ui/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := adminui.Handler(tt.opts)
			rec := serve(t, h, "GET", tt.path, "")
			if rec.Code != 200 || !strings.Contains(rec.Body.String(), tt.wantMeta) {
				t.Fatalf("GET %s: %d, want the page with %s:\n%s", tt.path, rec.Code, tt.wantMeta, rec.Body)
			}
			if strings.Contains(rec.Body.String(), "<script>x") {
				t.Error("API base reached the page unescaped")
			}
			rec = serve(t, h, "GET", strings.TrimSuffix(tt.wantRedir, "/"), "")
			if rec.Code != 301 || rec.Header().Get("Location") != tt.wantRedir {
				t.Errorf("redirect: %d to %q, want 301 to %q", rec.Code, rec.Header().Get("Location"), tt.wantRedir)
			}
		})
	}
}

func TestHandler_Status(t *testing.T) {
	lag := 2.25
	at := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	full := func(ctx context.Context) adminui.Status {
		return adminui.Status{
			Version: "v1.2.3",
			Binlog: adminui.BinlogStatus{Connected: true, Flavor: "mariadb", File: "bin.000003", Pos: 1234,
				GTIDSet: "0-1-99", LagSeconds: &lag, EventTime: &at},
			Rules:    []adminui.RuleStatus{{Name: "won", Table: "crm.vtiger_potential", On: []string{"update"}, Event: "Won", Webhooks: []string{"erp"}}},
			Webhooks: []adminui.WebhookStatus{{Name: "erp", Kind: "soap", URL: "https://erp.example/ws", State: "paused", InFlight: 1}},
		}
	}
	tests := []struct {
		name       string
		opts       adminui.Options
		method     string
		token      string
		wantStatus int
		wantJSON   map[string]any // top-level keys checked
		wantError  string
	}{
		{"open listener needs no token", adminui.Options{Open: true, Status: full, AllowRedeliver: true}, "GET", "", 200,
			map[string]any{"allow_redeliver": true, "version": "v1.2.3"}, ""},
		{"right token", adminui.Options{Token: "s3cret", Status: full}, "GET", "s3cret", 200,
			map[string]any{"allow_redeliver": false}, ""},
		{"missing token", adminui.Options{Token: "s3cret", Status: full}, "GET", "", 401, nil, "missing or wrong bearer token"},
		{"wrong token", adminui.Options{Token: "s3cret", Status: full}, "GET", "s3cret2", 401, nil, "missing or wrong bearer token"},
		{"no token configured and not loopback", adminui.Options{Status: full}, "GET", "", 403, nil, "admin.token"},
		{"nil Status callback", adminui.Options{Open: true}, "GET", "", 200, map[string]any{"rules": []any{}, "webhooks": []any{}}, ""},
		{"POST is not allowed", adminui.Options{Open: true, Status: full}, "POST", "", 405, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := serve(t, adminui.Handler(tt.opts), tt.method, "/ui/api/status", tt.token)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.wantStatus, rec.Body)
			}
			if tt.wantStatus == 405 {
				return
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			var got map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("not JSON: %s", rec.Body)
			}
			if tt.wantError != "" {
				if msg, _ := got["error"].(string); !strings.Contains(msg, tt.wantError) {
					t.Errorf("error %q, want it to mention %q", msg, tt.wantError)
				}
				if tt.wantStatus == 401 && rec.Header().Get("WWW-Authenticate") == "" {
					t.Error("401 without WWW-Authenticate")
				}
				return
			}
			for k, want := range tt.wantJSON {
				gotJSON, _ := json.Marshal(got[k])
				wantJSON, _ := json.Marshal(want)
				if string(gotJSON) != string(wantJSON) {
					t.Errorf("%s = %s, want %s", k, gotJSON, wantJSON)
				}
			}
			if _, err := time.Parse(time.RFC3339Nano, got["now"].(string)); err != nil {
				t.Errorf("now: %v", err)
			}
		})
	}

	t.Run("document shape", func(t *testing.T) {
		rec := serve(t, adminui.Handler(adminui.Options{Open: true, Status: full}), "GET", "/ui/api/status", "")
		var st adminui.Status
		if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil {
			t.Fatal(err)
		}
		if st.Binlog.File != "bin.000003" || st.Binlog.Pos != 1234 || st.Binlog.LagSeconds == nil || *st.Binlog.LagSeconds != 2.25 ||
			len(st.Rules) != 1 || st.Rules[0].On[0] != "update" || st.Webhooks[0].State != "paused" || st.Webhooks[0].Kind != "soap" {
			t.Errorf("status round trip: %+v", st)
		}
		for _, key := range []string{`"lag_seconds": 2.25`, `"gtid_set": "0-1-99"`, `"in_flight": 1`, `"event_time": "2026-11-23T09:00:00Z"`} {
			if !strings.Contains(rec.Body.String(), key) {
				t.Errorf("status JSON lacks %s:\n%s", key, rec.Body)
			}
		}
	})

	t.Run("unknown page API", func(t *testing.T) {
		rec := serve(t, adminui.Handler(adminui.Options{Open: true}), "GET", "/ui/api/nope", "")
		if rec.Code != 404 || !strings.Contains(rec.Body.String(), `"error"`) {
			t.Errorf("GET /ui/api/nope: %d %s, want a 404 JSON error", rec.Code, rec.Body)
		}
	})

	t.Run("assets need no token", func(t *testing.T) {
		rec := serve(t, adminui.Handler(adminui.Options{Token: "s3cret"}), "GET", "/ui/", "")
		if rec.Code != 200 {
			t.Errorf("GET /ui/ without token: %d, want 200 (the page asks for the token)", rec.Code)
		}
	})
}

// assetFiles reads the embedded assets from the source tree.
func assetFiles(t *testing.T) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := fs.WalkDir(os.DirFS("assets"), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(filepath.Join("assets", p))
		files[p] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 3 {
		t.Fatalf("assets: %d files", len(files))
	}
	return files
}

// TestHandler_NoExternalURLs keeps the page self-contained: no CDN, no web
// fonts, nothing fetched from another origin.
func TestHandler_NoExternalURLs(t *testing.T) {
	external := []*regexp.Regexp{
		regexp.MustCompile(`(?i)https?://`),
		regexp.MustCompile(`(?i)\b(src|href|action)\s*=\s*["']?\s*//`),
		regexp.MustCompile(`(?i)url\(`),
		regexp.MustCompile(`(?i)@import|@font-face`),
		regexp.MustCompile(`(?i)\bwss?://`),
	}
	local := regexp.MustCompile(`(?i)\b(?:src|href)="([^"]*)"`)
	files := assetFiles(t)
	for name, text := range files {
		for _, re := range external {
			if m := re.FindString(text); m != "" {
				t.Errorf("%s: external reference %q", name, m)
			}
		}
		if !strings.HasSuffix(name, ".html") {
			continue
		}
		for _, m := range local.FindAllStringSubmatch(text, -1) {
			ref := m[1]
			if ref == "data:," {
				continue
			}
			if _, ok := files[ref]; !ok {
				t.Errorf("%s: %q is not an embedded asset", name, ref)
			}
		}
	}
}

// TestHandler_NoHTMLSinks keeps data out of the HTML parser: the page builds
// its DOM with textContent and createElement only.
func TestHandler_NoHTMLSinks(t *testing.T) {
	sinks := regexp.MustCompile(`innerHTML|outerHTML\s*=|insertAdjacentHTML|document\.write|\beval\(|new Function\(|setTimeout\(\s*['"]`)
	for name, text := range assetFiles(t) {
		if !strings.HasSuffix(name, ".js") {
			continue
		}
		if m := sinks.FindString(text); m != "" {
			t.Errorf("%s uses %q", name, m)
		}
	}
}
