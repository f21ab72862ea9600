package deploy_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func composeServices(t *testing.T) map[string]any {
	t.Helper()
	doc := yamlDocs(t, "docker-compose.yml")[0]
	services, _ := doc["services"].(map[string]any)
	for _, name := range []string{"primary", "replica", "rowhook", "receiver", "prometheus", "grafana"} {
		if services[name] == nil {
			t.Fatalf("docker-compose.yml has no %s service", name)
		}
	}
	return services
}

// composeMounts returns a service's bind mounts as container path → host
// path (relative to deploy/), and its named volumes as container path →
// "volume:NAME".
func composeMounts(t *testing.T, svc any) map[string]string {
	t.Helper()
	mounts := map[string]string{}
	for _, v := range list(svc, "volumes") {
		s, _ := v.(string)
		parts := strings.Split(s, ":")
		if len(parts) < 2 {
			t.Errorf("volume %q: want SOURCE:TARGET[:ro]", s)
			continue
		}
		src, dst := parts[0], parts[1]
		if strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/") {
			mounts[dst] = src
		} else {
			mounts[dst] = "volume:" + src
		}
	}
	return mounts
}

// composeSecrets are the compose file's secrets (top-level secrets:, each
// from a file) as name → content, one trailing newline dropped as rowhook
// and MariaDB's file_env drop it.
func composeSecrets(t *testing.T) map[string]string {
	t.Helper()
	doc := yamlDocs(t, "docker-compose.yml")[0]
	out := map[string]string{}
	m, _ := doc["secrets"].(map[string]any)
	for name := range m {
		f := str(m, name, "file")
		if f == "" {
			t.Errorf("secret %s is not from a file (file: ./compose/secrets/%s)", name, name)
			continue
		}
		out[name] = strings.TrimSuffix(string(readFile(t, f)), "\n")
	}
	return out
}

// localSecrets writes the secrets into a directory and points config's
// ${file:/run/secrets/NAME}s there, as compose mounts them in the container.
func localSecrets(t *testing.T, config string, secrets map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, v := range secrets {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return strings.ReplaceAll(config, "${file:/run/secrets/", "${file:"+dir+"/")
}

// composeEnv returns a service's environment (map form), with compose's
// ${VAR:-default} interpolation resolved to the default.
func composeEnv(svc any) map[string]string {
	env := map[string]string{}
	m, _ := dig(svc, "environment").(map[string]any)
	for k, v := range m {
		s := fmt.Sprint(v)
		if m := envRef.FindStringSubmatch(s); m != nil && strings.Contains(s, ":-") {
			s = s[strings.Index(s, ":-")+2 : strings.LastIndex(s, "}")]
		}
		env[k] = s
	}
	return env
}

func TestCompose_BindMountsExist(t *testing.T) {
	for name, svc := range composeServices(t) {
		for dst, src := range composeMounts(t, svc) {
			if strings.HasPrefix(src, "volume:") {
				continue
			}
			if _, err := os.Stat(src); err != nil {
				t.Errorf("service %s mounts %s at %s: %v", name, src, dst, err)
			}
		}
	}
}

func TestCompose_Rowhook(t *testing.T) {
	services := composeServices(t)
	rh := services["rowhook"]
	if str(rh, "build", "dockerfile") != "deploy/Dockerfile" || str(rh, "build", "context") != ".." {
		t.Errorf("rowhook build %v, want context .. and dockerfile deploy/Dockerfile", dig(rh, "build"))
	}
	if str(rh, "user") != "65532:65532" || dig(rh, "read_only") != true {
		t.Errorf("rowhook user %q read_only %v, want 65532:65532 and a read-only root", str(rh, "user"), dig(rh, "read_only"))
	}
	if got := fmt.Sprint(dig(rh, "command")); got != "[run --config /etc/rowhook/rowhook.yaml]" {
		t.Errorf("rowhook command %s", got)
	}
	mounts := composeMounts(t, rh)
	if mounts["/etc/rowhook/rowhook.yaml"] != "./compose/rowhook.yaml" {
		t.Errorf("rowhook.yaml mount %q, want ./compose/rowhook.yaml", mounts["/etc/rowhook/rowhook.yaml"])
	}
	if !strings.HasPrefix(mounts["/var/lib/rowhook"], "volume:") {
		t.Errorf("/var/lib/rowhook is %q, want a named volume (the state must outlive the container)", mounts["/var/lib/rowhook"])
	}
	if !strings.Contains(fmt.Sprint(dig(rh, "ports")), "9788:9788") {
		t.Errorf("rowhook ports %v, want 9788 published", dig(rh, "ports"))
	}
	for _, dep := range []string{"replica", "primary", "receiver"} {
		if dig(rh, "depends_on", dep) == nil {
			t.Errorf("rowhook does not depend on %s", dep)
		}
	}

	// Secrets are Docker secrets: each ${file:/run/secrets/NAME} of the
	// configuration is a secret the rowhook service lists, from a file that
	// exists, each listed one is read, and no ${VAR} or environment is left
	// for a secret.
	config := string(readFile(t, "compose/rowhook.yaml"))
	if refs := envRefs(config); len(refs) > 0 {
		t.Errorf("compose/rowhook.yaml uses ${VAR}s %v; secrets come as files under /run/secrets", refs)
	}
	secrets := composeSecrets(t)
	listed := map[string]bool{}
	for _, s := range list(rh, "secrets") {
		name, _ := s.(string)
		listed[name] = true
		if _, ok := secrets[name]; !ok {
			t.Errorf("the rowhook service lists secret %s, which docker-compose.yml does not define", name)
		}
	}
	used := map[string]bool{}
	for _, m := range regexp.MustCompile(`\$\{file:/run/secrets/([^}]+)\}`).FindAllStringSubmatch(config, -1) {
		used[m[1]] = true
		if !listed[m[1]] {
			t.Errorf("compose/rowhook.yaml reads /run/secrets/%s; the rowhook service does not list that secret", m[1])
		}
	}
	for name := range listed {
		if !used[name] {
			t.Errorf("the rowhook service lists secret %s, which compose/rowhook.yaml does not read", name)
		}
	}
	if len(used) < 4 {
		t.Errorf("compose/rowhook.yaml reads %d secrets, want the source and writeback passwords, the admin token and the signing secret", len(used))
	}
	// No password, token or secret in any service's environment: only
	// *_FILE paths into /run/secrets, each a secret the service lists.
	for name, svc := range services {
		svcSecrets := map[string]bool{}
		for _, s := range list(svc, "secrets") {
			n, _ := s.(string)
			svcSecrets[n] = true
		}
		for k, v := range composeEnv(svc) {
			if !regexp.MustCompile(`PASSWORD|TOKEN|SECRET`).MatchString(k) {
				continue
			}
			file, ok := strings.CutPrefix(v, "/run/secrets/")
			if !strings.HasSuffix(k, "_FILE") || !ok || !svcSecrets[file] {
				t.Errorf("service %s: %s=%s, want a *_FILE variable naming one of its secrets under /run/secrets", name, k, v)
			}
		}
	}
	cfg := yamlDocs(t, "compose/rowhook.yaml")[0]
	for _, c := range []struct{ key, want string }{
		{str(cfg, "source", "dsn"), "@tcp(replica:3306)/"},
		{str(cfg, "writeback", "dsn"), "@tcp(primary:3306)/"},
		{str(cfg, "http", "listen"), "0.0.0.0:9788"},
		{str(cfg, "state", "path"), "/var/lib/rowhook/"},
	} {
		if !strings.Contains(c.key, c.want) {
			t.Errorf("compose/rowhook.yaml: %q, want it to contain %q", c.key, c.want)
		}
	}
	hook := str(cfg, "webhooks", "erp", "url")
	if !strings.HasPrefix(hook, "http://receiver:8080/") {
		t.Errorf("webhook url %q, want the receiver service (http://receiver:8080/…)", hook)
	}
	// The receiver verifies signatures with the secret rowhook signs with.
	recv := services["receiver"]
	cmd := fmt.Sprint(dig(recv, "command"))
	if !strings.Contains(cmd, "receiver --listen :8080 --secret") {
		t.Errorf("receiver command %s, want receiver --listen :8080 --secret …", cmd)
	}
	if sec := secrets["rowhook_signing_secret"]; sec == "" || !strings.Contains(cmd, "--secret "+sec+"]") {
		t.Errorf("receiver's --secret differs from compose/secrets/rowhook_signing_secret %q", sec)
	}
}

func TestCompose_Databases(t *testing.T) {
	services := composeServices(t)
	replica := composeMounts(t, services["replica"])
	if replica["/etc/mysql/conf.d/rowhook-replica.cnf"] != "./mariadb/rowhook-replica.cnf" {
		t.Errorf("the replica does not use deploy/mariadb/rowhook-replica.cnf (mounts %v)", replica)
	}
	primary := composeMounts(t, services["primary"])
	if primary["/rowhook/grants.sql"] != "./mariadb/grants.sql" || primary["/rowhook/writeback-grants.sql"] != "./mariadb/writeback-grants.sql" {
		t.Errorf("the primary does not get deploy/mariadb/grants.sql and writeback-grants.sql (mounts %v)", primary)
	}
	if dig(services["replica"], "depends_on", "primary", "condition") != "service_healthy" {
		t.Error("the replica should wait for a healthy primary")
	}
	// The passwords the init scripts use are the secrets rowhook reads:
	// one file each, so they cannot differ.
	pe, re := composeEnv(services["primary"]), composeEnv(services["replica"])
	config := string(readFile(t, "compose/rowhook.yaml"))
	for _, c := range []struct{ env, re, secret string }{
		{"REPLICATION_PASSWORD_FILE", "REPLICATION_PASSWORD_FILE", "replication_password"},
		{"MARIADB_ROOT_PASSWORD_FILE", "MARIADB_ROOT_PASSWORD_FILE", "mariadb_root_password"},
		{"ROWHOOK_SOURCE_PASSWORD_FILE", "", "rowhook_source_password"},
		{"ROWHOOK_WRITEBACK_PASSWORD_FILE", "", "rowhook_writeback_password"},
	} {
		want := "/run/secrets/" + c.secret
		if pe[c.env] != want {
			t.Errorf("primary: %s=%q, want %s", c.env, pe[c.env], want)
		}
		if c.re != "" && re[c.re] != want {
			t.Errorf("replica: %s=%q, want %s", c.re, re[c.re], want)
		}
		if strings.HasPrefix(c.secret, "rowhook_") && !strings.Contains(config, "${file:"+want+"}") {
			t.Errorf("compose/rowhook.yaml does not read %s, which the primary's init script uses", want)
		}
	}
	for _, script := range []string{"compose/mariadb/10-primary.sh", "compose/mariadb/10-replica.sh"} {
		if !strings.Contains(string(readFile(t, script)), "file_env REPLICATION_PASSWORD") {
			t.Errorf("%s does not read REPLICATION_PASSWORD_FILE (file_env)", script)
		}
	}
}

func TestCompose_MonitoringStack(t *testing.T) {
	services := composeServices(t)
	prom := composeMounts(t, services["prometheus"])
	if prom["/etc/prometheus/prometheus.yml"] != "./prometheus/prometheus.yml" || prom["/etc/prometheus/alerts.yml"] != "./prometheus/alerts.yml" {
		t.Errorf("prometheus mounts %v: want prometheus.yml and alerts.yml side by side in /etc/prometheus", prom)
	}
	graf := composeMounts(t, services["grafana"])
	if graf["/etc/grafana/provisioning"] != "./compose/grafana/provisioning" {
		t.Errorf("grafana provisioning mount %v", graf)
	}
	var dashDir string
	for dst, src := range graf {
		if src == "./grafana/rowhook-dashboard.json" {
			dashDir = filepath.Dir(dst)
		}
	}
	if dashDir == "" {
		t.Fatalf("grafana does not mount grafana/rowhook-dashboard.json (mounts %v)", graf)
	}
	prov := yamlDocs(t, "compose/grafana/provisioning/dashboards/rowhook.yml")[0]
	if got := str(prov, "providers", 0, "options", "path"); got != dashDir {
		t.Errorf("dashboard provider path %q, the dashboard is mounted in %q", got, dashDir)
	}
	ds := yamlDocs(t, "compose/grafana/provisioning/datasources/prometheus.yml")[0]
	if str(ds, "datasources", 0, "type") != "prometheus" || str(ds, "datasources", 0, "url") != "http://prometheus:9090" {
		t.Errorf("grafana datasource %v, want prometheus at http://prometheus:9090", dig(ds, "datasources", 0))
	}
	if _, _, err := net.SplitHostPort(strings.TrimPrefix(str(ds, "datasources", 0, "url"), "http://")); err != nil {
		t.Errorf("datasource url: %v", err)
	}
}
