package dispatch

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rowhook/rowhook/internal/yamlconf"
)

func TestStateConfig_Validate(t *testing.T) {
	tests := []struct {
		name    string
		state   StateConfig
		path    string
		message string
	}{
		{"default is sqlite", StateConfig{}, "", ""},
		{"sqlite", StateConfig{Driver: "sqlite", Path: "/var/lib/rowhook/state.db"}, "", ""},
		{"mysql", StateConfig{Driver: "mysql", DSN: "rowhook:pw@tcp(db:3306)/rowhook_state"}, "", ""},
		{"mysql URL", StateConfig{Driver: "mysql", DSN: "mysql://rowhook:pw@db/rowhook_state"}, "", ""},
		{"mysql without dsn", StateConfig{Driver: "mysql"}, "state.dsn", "missing"},
		{"sqlite with dsn", StateConfig{Driver: "sqlite", DSN: "rowhook:pw@tcp(db:3306)/x"}, "state.dsn", "driver mysql"},
		{"unknown driver", StateConfig{Driver: "postgres"}, "state.driver", `unknown driver "postgres"`},
		{"driver names are exact", StateConfig{Driver: "MySQL", DSN: "x"}, "state.driver", "sqlite or mysql"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Config{State: tt.state}.Validate()
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
			if strings.Contains(err.Error(), "pw@") {
				t.Errorf("error shows the DSN: %v", err)
			}
		})
	}
}

// TestStateConfig_Parse reads the state block from YAML, the password from
// the environment, and locates a validation error in the file.
func TestStateConfig_Parse(t *testing.T) {
	env := map[string]string{"STATE_PW": "s3cret"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	var c Config
	doc, err := yamlconf.ParseEnv("rowhook.yaml", strings.NewReader("state:\n  driver: mysql\n  dsn: rowhook:${STATE_PW}@tcp(db:3306)/rowhook_state\n"), &c, lookup)
	if err != nil {
		t.Fatal(err)
	}
	if c.State.Driver != StateMySQL || c.State.DSN != "rowhook:s3cret@tcp(db:3306)/rowhook_state" {
		t.Errorf("state = %+v", c.State)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate() = %v", err)
	}
	if d := (Config{}).WithDefaults(); d.State.Driver != StateSQLite || d.State.Path != DefaultStatePath {
		t.Errorf("defaults: driver %q path %q", d.State.Driver, d.State.Path)
	}

	c = Config{}
	doc, err = yamlconf.ParseEnv("rowhook.yaml", strings.NewReader("state:\n  driver: mysql\n  retention: 24h\n"), &c, lookup)
	if err != nil {
		t.Fatal(err)
	}
	err = doc.Locate(c.Validate())
	if err == nil || !strings.Contains(err.Error(), "rowhook.yaml:2:") || !strings.Contains(err.Error(), "state.dsn") {
		t.Errorf("located error = %v, want it at rowhook.yaml:2 naming state.dsn", err)
	}
}

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
