// Package deploy_test checks the deployment files in deploy/: the Dockerfile's
// build, the compose stack, the Kubernetes manifests, the systemd unit, the
// Prometheus configuration and alert rules, and the Grafana dashboard. No
// Docker engine or cluster is needed: each file is parsed and checked for
// what rowhook needs, and every tool that can run here (go build, promtool,
// mariadbd, systemd-analyze) runs on it.
package deploy_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// repoRoot is the repository root, seen from deploy/.
const repoRoot = ".."

// readFile returns the file's contents or fails the test.
func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return b
}

// yamlDocs decodes every document of a (multi-document) YAML file.
func yamlDocs(t *testing.T, path string) []map[string]any {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(readFile(t, path)))
	var docs []map[string]any
	for {
		var d map[string]any
		err := dec.Decode(&d)
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatalf("%s: document %d: %v", path, len(docs)+1, err)
		}
		if d != nil {
			docs = append(docs, d)
		}
	}
	if len(docs) == 0 {
		t.Fatalf("%s: no YAML document", path)
	}
	return docs
}

// dig walks nested maps and lists: dig(doc, "spec", "template", "spec").
// A string key indexes a map, an int indexes a list; nil when absent.
func dig(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

// str is dig for a string value ("" when absent or not a string).
func str(v any, path ...any) string {
	s, _ := dig(v, path...).(string)
	return s
}

// list is dig for a list value.
func list(v any, path ...any) []any {
	l, _ := dig(v, path...).([]any)
	return l
}

// promtool returns the promtool binary: $PROMTOOL, /usr/bin/promtool or the
// PATH's. It fails (never skips) when there is none: CI installs Debian's
// prometheus package for it (.ci/run).
func promtool(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("PROMTOOL"); p != "" {
		return p
	}
	if _, err := os.Stat("/usr/bin/promtool"); err == nil {
		return "/usr/bin/promtool"
	}
	if p, err := exec.LookPath("promtool"); err == nil {
		return p
	}
	t.Fatal("promtool not found: install it (Debian/Ubuntu: apt-get install prometheus) or set PROMTOOL=/path/to/promtool; the alert rule tests need it")
	return ""
}

// run runs a command in dir and fails the test with its output on error.
func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s (in %s): %v\n%s", name, strings.Join(args, " "), dir, err, out)
	}
	return string(out)
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-[^}]*)?\}`)

// envRefs returns the ${VAR} names a configuration file refers to.
func envRefs(text string) map[string]bool {
	refs := map[string]bool{}
	for _, m := range envRef.FindAllStringSubmatch(text, -1) {
		refs[m[1]] = true
	}
	return refs
}
