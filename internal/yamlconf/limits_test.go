package yamlconf

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
)

type testWebhook struct {
	URL     string            `yaml:"url"`
	Method  string            `yaml:"method"`
	Headers map[string]string `yaml:"headers"`
	Auth    struct {
		Type  string `yaml:"type"`
		Token string `yaml:"token"`
	} `yaml:"auth"`
}

type testDelivery struct {
	Timeout string `yaml:"timeout"`
}

type testRoot struct {
	testConfig `yaml:",inline"`
	Webhooks   map[string]testWebhook `yaml:"webhooks"`
	Delivery   testDelivery           `yaml:"delivery"`
}

// aliasBomb is the attack: 10 levels, each a list of 10 aliases of
// the level below, about 620 bytes that expand to 10^10 nodes.
func aliasBomb() string {
	var b strings.Builder
	b.WriteString("source: x\na0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n")
	for i := 1; i <= 9; i++ {
		fmt.Fprintf(&b, "a%d: &a%d [%s]\n", i, i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*a%d,", i-1), 10), ","))
	}
	return b.String()
}

func TestParse_AliasBomb(t *testing.T) {
	src := aliasBomb()
	if len(src) < 500 || len(src) > 700 {
		t.Fatalf("bomb is %d bytes", len(src))
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	var c testRoot
	_, err := ParseEnv("bomb.yaml", strings.NewReader(src), &c, env(nil))
	runtime.ReadMemStats(&after)
	// a1's aliases add 10×11 nodes, a2's 10×111, and a3's cross 10,000 at
	// the 8th: line 5, column 38.
	want := "bomb.yaml:5:38: aliases expand to more than 10000 nodes here (*a2 adds 1111 nodes), the limit for a config file"
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v\nwant    %s", err, want)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
		t.Errorf("refusing the bomb allocated %d bytes", alloc)
	}
}

func TestParse_AliasInsideItsAnchor(t *testing.T) {
	for _, src := range []string{"source: x\nrules: &r [{name: a}, *r]\n", "source: x\nlol: &l {a: *l}\n"} {
		var c testRoot
		_, err := ParseEnv("c.yaml", strings.NewReader(src), &c, env(nil))
		if err == nil || !strings.Contains(err.Error(), "c.yaml:2:") || !strings.Contains(err.Error(), "alias *") {
			t.Errorf("%q: error = %v", src, err)
		}
	}
}

// Aliases used as intended (a shared header block, merged defaults) still
// work, and an unknown key inside a merged block is found.
func TestParse_AliasesReused(t *testing.T) {
	src := `source: x
x-auth: &auth
  type: bearer
  token: ${TOKEN}
x-hook: &hook
  method: PUT
  headers: &h {X-App: rowhook}
webhooks:
  erp:
    <<: *hook
    url: https://erp.example/a
    auth: *auth
  crm:
    <<: *hook
    url: https://crm.example/b
    auth: *auth
    headers: *h
`
	var c testRoot
	_, err := ParseEnv("c.yaml", strings.NewReader(src), &c, env(map[string]string{"TOKEN": "t0k"}))
	if err == nil || err.Error() != "c.yaml:2:1: x-auth: unknown key (known: delivery, port, rules, source, timeout, webhooks)\nc.yaml:5:1: x-hook: unknown key (known: delivery, port, rules, source, timeout, webhooks)" {
		t.Fatalf("error = %v", err)
	}
	// The same with the anchors under a key the type ignores.
	type withExtras struct {
		testRoot `yaml:",inline"`
		Extras   map[string]any `yaml:",inline"`
	}
	var w withExtras
	if _, err := ParseEnv("c.yaml", strings.NewReader(src), &w, env(map[string]string{"TOKEN": "t0k"})); err != nil {
		t.Fatal(err)
	}
	for name, wh := range w.Webhooks {
		if wh.Method != "PUT" || wh.Auth.Token != "t0k" || wh.Headers["X-App"] != "rowhook" {
			t.Errorf("%s: %+v", name, wh)
		}
	}
	bad := strings.Replace(src, "  method: PUT", "  methd: PUT", 1)
	_, err = ParseEnv("c.yaml", strings.NewReader(bad), &w, env(map[string]string{"TOKEN": "t0k"}))
	if err == nil || !strings.Contains(err.Error(), "c.yaml:6:3: webhooks.erp.methd: unknown key (did you mean method?)") {
		t.Fatalf("error = %v", err)
	}
}

func TestParse_SizeLimit(t *testing.T) {
	big := strings.NewReader("source: x\n" + strings.Repeat("# padding\n", MaxSize/10))
	var c testRoot
	_, err := ParseEnv("big.yaml", big, &c, env(nil))
	want := "big.yaml: larger than 8 MB, the limit for a config file"
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v, want %s", err, want)
	}
}

// Syntax errors point at the line that is wrong, not at the start of the
// block it breaks (where yaml.v3 points).
func TestParse_SyntaxErrorLines(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"dedented rule key", `source:
  dsn: mysql://u:p@127.0.0.1:1/
webhooks:
  erp:
    url: https://erp.example/hook
rules:
  - name: a
    table: crm.t
    event: A
  - name: b
    table: crm.t
   event: B
`, "c.yaml:12:4: did not find expected '-' indicator (is this line indented like the list items or keys above it?)"},
		{"3-space indent", `source:
  dsn: mysql://u:p@127.0.0.1:1/
webhooks:
  erp:
    url: https://erp.example/hook
   method: POST
`, "c.yaml:6:4: did not find expected key (is this line indented like the keys above it?)"},
		{"over-indented key", `rules:
  - name: a
    table: crm.t
     event: A
`, `c.yaml:4:6: mapping values are not allowed in this context (is this line indented deeper than the keys above it, or does a value contain ": " and need quotes?)`},
		{"tab indent", "webhooks:\n  erp:\n    url: x\n\tmethod: POST\n", "c.yaml:4:1: tab character at 4:1; YAML indents with spaces"},
		{"tab at top", "source: x\nwebhooks:\n\terp:\n    url: x\n", "c.yaml:3:1: tab character at 3:1; YAML indents with spaces"},
		{"tab after spaces", "rules:\n  - name: a\n  \ttable: t\n", "c.yaml:3:3: tab character at 3:3; YAML indents with spaces"},
		{"unclosed flow", "source: x\nrules: [a\n", "c.yaml:2:"},
		{"unknown anchor", "source: x\nrules:\n  - name: a\n  - name: *nope\n", "c.yaml:4:3: unknown anchor 'nope' referenced"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c testRoot
			_, err := ParseEnv("c.yaml", strings.NewReader(tt.src), &c, env(nil))
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("error = %v\nwant    %s", err, tt.want)
			}
		})
	}
}

// Unknown keys name the key path and the nearest known key, never a Go
// type; all of them are reported at once.
func TestParse_UnknownKeys(t *testing.T) {
	src := `source: x
webhooks:
  erp:
    url: https://erp.example/
    methd: POST
    auth:
      tokn: t
rules:
  - name: a
  - name: b
    wen: x
    zzzzzz: 1
tiemout: 5s
`
	var c testRoot
	_, err := ParseEnv("c.yaml", strings.NewReader(src), &c, env(nil))
	want := []string{
		"c.yaml:5:5: webhooks.erp.methd: unknown key (did you mean method?)",
		"c.yaml:7:7: webhooks.erp.auth.tokn: unknown key (did you mean token?)",
		"c.yaml:11:5: rules[1].wen: unknown key (did you mean when?)",
		"c.yaml:12:5: rules[1].zzzzzz: unknown key (known: name, when)",
		"c.yaml:13:1: tiemout: unknown key (did you mean timeout?)",
	}
	if err == nil || err.Error() != strings.Join(want, "\n") {
		t.Fatalf("error:\n%v\nwant:\n%s", err, strings.Join(want, "\n"))
	}
	if strings.Contains(err.Error(), "testWebhook") || strings.Contains(err.Error(), " in ") {
		t.Errorf("error names a Go type: %v", err)
	}
	var pe *Error
	if !errors.As(err, &pe) || pe.Path != "webhooks.erp.methd" {
		t.Errorf("first error %#v", pe)
	}
}

func TestSuggest(t *testing.T) {
	tests := []struct {
		name string
		cand []string
		want string
	}{
		{"methd", []string{"url", "method", "headers"}, " (did you mean method?)"},
		{"URL", []string{"url", "method"}, " (did you mean url?)"},
		{"tabel", []string{"name", "table", "when"}, " (did you mean table?)"},
		{"colour", []string{"url", "method"}, " (known: method, url)"},
		{"x", nil, ""},
	}
	for _, tt := range tests {
		if got := Suggest(tt.name, tt.cand); got != tt.want {
			t.Errorf("Suggest(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// Locating many errors costs in proportion to their number: each is a
// lookup, not a walk of the document.
func TestDoc_LocateMany(t *testing.T) {
	const n = 8000
	var b strings.Builder
	b.WriteString("rules:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - name: r%d\n    when: 'row.amout > %d'\n", i, i)
	}
	var c testConfig
	d, err := ParseEnv("r.yaml", strings.NewReader(b.String()), &c, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	errs := make([]error, n)
	for i := range n {
		errs[n-1-i] = &PathError{Path: fmt.Sprintf("rules[%d].when", i), Offset: 4, Err: errors.New(`unknown name "amout"`)}
	}
	lines := strings.Split(d.Locate(errors.Join(errs...)).Error(), "\n")
	if len(lines) != n {
		t.Fatalf("%d errors, want %d", len(lines), n)
	}
	for i, l := range lines {
		if want := fmt.Sprintf(`r.yaml:%d:16: rules[%d].when: unknown name "amout"`, 3+2*i, i); l != want {
			t.Fatalf("line %d: %s, want %s", i, l, want)
		}
	}
}

// A value of the wrong type is named by its key path and what it should
// be, never by a Go type, and a value from the environment is not shown.
func TestParse_TypeErrors(t *testing.T) {
	src := `source: x
port: ${PORT}
timeout: 10
rules: {a: 1}
webhooks:
  erp:
    url: [a]
    auth: token
delivery: [x]
`
	var c testRoot
	_, err := ParseEnv("c.yaml", strings.NewReader(src), &c, env(map[string]string{"PORT": "s3cret-port"}))
	want := []string{
		`c.yaml:2:7: port: want a whole number, got "${PORT}" (its value is not shown)`,
		`c.yaml:3:10: timeout: want a duration such as 30s, 5m or 1h30m, got "10" (a number needs a unit: 10s)`,
		`c.yaml:4:8: rules: want a list, got a mapping`,
		`c.yaml:7:10: webhooks.erp.url: want a string, got a list`,
		`c.yaml:8:11: webhooks.erp.auth: want a mapping of keys, got "token"`,
		`c.yaml:9:11: delivery: want a mapping of keys, got a list`,
	}
	if err == nil || err.Error() != strings.Join(want, "\n") {
		t.Fatalf("error:\n%v\nwant:\n%s", err, strings.Join(want, "\n"))
	}
}

// Past MaxErrors, Parse says how many more errors there are instead of
// listing them: a file of a million misplaced values is not a million
// lines.
func TestParse_MaxErrors(t *testing.T) {
	for name, item := range map[string]string{"wrong type": "  - [x]\n", "unknown key": "  - {nme: x}\n", "missing env": "  - {name: '${NOPE}'}\n"} {
		t.Run(name, func(t *testing.T) {
			src := "rules:\n" + strings.Repeat(item, MaxErrors+5)
			var c testConfig
			_, err := ParseEnv("c.yaml", strings.NewReader(src), &c, env(nil))
			if err == nil {
				t.Fatal("no error")
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != MaxErrors+1 || lines[MaxErrors] != "c.yaml: and 5 more errors (only the first 10000 are listed)" {
				t.Fatalf("%d lines, last %q", len(lines), lines[len(lines)-1])
			}
			if want := "c.yaml:2:"; !strings.HasPrefix(lines[0], want) {
				t.Errorf("first %q", lines[0])
			}
		})
	}
}

// A value reached through an alias is expanded once: a secret that
// contains "${" is data, not a second reference.
func TestParse_AliasExpandedOnce(t *testing.T) {
	src := "source: &s '${PW}'\nrules:\n  - name: *s\n"
	var c testConfig
	if _, err := ParseEnv("c.yaml", strings.NewReader(src), &c, env(map[string]string{"PW": "a${NOPE}b"})); err != nil {
		t.Fatal(err)
	}
	if c.Source != "a${NOPE}b" || c.Rules[0].Name != "a${NOPE}b" {
		t.Errorf("got %+v", c)
	}
}
