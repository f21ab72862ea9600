package rules

import (
	"encoding/json"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/rowhook/rowhook/internal/yamlconf"
)

func yamlconfParse(name, src string, v any) (*yamlconf.Doc, error) {
	return yamlconf.Parse(name, strings.NewReader(src), v)
}

// The JSON Schema for editors must follow the Go types and the registry.
func TestSchemaJSON_MatchesConfig(t *testing.T) {
	b, err := os.ReadFile("schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Properties map[string]json.RawMessage `json:"properties"`
		Defs       struct {
			Rule struct {
				Properties map[string]struct {
					AnyOf []struct {
						Enum []string `json:"enum"`
					} `json:"anyOf"`
					Pattern string `json:"pattern"`
				} `json:"properties"`
			} `json:"rule"`
			Body struct {
				Properties map[string]struct {
					Pattern string `json:"pattern"`
				} `json:"properties"`
			} `json:"body"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("schema.json: %v", err)
	}
	yamlKeys := func(v any) []string {
		var out []string
		rt := reflect.TypeOf(v)
		for i := 0; i < rt.NumField(); i++ {
			if tag := strings.Split(rt.Field(i).Tag.Get("yaml"), ",")[0]; tag != "" {
				out = append(out, tag)
			}
		}
		sort.Strings(out)
		return out
	}
	keys := func(m any) []string {
		var out []string
		for _, k := range reflect.ValueOf(m).MapKeys() {
			out = append(out, k.String())
		}
		sort.Strings(out)
		return out
	}
	if got, want := keys(s.Properties), yamlKeys(Config{}); !reflect.DeepEqual(got, want) {
		t.Errorf("top-level properties %v, Config has %v", got, want)
	}
	if got, want := keys(s.Defs.Rule.Properties), yamlKeys(RuleConfig{}); !reflect.DeepEqual(got, want) {
		t.Errorf("rule properties %v, RuleConfig has %v", got, want)
	}
	var enum []string
	for _, a := range s.Defs.Rule.Properties["event"].AnyOf {
		enum = append(enum, a.Enum...)
	}
	sort.Strings(enum)
	var names []string
	for _, f := range BuiltinBodies() {
		names = append(names, f.Name)
	}
	if !reflect.DeepEqual(enum, names) {
		t.Errorf("event enum %v, built-in body functions %v", enum, names)
	}
	for _, p := range []string{s.Defs.Rule.Properties["name"].Pattern, s.Defs.Body.Properties["lookup"].Pattern} {
		if _, err := regexp.Compile(p); err != nil {
			t.Errorf("pattern %q: %v", p, err)
		}
	}
	if re := regexp.MustCompile(s.Defs.Body.Properties["lookup"].Pattern); !re.MatchString("  select 1") || re.MatchString("DELETE FROM t") {
		t.Errorf("lookup pattern %q", s.Defs.Body.Properties["lookup"].Pattern)
	}
}

// The configuration example at the top of docs/rules.md is valid.
func TestDocsExample_Validates(t *testing.T) {
	b, err := os.ReadFile("../docs/rules.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	start := strings.Index(doc, "```yaml\n")
	end := strings.Index(doc[start+8:], "```")
	if start < 0 || end < 0 {
		t.Fatal("no yaml block in docs/rules.md")
	}
	var cfg Config
	if _, err := yamlconfParse("docs/rules.md", doc[start+8:start+8+end], &cfg); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Rules) != 1 || cfg.Bodies["CustomDeal"].Fields[2].Name != "account" || cfg.Vtiger.Settle.String() != "2s" {
		t.Errorf("parsed %+v", cfg)
	}
}
