package dispatch

import (
	"errors"
	"strings"
	"testing"

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
