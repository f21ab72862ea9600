package yamlconf

import (
	"errors"
	"strings"
	"testing"
	"time"
)

type testRule struct {
	Name string `yaml:"name"`
	When string `yaml:"when"`
}

type testConfig struct {
	Source  string        `yaml:"source"`
	Timeout time.Duration `yaml:"timeout"`
	Port    int           `yaml:"port"`
	Rules   []testRule    `yaml:"rules"`
}

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestParse_ExpandsEnvInsideScalars(t *testing.T) {
	src := "source: 'mysql://u:${PW}@h/'\ntimeout: ${T:-15s}\nport: ${PORT}\nrules:\n  - name: a\n    when: 'row.x > 1'\n"
	var c testConfig
	_, err := ParseEnv("c.yaml", strings.NewReader(src), &c, env(map[string]string{"PW": "a#b: c", "PORT": "3307"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Source != "mysql://u:a#b: c@h/" || c.Timeout != 15*time.Second || c.Port != 3307 || len(c.Rules) != 1 {
		t.Fatalf("got %+v", c)
	}
}

func TestParse_Errors(t *testing.T) {
	tests := []struct {
		name, src string
		env       map[string]string
		want      string
	}{
		{"missing env", "source: x\nrules:\n  - name: a\n    when: '${NOPE}'\n", nil, "c.yaml:4:11: rules[0].when: environment variable NOPE is not set"},
		{"unknown key", "source: x\nrules:\n  - name: a\n    wen: 'x'\n", nil, `c.yaml:4:5: rules[0].wen: unknown key (did you mean when?)`},
		{"type error", "source: x\ntimeout: soon\n", nil, "c.yaml:2"},
		{"syntax", "source: [x\n", nil, "c.yaml:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c testConfig
			_, err := ParseEnv("c.yaml", strings.NewReader(tt.src), &c, env(tt.env))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestDoc_Locate(t *testing.T) {
	src := "rules:\n  - name: a\n    when: 'row.amout > 1'\n"
	var c testConfig
	d, err := ParseEnv("r.yaml", strings.NewReader(src), &c, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	err = d.Locate(errors.Join(&PathError{Path: "rules[0].when", Offset: 4, Err: errors.New(`unknown name "amout"`)}))
	want := `r.yaml:3:16: rules[0].when: unknown name "amout"`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
}
