package main

//go:generate env ROWHOOK_UPDATE_SCHEMA=1 go test -count=1 -run ^TestConfigSchema_UpToDate$ .

import (
	"bytes"
	"encoding"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"

	"github.com/rowhook/rowhook/internal/pipeline"
)

// schemaPath is the JSON Schema of the whole configuration file, which
// shipped configs name on their first line for editors:
//
//	# yaml-language-server: $schema=<relative path>/docs/rowhook.schema.json
const schemaPath = "../../docs/rowhook.schema.json"

// rulesSchemaKeys are the top-level keys rules/schema.json describes by
// hand (with descriptions and the body function names): the generated
// schema copies them, and its $defs, from there.
var rulesSchemaKeys = map[string]bool{"rules": true, "bodies": true, "vtiger": true, "timezone": true}

var (
	durationType        = reflect.TypeFor[time.Duration]()
	yamlUnmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// genSchema derives the configuration's JSON Schema from the config
// struct's yaml tags, the keys the loader accepts, so the two cannot
// disagree: every struct is an object of exactly its keys. A value
// that may be a number, a boolean or a duration may also be a ${…}
// reference, expanded when rowhook loads the file.
func genSchema(t *testing.T) []byte {
	t.Helper()
	var rulesSchema struct {
		Properties map[string]any `json:"properties"`
		Defs       map[string]any `json:"$defs"`
	}
	if err := json.Unmarshal(readTestFile(t, "../../rules/schema.json"), &rulesSchema); err != nil {
		t.Fatalf("rules/schema.json: %v", err)
	}
	defs := map[string]any{
		"expansion": map[string]any{
			"description": "A ${VAR}, ${VAR:-default} or ${file:PATH} reference, expanded when rowhook loads the file.",
			"type":        "string",
			"pattern":     `\$\{`,
		},
	}
	for k, v := range rulesSchema.Defs {
		if _, dup := defs[k]; dup {
			t.Fatalf("rules/schema.json defines $defs/%s, which the full schema uses itself", k)
		}
		defs[k] = v
	}
	if _, ok := defs["duration"]; !ok {
		t.Fatal("rules/schema.json has no $defs/duration")
	}
	root := schemaFor(t, reflect.TypeFor[pipeline.Config](), "")
	props := root["properties"].(map[string]any)
	for k := range rulesSchemaKeys {
		p, ok := rulesSchema.Properties[k]
		if !ok {
			t.Fatalf("rules/schema.json has no property %s", k)
		}
		if _, ok := props[k]; !ok {
			t.Fatalf("the config struct has no key %s", k)
		}
		props[k] = p
	}
	root["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	root["$id"] = "https://github.com/rowhook/rowhook/docs/rowhook.schema.json"
	root["title"] = "rowhook configuration"
	root["description"] = "The whole rowhook.yaml. Generated from the Go config structs by `go generate ./cmd/rowhook` (cmd/rowhook/schema_test.go); the rules:, bodies:, vtiger: and timezone: parts come from rules/schema.json. Do not edit by hand."
	root["$defs"] = defs
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(root); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// schemaFor is the schema of one Go type as the YAML loader decodes it.
func schemaFor(t *testing.T, rt reflect.Type, path string) map[string]any {
	for rt.Kind() == reflect.Pointer {
		rt = rt.Elem()
	}
	if rt.Kind() == reflect.Struct {
		if inProgress[rt] {
			return map[string]any{} // a recursive type: not described deeper
		}
		inProgress[rt] = true
		defer delete(inProgress, rt)
	}
	scalarOr := func(s map[string]any) map[string]any {
		return map[string]any{"anyOf": []any{s, map[string]any{"$ref": "#/$defs/expansion"}}}
	}
	switch {
	case rt == durationType:
		return map[string]any{"anyOf": []any{map[string]any{"$ref": "#/$defs/duration"}, map[string]any{"type": "integer"}, map[string]any{"$ref": "#/$defs/expansion"}}}
	case reflect.PointerTo(rt).Implements(yamlUnmarshalerType) || rt.Implements(yamlUnmarshalerType):
		return map[string]any{} // its own UnmarshalYAML decides
	case reflect.PointerTo(rt).Implements(textUnmarshalerType):
		return map[string]any{"type": "string"}
	}
	switch rt.Kind() {
	case reflect.Struct:
		props := map[string]any{}
		var extra map[string]any // an ,inline map takes any other key
		addStructFields(t, rt, path, props, &extra)
		s := map[string]any{"type": "object", "properties": props}
		if extra != nil {
			s["additionalProperties"] = extra
		} else {
			s["additionalProperties"] = false
		}
		return s
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": schemaFor(t, rt.Elem(), path+".*")}
	case reflect.Slice, reflect.Array:
		if rt.Elem().Kind() == reflect.Uint8 {
			return map[string]any{"type": "string"}
		}
		return map[string]any{"type": "array", "items": schemaFor(t, rt.Elem(), path+"[]")}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return scalarOr(map[string]any{"type": "boolean"})
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return scalarOr(map[string]any{"type": "integer"})
	case reflect.Float32, reflect.Float64:
		return scalarOr(map[string]any{"type": "number"})
	case reflect.Interface:
		return map[string]any{}
	}
	t.Fatalf("%s: no JSON Schema for Go type %s", path, rt)
	return nil
}

// inProgress are the struct types schemaFor is inside of.
var inProgress = map[reflect.Type]bool{}

// addStructFields adds a struct's keys (those of ,inline structs
// included) to props, as yaml.v3 reads them.
func addStructFields(t *testing.T, rt reflect.Type, path string, props map[string]any, extra *map[string]any) {
	for i := 0; i < rt.NumField(); i++ {
		f := rt.Field(i)
		tag := f.Tag.Get("yaml")
		if tag == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if strings.Contains(","+opts+",", ",inline,") {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Map {
				*extra = schemaFor(t, ft.Elem(), path+".*")
				continue
			}
			addStructFields(t, ft, path, props, extra)
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name) // yaml.v3's default key
		}
		if _, dup := props[name]; dup {
			t.Fatalf("%s: key %s defined twice", path, name)
		}
		props[name] = schemaFor(t, f.Type, joinPath(path, name))
	}
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func readTestFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// docs/rowhook.schema.json is what the config structs give today:
// `go generate ./cmd/rowhook` rewrites it.
func TestConfigSchema_UpToDate(t *testing.T) {
	want := genSchema(t)
	if os.Getenv("ROWHOOK_UPDATE_SCHEMA") == "1" {
		if err := os.WriteFile(schemaPath, want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if got, _ := os.ReadFile(schemaPath); !bytes.Equal(got, want) {
		t.Fatalf("docs/rowhook.schema.json is not what the config structs give: run `go generate ./cmd/rowhook`")
	}
}

// compileSchema compiles docs/rowhook.schema.json with a JSON Schema
// 2020-12 validator.
func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	var doc any
	if err := json.Unmarshal(readTestFile(t, schemaPath), &doc); err != nil {
		t.Fatalf("docs/rowhook.schema.json: %v", err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("rowhook.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("rowhook.schema.json")
	if err != nil {
		t.Fatalf("compile docs/rowhook.schema.json: %v", err)
	}
	return s
}

// validateYAML validates a YAML configuration's text against the schema,
// as an editor's YAML language server would (YAML 1.2: on is a string).
func validateYAML(t *testing.T, s *jsonschema.Schema, text string) error {
	t.Helper()
	var v any
	if err := yaml.Unmarshal([]byte(text), &v); err != nil {
		t.Fatalf("parse: %v", err)
	}
	// JSON's data model: round-trip through encoding/json (int → float64,
	// maps keyed by strings).
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("to JSON: %v", err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return s.Validate(inst)
}

var schemaLine = regexp.MustCompile(`(?m)^# yaml-language-server: \$schema=(\S+)$`)

// shippedConfigs are the configuration files the repository ships, by
// name, with their text: each must carry the schema line and validate.
func shippedConfigs(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, p := range []string{"../../rowhook.example.yaml", "../../deploy/compose/rowhook.yaml", "../../deploy/systemd/rowhook.yaml", "../../deploy/kubernetes/rowhook.yaml"} {
		out[p] = string(readTestFile(t, p))
	}
	var ex bytes.Buffer
	if err := runInit(stdio{out: &ex, err: &ex}); err != nil {
		t.Fatal(err)
	}
	out["../../(rowhook init)"] = ex.String()
	return out
}

// Every shipped configuration names the schema and validates against it.
func TestConfigSchema_ShippedConfigsValidate(t *testing.T) {
	s := compileSchema(t)
	names := make([]string, 0)
	configs := shippedConfigs(t)
	for n := range configs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		text := configs[name]
		if err := validateYAML(t, s, text); err != nil {
			t.Errorf("%s does not validate against docs/rowhook.schema.json:\n%v", name, err)
		}
		m := schemaLine.FindStringSubmatch(text)
		if m == nil {
			t.Errorf("%s has no `# yaml-language-server: $schema=…` line", name)
			continue
		}
		if strings.HasPrefix(m[1], "http") {
			continue
		}
		file, _, _ := strings.Cut(name, " ")
		if _, err := os.Stat(filepath.Join(filepath.Dir(file), m[1])); err != nil {
			t.Errorf("%s: its $schema=%s is no file: %v", name, m[1], err)
		} else if filepath.Base(m[1]) != "rowhook.schema.json" {
			t.Errorf("%s: $schema=%s, want docs/rowhook.schema.json", name, m[1])
		}
		if regexp.MustCompile(`(?m)^\s*-?\s*on:`).MatchString(text) {
			t.Errorf(`%s: unquoted on: (YAML 1.1 tools read it as true); write "on":`, name)
		}
	}
	// The README's configuration example too.
	readme := string(readTestFile(t, "../../README.md"))
	if i := strings.Index(readme, "### Configuration"); i >= 0 {
		rest := readme[i:]
		start := strings.Index(rest, "```yaml\n")
		end := strings.Index(rest[start+8:], "```")
		if err := validateYAML(t, s, rest[start+8:start+8+end]); err != nil {
			t.Errorf("README's configuration example does not validate:\n%v", err)
		}
	}
}

// Misspelt keys fail validation, where they once passed with 0 errors.
func TestConfigSchema_RejectsTypos(t *testing.T) {
	s := compileSchema(t)
	good := string(readTestFile(t, "../../rowhook.example.yaml"))
	if err := validateYAML(t, s, good); err != nil {
		t.Fatalf("the example must validate for this test to mean anything: %v", err)
	}
	for _, bad := range []string{
		good + "\nheartbeet: 30s\n",
		good + "\nretries: 5\n",
		strings.Replace(good, "source:\n", "source:\n  heartbeet: 30s\n", 1),
		strings.Replace(good, "  listen: 127.0.0.1:9788\n", "  listen: 127.0.0.1:9788\n  retries: 5\n", 1),
		strings.Replace(good, "  settle: 2s\n", "  settle: [2s]\n", 1),
	} {
		if err := validateYAML(t, s, bad); err == nil {
			t.Errorf("validates, want an error:\n%s", bad)
		}
	}
}

// The schema names every key the loader accepts and nothing else: a
// config with each key path the schema allows loads past the unknown-key
// check, and the schema's top-level keys are the config struct's.
func TestConfigSchema_KeysMatchLoader(t *testing.T) {
	var s map[string]any
	if err := json.Unmarshal(readTestFile(t, schemaPath), &s); err != nil {
		t.Fatal(err)
	}
	var got []string
	for k := range s["properties"].(map[string]any) {
		got = append(got, k)
	}
	sort.Strings(got)
	want := map[string]bool{}
	var walk func(rt reflect.Type)
	walk = func(rt reflect.Type) {
		for i := 0; i < rt.NumField(); i++ {
			f := rt.Field(i)
			name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if strings.Contains(opts, "inline") {
				walk(f.Type)
			} else if name != "" && name != "-" {
				want[name] = true
			}
		}
	}
	walk(reflect.TypeFor[pipeline.Config]())
	var wantList []string
	for k := range want {
		wantList = append(wantList, k)
	}
	sort.Strings(wantList)
	if !reflect.DeepEqual(got, wantList) {
		t.Errorf("schema top-level keys %v, the loader's %v", got, wantList)
	}
}
