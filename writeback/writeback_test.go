package writeback

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rowhook/rowhook/internal/yamlconf"
)

func TestConfig_Validate(t *testing.T) {
	ok := DefaultConfig()
	ok.DSN = "crm:secret@tcp(primary:3306)/vtiger"
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string // "" = valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"url dsn", func(c *Config) { c.DSN = "mysql://crm:secret@primary:3306/vtiger" }, ""},
		{"empty dsn is allowed", func(c *Config) { c.DSN = "" }, ""},
		{"bad dsn", func(c *Config) { c.DSN = "crm:secret@primary/vtiger" }, "writeback.dsn: bad DSN"},
		{"bad scheme", func(c *Config) { c.DSN = "postgres://crm:secret@primary/vtiger" }, "writeback.dsn: URL scheme must be mysql://"},
		{"bad mode", func(c *Config) { c.Mode = "tag" }, `writeback.mode: must be auto, annotate or marker, not "tag"`},
		{"bad marker table", func(c *Config) { c.MarkerTable = "a.b.c" }, "writeback.marker_table: must be table or schema.table"},
		{"negative timeout", func(c *Config) { c.Timeout = -time.Second }, "writeback.timeout: must not be negative"},
		{"sub-second lock wait", func(c *Config) { c.LockWaitTimeout = 500 * time.Millisecond }, "writeback.lock_wait_timeout: must be at least 1s"},
		{"backoff above max", func(c *Config) { c.Backoff = time.Hour }, "writeback.backoff: must not exceed writeback.max_backoff"},
		{"negative attempts", func(c *Config) { c.MaxAttempts = -1 }, "writeback.max_attempts: must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.mutate(&c)
			err := c.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want %q", err, tt.want)
			}
			var pe *yamlconf.PathError
			if !errors.As(err, &pe) {
				t.Errorf("error %v is not a *yamlconf.PathError", err)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error leaks the password: %v", err)
			}
		})
	}
}

func TestConfig_RequireDSN(t *testing.T) {
	if err := (Config{}).RequireDSN(nil); err != nil {
		t.Errorf("no rules: %v", err)
	}
	err := (Config{}).RequireDSN([]string{"b", "a"})
	if err == nil || !strings.Contains(err.Error(), "writeback.dsn: is required: rules a, b write back") {
		t.Errorf("RequireDSN = %v", err)
	}
}

func TestConfig_RetryDelay(t *testing.T) {
	c := Config{Backoff: time.Second, MaxBackoff: 10 * time.Second}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
	for i, w := range want {
		if got := c.RetryDelay(i + 1); got != w {
			t.Errorf("RetryDelay(%d) = %s, want %s", i+1, got, w)
		}
	}
	if got := c.RetryDelay(200); got != 10*time.Second {
		t.Errorf("RetryDelay(200) = %s (overflow?)", got)
	}
}

func TestMapping_Validate(t *testing.T) {
	tests := []struct {
		name string
		m    Mapping
		want []string // substrings; none = valid
	}{
		{"valid", Mapping{Table: "vtiger.vtiger_potentialscf", Key: map[string]string{"potentialid": "row.potentialid"},
			Set: map[string]string{"cf_erp_id": "response.json.id"}, When: "response.status == 201"}, nil},
		{"missing everything", Mapping{}, []string{"rules[3].writeback.table: is required", "rules[3].writeback.key: is required", "rules[3].writeback.set: is required"}},
		{"unknown name", Mapping{Table: "t", Key: map[string]string{"id": "row.id"}, Set: map[string]string{"c": "respons.body"}},
			[]string{`rules[3].writeback.set.c: unknown name respons (did you mean response?)`}},
		{"when not bool", Mapping{Table: "t", Key: map[string]string{"id": "row.id"}, Set: map[string]string{"c": "1"}, When: "response.status"},
			[]string{"rules[3].writeback.when: expected bool, but got int"}},
		{"key also set", Mapping{Table: "t", Key: map[string]string{"id": "row.id"}, Set: map[string]string{"id": "1"}},
			[]string{"rules[3].writeback.set.id: column id is also a key column"}},
		{"bad table", Mapping{Table: "a.b.c", Key: map[string]string{"id": "row.id"}, Set: map[string]string{"c": "1"}},
			[]string{"rules[3].writeback.table: bad table"}},
		{"bad column name", Mapping{Table: "t", Key: map[string]string{"id": "row.id"}, Set: map[string]string{"a`b": "1"}},
			[]string{"contains a backquote"}},
		{"syntax error", Mapping{Table: "t", Key: map[string]string{"id": "row.id"}, Set: map[string]string{"c": "response.json.id +"}},
			[]string{"rules[3].writeback.set.c: unexpected token EOF"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := tt.m
			err := m.Validate("rules[3].writeback")
			if m.Path != "rules[3].writeback" {
				t.Errorf("Path = %q", m.Path)
			}
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate = %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate = nil, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate = %v\nwant it to contain %q", err, w)
				}
			}
		})
	}
}

func TestMapping_Validate_offset(t *testing.T) {
	m := Mapping{Table: "t", Key: map[string]string{"id": "row.id"}, Set: map[string]string{"c": "response.status + nope"}}
	err := m.Validate("rules[0].writeback")
	var pe *yamlconf.PathError
	if !errors.As(err, &pe) {
		t.Fatalf("err %v has no PathError", err)
	}
	if pe.Path != "rules[0].writeback.set.c" || pe.Offset != strings.Index("response.status + nope", "nope") {
		t.Errorf("path %q offset %d", pe.Path, pe.Offset)
	}
}
