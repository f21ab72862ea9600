package dispatch

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rowhook/rowhook/internal/yamlconf"
)

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
