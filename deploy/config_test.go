package deploy_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// checkConfig runs `rowhook check --offline` (the binary the Dockerfile
// builds) on a configuration file with env as its only extra environment,
// and fails the test unless it says ok.
func checkConfig(t *testing.T, path string, env map[string]string) {
	t.Helper()
	out, err := runCheck(t, path, env)
	if err != nil {
		t.Fatalf("rowhook check --offline --config %s: %v\n%s", path, err, out)
	}
	if !strings.Contains(out, ": ok: ") {
		t.Errorf("rowhook check printed %q, want its ok line", out)
	}
}

func runCheck(t *testing.T, path string, env map[string]string) (string, error) {
	t.Helper()
	bin := buildAsDockerfile(t)
	cmd := exec.Command(bin, "check", "--offline", "--config", path)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	keys := make([]string, 0, len(env))
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
		keys = append(keys, k)
	}
	sort.Strings(keys)
	t.Logf("rowhook check --offline --config %s with %v set", path, keys)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestExampleConfigs_RowhookCheck(t *testing.T) {
	t.Run("compose", func(t *testing.T) {
		config := localSecrets(t, string(readFile(t, "compose/rowhook.yaml")), composeSecrets(t))
		path := filepath.Join(t.TempDir(), "rowhook.yaml")
		if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
			t.Fatal(err)
		}
		checkConfig(t, path, nil)
	})
	t.Run("kubernetes", func(t *testing.T) {
		objs := k8sObjects(t)
		config := str(mustObj(t, objs, "ConfigMap/rowhook-config"), "data", "rowhook.yaml")
		// The Secret's keys as files, where the Deployment mounts them.
		secrets := t.TempDir()
		data, _ := dig(mustObj(t, objs, "Secret/rowhook-secrets"), "stringData").(map[string]any)
		for k, v := range data {
			s, _ := v.(string)
			if err := os.WriteFile(filepath.Join(secrets, k), []byte(s), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		config = strings.ReplaceAll(config, "${file:/run/secrets/rowhook/", "${file:"+secrets+"/")
		path := filepath.Join(t.TempDir(), "rowhook.yaml")
		if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
			t.Fatal(err)
		}
		checkConfig(t, path, nil)
	})
	t.Run("a wrong key is refused", func(t *testing.T) {
		// The check must be able to fail: a misspelt key names file and line.
		bad := localSecrets(t, strings.Replace(string(readFile(t, "compose/rowhook.yaml")), "include:", "inclde:", 1), composeSecrets(t))
		path := filepath.Join(t.TempDir(), "rowhook.yaml")
		if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := runCheck(t, path, nil)
		if err == nil || !strings.Contains(out, "inclde") {
			t.Errorf("rowhook check accepted a misspelt key (err %v):\n%s", err, out)
		}
	})
}
