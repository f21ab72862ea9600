package dispatch

import (
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/internal/yamlconf"
	"github.com/rowhook/rowhook/rules"
)

const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func TestConfig_Validate(t *testing.T) {
	ok := WebhookConfig{URL: "https://erp.example.com/deals/{{ row.potentialid }}"}
	tests := []struct {
		name    string
		mutate  func(c *Config)
		path    string
		message string
	}{
		{"valid", func(*Config) {}, "", ""},
		{"missing url", func(c *Config) { c.Webhooks["erp"] = WebhookConfig{} }, "webhooks.erp.url", "missing"},
		{"bad scheme", func(c *Config) { c.Webhooks["erp"] = WebhookConfig{URL: "ftp://x/"} }, "webhooks.erp.url", "scheme"},
		{"bad template", func(c *Config) { c.Webhooks["erp"] = WebhookConfig{URL: "https://x/{{ foo }}"} }, "webhooks.erp.url", "row.COLUMN"},
		{"method", func(c *Config) { w := ok; w.Method = "BREW"; c.Webhooks["erp"] = w }, "webhooks.erp.method", "unknown method"},
		{"content type", func(c *Config) { w := ok; w.ContentType = "yaml"; c.Webhooks["erp"] = w }, "webhooks.erp.content_type", "unknown content type"},
		{"bearer without token", func(c *Config) { w := ok; w.Auth.Type = "bearer"; c.Webhooks["erp"] = w }, "webhooks.erp.auth.token", "missing"},
		{"api key place", func(c *Config) {
			w := ok
			w.Auth = AuthConfig{Type: "api_key", Name: "k", Value: "v", In: "cookie"}
			c.Webhooks["erp"] = w
		}, "webhooks.erp.auth.in", "header or query"},
		{"oauth2 token url", func(c *Config) {
			w := ok
			w.Auth = AuthConfig{Type: "oauth2_client_credentials", ClientID: "id"}
			c.Webhooks["erp"] = w
		}, "webhooks.erp.auth.token_url", "missing"},
		{"schedule needed", func(c *Config) { w := ok; w.Mode = ModeScheduled; c.Webhooks["erp"] = w }, "webhooks.erp.schedule", "missing"},
		{"bad cron", func(c *Config) { w := ok; w.Mode, w.Schedule = ModeScheduled, "61 * * * *"; c.Webhooks["erp"] = w }, "webhooks.erp.schedule", "minute field"},
		{"bad secret", func(c *Config) { w := ok; w.Signing.Secret = "whsec_!!"; c.Webhooks["erp"] = w }, "webhooks.erp.signing.secret", "base64"},
		{"rate", func(c *Config) { w := ok; w.RateLimit = "fast"; c.Webhooks["erp"] = w }, "webhooks.erp.rate_limit", "N/s"},
		{"ordering", func(c *Config) { w := ok; w.Ordering = "global"; c.Webhooks["erp"] = w }, "webhooks.erp.ordering", "unknown ordering"},
		{"retry", func(c *Config) {
			w := ok
			w.Retry = RetryConfig{InitialInterval: time.Hour, MaxInterval: time.Minute}
			c.Webhooks["erp"] = w
		}, "webhooks.erp.retry.max_interval", "less than"},
		{"header name", func(c *Config) { w := ok; w.Headers = map[string]string{"Bad Header": "x"}; c.Webhooks["erp"] = w }, "webhooks.erp.headers.Bad Header", "not a valid header"},
		{"circuit threshold", func(c *Config) { c.Delivery.Circuit.FailureThreshold = -1 }, "delivery.circuit.failure_threshold", "at least 1"},
		{"webhook circuit threshold", func(c *Config) { w := ok; w.Circuit.FailureThreshold = -3; c.Webhooks["erp"] = w }, "webhooks.erp.circuit.failure_threshold", "at least 1"},
		{"pause_for", func(c *Config) { c.Delivery.PauseFor = -time.Second }, "delivery.pause_for", "negative"},
		{"xml root", func(c *Config) { w := ok; w.ContentType, w.XMLRoot = ContentXML, "1deal"; c.Webhooks["erp"] = w }, "webhooks.erp.xml_root", "not an XML element name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Config{Webhooks: map[string]WebhookConfig{"erp": ok}}
			tt.mutate(&c)
			err := c.Validate()
			if tt.path == "" {
				if err != nil {
					t.Fatalf("Validate() = %v", err)
				}
				return
			}
			var pe *yamlconf.PathError
			if !errors.As(err, &pe) {
				t.Fatalf("Validate() = %v, want a PathError at %s", err, tt.path)
			}
			if pe.Path != tt.path || !strings.Contains(pe.Err.Error(), tt.message) {
				t.Errorf("Validate() = %q at %q, want %q containing %q", pe.Err, pe.Path, tt.path, tt.message)
			}
		})
	}
}

func TestParseSchedule_Next(t *testing.T) {
	base := time.Date(2026, 11, 23, 10, 7, 30, 0, time.UTC) // a Monday
	tests := []struct {
		spec string
		want time.Time
	}{
		{"every 5m", time.Date(2026, 11, 23, 10, 10, 0, 0, time.UTC)},
		{"every 1h", time.Date(2026, 11, 23, 11, 0, 0, 0, time.UTC)},
		{"*/15 * * * *", time.Date(2026, 11, 23, 10, 15, 0, 0, time.UTC)},
		{"0 2 * * *", time.Date(2026, 11, 24, 2, 0, 0, 0, time.UTC)},
		{"30 9-17 * * mon-fri", time.Date(2026, 11, 23, 10, 30, 0, 0, time.UTC)},
		{"0 0 * * sun", time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)},
		{"0 0 * * 7", time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)},
		{"0 0 1 jan *", time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"0 12 1,15 * *", time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)},
		// Both day fields restricted: either matches (Vixie cron).
		{"0 0 1 * mon", time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)},
		{"@hourly", time.Date(2026, 11, 23, 11, 0, 0, 0, time.UTC)},
		{"0 0 30 2 *", time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			s, err := ParseSchedule(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.Next(base); !got.Equal(tt.want) {
				t.Errorf("Next(%v) = %v, want %v", base, got, tt.want)
			}
		})
	}
	for _, bad := range []string{"every", "every 10ms", "* * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "*/0 * * * *", "5-1 * * * *", "* * * foo *"} {
		if _, err := ParseSchedule(bad); err == nil {
			t.Errorf("ParseSchedule(%q) accepted", bad)
		}
	}
	// Cron in a zone: 02:00 in Paris is 01:00 UTC in winter.
	s, _ := ParseSchedule("0 2 * * *")
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	if got := WithLocation(s, paris).Next(base); !got.Equal(time.Date(2026, 11, 24, 1, 0, 0, 0, time.UTC)) {
		t.Errorf("Paris 02:00 = %v UTC", got.UTC())
	}
}

func TestRetryConfig_Backoff(t *testing.T) {
	r := RetryConfig{MaxAttempts: 10, InitialInterval: 2 * time.Second, MaxInterval: time.Minute}
	tests := []struct {
		n          int
		retryAfter time.Duration
		jitter     float64
		want       time.Duration
	}{
		{1, 0, 1, 2 * time.Second},
		{2, 0, 1, 4 * time.Second},
		{3, 0, 1, 8 * time.Second},
		{3, 0, 0, 4 * time.Second},
		{3, 0, 0.5, 6 * time.Second},
		{6, 0, 1, time.Minute}, // 64s capped
		{30, 0, 1, time.Minute},
		{1, 30 * time.Second, 1, 30 * time.Second}, // Retry-After wins when longer
		{6, 5 * time.Second, 1, time.Minute},
		// A Retry-After beyond max_interval is honoured up to it.
		{1, 315360000 * time.Second, 1, time.Minute},
		{1, 1<<63 - 1, 0, time.Minute},
	}
	for _, tt := range tests {
		if got := r.Backoff(tt.n, tt.retryAfter, tt.jitter); got != tt.want {
			t.Errorf("Backoff(%d, %v, %v) = %v, want %v", tt.n, tt.retryAfter, tt.jitter, got, tt.want)
		}
	}
}

func TestClassify(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		status     int
		retryAfter string
		ok, retry  bool
		gone       bool
		after      time.Duration
	}{
		{200, "", true, false, false, 0},
		{204, "", true, false, false, 0},
		{400, "", false, false, false, 0},
		{401, "", false, false, false, 0},
		{404, "", false, false, false, 0},
		{408, "", false, true, false, 0},
		{410, "", false, false, true, 0},
		{429, "7", false, true, false, 7 * time.Second},
		{503, now.Add(90 * time.Second).Format(http.TimeFormat), false, true, false, 90 * time.Second},
		{500, "soon", false, true, false, 0},
		{503, "315360000", false, true, false, 315360000 * time.Second},
		// Past what a Duration holds: the longest one, not an overflow.
		{503, "99999999999999999999", false, true, false, time.Duration(maxRetryAfter) * time.Second},
		{429, "-5", false, true, false, 0},
		{302, "", false, false, false, 0},
	}
	for _, tt := range tests {
		h := http.Header{}
		if tt.retryAfter != "" {
			h.Set("Retry-After", tt.retryAfter)
		}
		err := classify(tt.status, h, now)
		if (err == nil) != tt.ok {
			t.Errorf("%d: err = %v", tt.status, err)
			continue
		}
		if err == nil {
			continue
		}
		ae, retry := retryable(err)
		if retry != tt.retry || ae.Gone != tt.gone || ae.RetryAfter != tt.after {
			t.Errorf("%d: retry=%v gone=%v after=%v", tt.status, retry, ae.Gone, ae.RetryAfter)
		}
	}
}

func testEvent() *rules.Event {
	return &rules.Event{
		ID: "0-1-42:0:new-deal", Rule: "new-deal", Name: "NewOpportunity", Key: "crm.vtiger_potential:7",
		Body: rules.Body{
			{Name: "id", Value: int64(7)},
			{Name: "name", Value: "Tom & Jerry <Ltd>"},
			{Name: "amount", Value: cdc.Decimal("1250.50")},
			{Name: "closed", Value: nil},
			{Name: "contact", Value: rules.Body{{Name: "email", Value: "a@b.c"}}},
			{Name: "tags", Value: []any{"x", int64(2)}},
		},
		Change: &cdc.Change{Schema: "crm", Table: "vtiger_potential", Op: cdc.OpInsert,
			After: cdc.Row{"potentialid": int64(7), "potentialname": "a/b c"}, PK: cdc.Row{"potentialid": int64(7)}},
	}
}

func TestBuiltinEncoder_Encode(t *testing.T) {
	tests := []struct {
		name, method, ct string
		wantCT, wantBody string
		wantQuery        string
	}{
		{"json", "POST", ContentJSON, "application/json",
			`{"id":7,"name":"Tom \u0026 Jerry \u003cLtd\u003e","amount":"1250.50","closed":null,"contact":{"email":"a@b.c"},"tags":["x",2]}`, ""},
		{"form", "POST", ContentForm, "application/x-www-form-urlencoded",
			`id=7&name=Tom+%26+Jerry+%3CLtd%3E&amount=1250.50&closed=&contact=%7B%22email%22%3A%22a%40b.c%22%7D&tags=%5B%22x%22%2C2%5D`, ""},
		{"xml", "PUT", ContentXML, "application/xml; charset=utf-8",
			`<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<deal><id>7</id><name>Tom &amp; Jerry &lt;Ltd&gt;</name><amount>1250.50</amount><closed></closed><contact><email>a@b.c</email></contact><tags><item>x</item><item>2</item></tags></deal>`, ""},
		{"text", "POST", ContentText, "text/plain; charset=utf-8",
			"id: 7\nname: Tom & Jerry <Ltd>\namount: 1250.50\nclosed: \ncontact: {\"email\":\"a@b.c\"}\ntags: [\"x\",2]\n", ""},
		{"get", "GET", ContentJSON, "", "", "id=7&name=Tom+%26+Jerry+%3CLtd%3E&amount=1250.50&closed=&contact=%7B%22email%22%3A%22a%40b.c%22%7D&tags=%5B%22x%22%2C2%5D"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := WebhookConfig{URL: "https://x/", Method: tt.method, ContentType: tt.ct, XMLRoot: "deal"}.withDefaults(Config{}.WithDefaults().Delivery)
			enc, ok := builtinEncoder(cfg)
			if !ok {
				t.Fatal("no encoder")
			}
			p, err := enc.Encode(testEvent())
			if err != nil {
				t.Fatal(err)
			}
			if p.ContentType != tt.wantCT || string(p.Body) != tt.wantBody {
				t.Errorf("got %q\n%s\nwant %q\n%s", p.ContentType, p.Body, tt.wantCT, tt.wantBody)
			}
			if tt.wantQuery != "" {
				u, _ := appendQuery("https://x/?a=1", testEvent().Body, p.Query)
				if u != "https://x/?a=1&"+tt.wantQuery {
					t.Errorf("url = %s", u)
				}
			}
		})
	}
}

func TestURLTemplate_Render(t *testing.T) {
	tests := []struct {
		tmpl, want, err string
	}{
		{"https://erp/deals/{{ row.potentialid }}", "https://erp/deals/7", ""},
		{"https://erp/d/{{row.potentialname}}?n={{ row.potentialname }}&e={{ event.name }}", "https://erp/d/a%2Fb%20c?n=a%2Fb+c&e=NewOpportunity", ""},
		{"https://erp/{{ pk.potentialid }}/{{ body.amount }}", "https://erp/7/1250.50", ""},
		{"https://erp/{{ old.potentialid }}", "", "old.potentialid has no value"},
	}
	for _, tt := range tests {
		tp, err := parseURLTemplate(tt.tmpl)
		if err != nil {
			t.Fatalf("%s: %v", tt.tmpl, err)
		}
		got, err := tp.render(testEvent())
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: err = %v, want %q", tt.tmpl, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s = %q (%v), want %q", tt.tmpl, got, err, tt.want)
		}
	}
}

func TestSign(t *testing.T) {
	key, err := decodeSecret(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	wh, err := standardwebhooks.NewWebhook(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"id":7}`)
	now := time.Now()
	h := http.Header{}
	h.Set(HeaderWebhookID, "msg_abc")
	signRequest(h, key, "msg_abc", now, body)
	if err := wh.Verify(body, h); err != nil {
		t.Fatalf("standard-webhooks rejects our signature: %v", err)
	}
	if err := wh.Verify([]byte(`{"id":8}`), h); err == nil {
		t.Fatal("tampered body verified")
	}
}

func TestRedactor(t *testing.T) {
	cfg := WebhookConfig{
		Auth:          AuthConfig{Type: "api_key", Name: "apikey", Value: "s3cr3t-key", In: "query"},
		SecretHeaders: []string{"X-Erp-Session"},
		Headers:       map[string]string{"X-Erp-Session": "sess-12345"},
		Signing:       SigningConfig{Secret: testSecret},
	}
	r := newRedactor(cfg)
	u := r.url("https://user:pw@erp/x?apikey=s3cr3t-key&id=7")
	if strings.Contains(u, "s3cr3t") || strings.Contains(u, ":pw@") || !strings.Contains(u, "id=7") {
		t.Errorf("url = %s", u)
	}
	h := r.header(http.Header{"X-Erp-Session": {"sess-12345"}, "Authorization": {"Bearer t"}, "Webhook-Signature": {"v1,x"}, "X-Other": {"contains s3cr3t-key"}})
	for _, k := range []string{"X-Erp-Session", "Authorization", "Webhook-Signature"} {
		if h[k][0] != Redacted {
			t.Errorf("%s = %v", k, h[k])
		}
	}
	if h["X-Other"][0] != "contains "+Redacted {
		t.Errorf("X-Other = %v", h["X-Other"])
	}
}

func TestGuard_AllowedIP(t *testing.T) {
	g, err := NewGuard([]string{"10.1.0.0/16", "192.168.5.5"})
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]bool{
		"8.8.8.8": true, "127.0.0.1": false, "::1": false, "10.0.0.1": false, "10.1.2.3": true,
		"192.168.5.5": true, "192.168.5.6": false, "169.254.169.254": false, "fe80::1": false,
		"100.64.0.1": false, "0.0.0.0": false, "::ffff:127.0.0.1": false, "224.0.0.1": false, "2606:4700::1111": true,
	}
	for ip, want := range tests {
		if got := g.AllowedIP(netip.MustParseAddr(ip)); got != want {
			t.Errorf("AllowedIP(%s) = %v, want %v", ip, got, want)
		}
	}
}

func TestDeliveryID(t *testing.T) {
	a := DeliveryID("0-1-42:0:r", "erp", "")
	if a != DeliveryID("0-1-42:0:r", "erp", "") {
		t.Fatal("not stable")
	}
	for _, other := range []string{DeliveryID("0-1-42:0:r", "crm", ""), DeliveryID("0-1-42:1:r", "erp", ""), DeliveryID("0-1-42:0:r", "erp", "sub_1")} {
		if other == a {
			t.Errorf("collision %s", a)
		}
	}
	if !strings.HasPrefix(a, "msg_") || len(a) != 4+24 {
		t.Errorf("id %q", a)
	}
}
