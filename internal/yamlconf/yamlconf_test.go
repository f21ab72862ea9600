package yamlconf

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
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

// A block kept as a yaml.Node is decoded later with Parse's checks: its
// errors sit at their place in the file under the block's key path, and
// a value that came from ${VAR} is not shown.
func TestDoc_Decode(t *testing.T) {
	type block struct {
		Table string            `yaml:"table"`
		Set   map[string]string `yaml:"set"`
		Tries int               `yaml:"tries"`
	}
	var outer struct {
		Rules []struct {
			Name string    `yaml:"name"`
			Keep yaml.Node `yaml:"keep"`
		} `yaml:"rules"`
	}
	src := "rules:\n  - name: a\n  - name: b\n    keep:\n      tabel: t\n      set: [x]\n      tries: ${TRIES}\n"
	doc, err := ParseEnv("c.yaml", strings.NewReader(src), &outer, func(string) (string, bool) { return "s3cret", true })
	if err != nil {
		t.Fatalf("the kept block is its owner's business: %v", err)
	}
	var none *block
	if err := doc.Decode(&outer.Rules[0].Keep, "rules[0].keep", &none); err != nil || none != nil {
		t.Errorf("an absent block: %v, %v", none, err)
	}
	var b *block
	err = doc.Decode(&outer.Rules[1].Keep, "rules[1].keep", &b)
	want := []string{
		"c.yaml:5:7: rules[1].keep.tabel: unknown key (did you mean table?)",
		"c.yaml:6:12: rules[1].keep.set: want a mapping, got a list",
		`c.yaml:7:14: rules[1].keep.tries: want a whole number, got "${TRIES}" (its value is not shown)`,
	}
	if err == nil {
		t.Fatal("no error")
	}
	got := err.Error()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("errors\n%s\nlack %q", got, w)
		}
	}
	if strings.Contains(got, "s3cret") {
		t.Errorf("an expanded value shows: %s", got)
	}
}

// LoadPartial leaves the values a command does not use empty when their
// ${...} cannot be expanded, and still fails on the ones it uses.
func TestLoadPartial_UnusedMayBeUnset(t *testing.T) {
	t.Setenv("YAMLCONF_TEST_SET", "ok")
	path := t.TempDir() + "/c.yaml"
	src := "source: 'mysql://u:${YAMLCONF_TEST_UNSET_PW}@h/'\ntimeout: ${YAMLCONF_TEST_UNSET_T}\nport: ${file:/nonexistent/port}\n" +
		"rules:\n  - name: ${YAMLCONF_TEST_SET}\n    when: '${YAMLCONF_TEST_UNSET_WHEN}'\n"
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	unusedAll := func(p string) bool { return !strings.HasPrefix(p, "rules") }
	var c testConfig
	doc, err := LoadPartial(path, &c, unusedAll)
	if err == nil || !strings.Contains(err.Error(), "c.yaml:6:11: rules[0].when: environment variable YAMLCONF_TEST_UNSET_WHEN is not set") {
		t.Fatalf("error %v: want the rule's unset variable, located", err)
	}
	if strings.Contains(err.Error(), "PW") || strings.Contains(err.Error(), "port") {
		t.Errorf("an unused value failed: %v", err)
	}
	c = testConfig{}
	doc, err = LoadPartial(path, &c, func(string) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	if c.Source != "" || c.Timeout != 0 || c.Port != 0 || c.Rules[0].Name != "ok" {
		t.Errorf("got %+v: want the unexpanded values empty, the rest expanded", c)
	}
	if want := []string{"source", "timeout", "port", "rules[0].when"}; !slices.Equal(doc.Unexpanded, want) {
		t.Errorf("Unexpanded = %v, want %v", doc.Unexpanded, want)
	}
	// Load itself is as strict as before.
	if _, err := Load(path, &testConfig{}); err == nil || !strings.Contains(err.Error(), "YAMLCONF_TEST_UNSET_PW") {
		t.Errorf("Load: %v, want the unset variable", err)
	}
}
