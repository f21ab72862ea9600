package deploy_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// parseUnit returns a systemd unit's settings as section → key → values.
func parseUnit(t *testing.T, text string) map[string]map[string][]string {
	t.Helper()
	unit := map[string]map[string][]string{}
	section := ""
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			if unit[section] == nil {
				unit[section] = map[string][]string{}
			}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("rowhook.service:%d: %q is not key=value inside a section", i+1, line)
			}
			unit[section][k] = append(unit[section][k], v)
		}
	}
	return unit
}

func TestSystemdUnit_Settings(t *testing.T) {
	text := string(readFile(t, "systemd/rowhook.service"))
	unit := parseUnit(t, text)
	svc := unit["Service"]
	one := func(k string) string {
		if len(svc[k]) != 1 {
			t.Errorf("[Service] %s set %d times, want once", k, len(svc[k]))
			return ""
		}
		return svc[k][0]
	}
	if got := one("ExecStart"); !strings.HasSuffix(got, "rowhook run --config /etc/rowhook/rowhook.yaml") {
		t.Errorf("ExecStart=%s, want …/rowhook run --config /etc/rowhook/rowhook.yaml", got)
	}
	if one("DynamicUser") != "yes" && one("User") == "" {
		t.Error("want DynamicUser=yes or a User=")
	}
	for k, want := range map[string]string{
		"StateDirectory":  "rowhook",
		"ProtectSystem":   "strict",
		"NoNewPrivileges": "yes",
		"Restart":         "on-failure",
		"EnvironmentFile": "/etc/rowhook/rowhook.env",
		"PrivateTmp":      "yes",
	} {
		if got := one(k); got != want {
			t.Errorf("%s=%s, want %s", k, got, want)
		}
	}
	if got := one("TimeoutStopSec"); got == "" || got == "0" || strings.HasPrefix(got, "infinity") {
		t.Errorf("TimeoutStopSec=%s: give rowhook a bounded time to drain", got)
	}
	if unit["Install"]["WantedBy"] == nil {
		t.Error("[Install] WantedBy= missing: systemctl enable would do nothing")
	}
	for _, k := range []string{"StartLimitIntervalSec", "StartLimitBurst"} {
		if svc[k] != nil {
			t.Errorf("%s belongs in [Unit], not [Service]", k)
		}
	}
	// The state path systemd gives rowhook is the one the docs tell users to
	// configure.
	if !strings.Contains(string(readFile(t, "../docs/deploy.md")), "state.path: /var/lib/rowhook/rowhook-state.db") {
		t.Error("docs/deploy.md does not tell systemd users to set state.path under /var/lib/rowhook")
	}
	env := string(readFile(t, "systemd/rowhook.env.example"))
	config := str(yamlDocs(t, "kubernetes/configmap.yaml")[0], "data", "rowhook.yaml")
	if config == "" {
		t.Fatal("kubernetes/configmap.yaml has no data.rowhook.yaml")
	}
	for v := range envRefs(config) {
		if !strings.Contains(env, v+"=") {
			t.Errorf("rowhook.env.example lacks %s, which the example configuration uses", v)
		}
	}

	// systemd's own checker, where systemd is installed, on a copy whose
	// ExecStart points at an existing binary.
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze not installed: unit checked by the parser above only")
		return
	}
	bin := buildAsDockerfile(t)
	dir := t.TempDir()
	copyText := strings.ReplaceAll(text, "ExecStart=/usr/local/bin/rowhook", "ExecStart="+bin)
	path := filepath.Join(dir, "rowhook.service")
	if err := os.WriteFile(path, []byte(copyText), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", "--man=no", path).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
