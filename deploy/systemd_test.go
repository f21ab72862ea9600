package deploy_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

var credRef = regexp.MustCompile(`\$\{file:\$\{CREDENTIALS_DIRECTORY\}/([^}]+)\}`)

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
	// A long outage never makes systemd give up: no start limit (a burst
	// of 10 with RestartSec=5s gave up for good after ~50 s of a database
	// down when rowhook still exited on it), and a pause between restarts.
	if got := unit["Unit"]["StartLimitIntervalSec"]; len(got) != 1 || got[0] != "0" {
		t.Errorf("[Unit] StartLimitIntervalSec=%v, want 0: with a start limit systemd stops restarting rowhook for good", got)
	}
	if got := unit["Unit"]["StartLimitBurst"]; got != nil {
		t.Errorf("[Unit] StartLimitBurst=%v: no start limit, so no burst", got)
	}
	if d, err := time.ParseDuration(one("RestartSec")); err != nil || d < time.Second {
		t.Errorf("RestartSec=%s, want a pause of a second or more between restarts", svc["RestartSec"])
	}
	// systemctl reload sends SIGHUP, which reloads the configuration.
	if got := one("ExecReload"); !regexp.MustCompile(`^/bin/kill -(HUP|s HUP|SIGHUP) \$MAINPID$`).MatchString(got) {
		t.Errorf("ExecReload=%s, want /bin/kill -HUP $MAINPID", got)
	}
	// The state path systemd gives rowhook is the one the docs tell users to
	// configure.
	if !strings.Contains(string(readFile(t, "../docs/deploy.md")), "state.path: /var/lib/rowhook/rowhook-state.db") {
		t.Error("docs/deploy.md does not tell systemd users to set state.path under /var/lib/rowhook")
	}
	// Secrets come as credentials: each one the configuration reads is
	// loaded, each one loaded is read, and no ${VAR} is left for an
	// environment the unit does not set.
	config := string(readFile(t, "systemd/rowhook.yaml"))
	if refs := envRefs(config); len(refs) != 1 || !refs["CREDENTIALS_DIRECTORY"] {
		t.Errorf("systemd/rowhook.yaml refers to ${VAR}s %v; the unit sets only CREDENTIALS_DIRECTORY", refs)
	}
	loaded := map[string]bool{}
	for _, lc := range svc["LoadCredential"] {
		name, path, _ := strings.Cut(lc, ":")
		loaded[name] = true
		if path != "/etc/rowhook/credentials/"+name {
			t.Errorf("LoadCredential=%s: want the file /etc/rowhook/credentials/%s the install steps create", lc, name)
		}
	}
	used := map[string]bool{}
	for _, m := range credRef.FindAllStringSubmatch(config, -1) {
		used[m[1]] = true
		if !loaded[m[1]] {
			t.Errorf("systemd/rowhook.yaml reads credential %s, which no LoadCredential= loads", m[1])
		}
	}
	for name := range loaded {
		if !used[name] {
			t.Errorf("LoadCredential= loads %s, which systemd/rowhook.yaml does not read", name)
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

// installSteps are the install commands of the unit's header comment,
// systemctl excluded.
func installSteps(t *testing.T) []string {
	t.Helper()
	var steps []string
	for _, line := range strings.Split(string(readFile(t, "systemd/rowhook.service")), "\n") {
		if cmd, ok := strings.CutPrefix(line, "#   "); ok && strings.HasPrefix(cmd, "install ") {
			steps = append(steps, cmd)
		}
	}
	if len(steps) == 0 {
		t.Fatal("rowhook.service: no install steps in its header comment")
	}
	return steps
}

// installAndCheck runs install steps in a fresh root (/etc and /usr/local
// are rewritten into it), as root, from a directory holding the binary,
// deploy/systemd's files and the secret files, then does what systemd does
// for the unit (LoadCredential= copies each credential into a directory
// only the service's user can read) and runs `rowhook check --offline` as
// that unprivileged user. It returns check's error and output.
func installAndCheck(t *testing.T, steps []string) (error, string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test installs files as root and runs rowhook as uid 65534: run it as root")
	}
	const uid, gid = 65534, 65534
	root := t.TempDir()
	// The temporary directories are 0700: let the service user through.
	for _, d := range []string{filepath.Dir(root), root} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	src := filepath.Join(root, "src")
	for _, d := range []string{src, root + "/etc/systemd/system", root + "/usr/local/bin"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	copyFile := func(from, to string) {
		if err := os.WriteFile(to, readFile(t, from), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(buildAsDockerfile(t), filepath.Join(src, "rowhook"))
	copyFile("systemd/rowhook.yaml", filepath.Join(src, "rowhook.yaml"))
	copyFile("systemd/rowhook.service", filepath.Join(src, "rowhook.service"))
	unit := parseUnit(t, string(readFile(t, "systemd/rowhook.service")))
	secrets := map[string]string{}
	for _, lc := range unit["Service"]["LoadCredential"] {
		name, _, _ := strings.Cut(lc, ":")
		secrets[name] = "s3cr3t-" + name
		if name == "signing_secret" {
			secrets[name] = "whsec_Y2hhbmdlLW1lLWNoYW5nZS1tZS1jaGFuZ2UtbWUh"
		}
		if err := os.WriteFile(filepath.Join(src, name), []byte(secrets[name]+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, step := range steps {
		step = strings.ReplaceAll(step, " /etc/", " "+root+"/etc/")
		step = strings.ReplaceAll(step, " /usr/local/", " "+root+"/usr/local/")
		cmd := exec.Command("sh", "-c", step)
		cmd.Dir = src
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", step, err, out)
		}
	}
	// systemd, as root: LoadCredential= copies each file into the
	// credentials directory, readable by the service's user alone.
	creds := filepath.Join(root, "run/credentials/rowhook.service")
	if err := os.MkdirAll(creds, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, lc := range unit["Service"]["LoadCredential"] {
		name, path, _ := strings.Cut(lc, ":")
		b, err := os.ReadFile(root + path)
		if err != nil {
			t.Fatalf("LoadCredential=%s: %v", lc, err)
		}
		to := filepath.Join(creds, name)
		if err := os.WriteFile(to, b, 0o400); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(to, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(creds, 0o500); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(creds, uid, gid); err != nil {
		t.Fatal(err)
	}
	// ExecStart= as the dynamic user, in a shell that is not root's.
	cmd := exec.Command(root+"/usr/local/bin/rowhook", "check", "--offline", "--config", root+"/etc/rowhook/rowhook.yaml")
	cmd.Env = []string{"PATH=/usr/bin:/bin", "CREDENTIALS_DIRECTORY=" + creds}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
	out, err := cmd.CombinedOutput()
	for _, v := range secrets {
		if strings.Contains(string(out), v) {
			t.Errorf("rowhook check printed a secret: %s", out)
		}
	}
	return err, string(out)
}

// The documented install works for the unit's DynamicUser: the
// configuration is readable and the credentials reach it.
func TestSystemdUnit_InstallStepsRunAsDynamicUser(t *testing.T) {
	if err, out := installAndCheck(t, installSteps(t)); err != nil {
		t.Fatalf("rowhook check --offline as uid 65534 after the documented install: %v\n%s", err, out)
	}
}

// The steps shipped before: the configuration 0640 root:root in a 0750
// directory, which the DynamicUser cannot read. The same harness must
// fail on them, or it proves nothing.
func TestSystemdUnit_OldInstallStepsFail(t *testing.T) {
	steps := installSteps(t)
	for i, s := range steps {
		switch {
		case strings.HasPrefix(s, "install -d -m 0755 /etc/rowhook"):
			steps[i] = "install -d -m 0750 /etc/rowhook"
		case strings.HasPrefix(s, "install -m 0644 rowhook.yaml"):
			steps[i] = strings.Replace(s, "0644", "0640", 1)
		}
	}
	err, out := installAndCheck(t, steps)
	if err == nil || !strings.Contains(out, "permission denied") {
		t.Fatalf("rowhook check after the old install steps: err %v, output %q; want permission denied", err, out)
	}
}
