package deploy_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
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

	// The configuration's ${VAR}s are all in the service's environment, and
	// its addresses are the compose services'.
	config := string(readFile(t, "compose/rowhook.yaml"))
	env := composeEnv(rh)
	for v := range envRefs(config) {
		if env[v] == "" {
			t.Errorf("compose/rowhook.yaml uses ${%s}; the rowhook service does not set it", v)
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
	if !strings.Contains(cmd, env["ROWHOOK_SIGNING_SECRET"]) {
		t.Errorf("receiver's --secret default differs from rowhook's ROWHOOK_SIGNING_SECRET default %q", env["ROWHOOK_SIGNING_SECRET"])
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
	// The passwords the init scripts use match rowhook's.
	pe, re, rh := composeEnv(services["primary"]), composeEnv(services["replica"]), composeEnv(services["rowhook"])
	if pe["REPLICATION_PASSWORD"] == "" || pe["REPLICATION_PASSWORD"] != re["REPLICATION_PASSWORD"] {
		t.Errorf("REPLICATION_PASSWORD differs between primary (%q) and replica (%q)", pe["REPLICATION_PASSWORD"], re["REPLICATION_PASSWORD"])
	}
	for _, v := range []string{"ROWHOOK_SOURCE_PASSWORD", "ROWHOOK_WRITEBACK_PASSWORD"} {
		if pe[v] == "" || pe[v] != rh[v] {
			t.Errorf("%s differs between primary (%q) and rowhook (%q)", v, pe[v], rh[v])
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
