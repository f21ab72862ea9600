package deploy_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// k8sObjects returns every object in deploy/kubernetes by "Kind/name".
func k8sObjects(t *testing.T) map[string]map[string]any {
	t.Helper()
	files, err := filepath.Glob("kubernetes/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in deploy/kubernetes (%v)", err)
	}
	objs := map[string]map[string]any{}
	// The ConfigMaps kustomization.yaml generates, by their name before the
	// hash suffix (what the Deployment refers to), from their files.
	generated := map[string]bool{"kustomization.yaml": true}
	for _, g := range list(yamlDocs(t, "kubernetes/kustomization.yaml")[0], "configMapGenerator") {
		data := map[string]any{}
		for _, f := range list(g, "files") {
			name, _ := f.(string)
			generated[name] = true
			data[name] = string(readFile(t, filepath.Join("kubernetes", name)))
		}
		objs["ConfigMap/"+str(g, "name")] = map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
			"metadata": map[string]any{"name": str(g, "name")}, "data": data}
	}
	for _, f := range files {
		if generated[filepath.Base(f)] {
			continue
		}
		for _, d := range yamlDocs(t, f) {
			kind, name := str(d, "kind"), str(d, "metadata", "name")
			if kind == "" || name == "" || str(d, "apiVersion") == "" {
				t.Errorf("%s: object without apiVersion, kind or metadata.name", f)
				continue
			}
			if ns := str(d, "metadata", "namespace"); ns != "" {
				t.Errorf("%s: %s/%s sets namespace %q; the manifests are namespace-agnostic", f, kind, name, ns)
			}
			objs[kind+"/"+name] = d
		}
	}
	return objs
}

func mustObj(t *testing.T, objs map[string]map[string]any, key string) map[string]any {
	t.Helper()
	o, ok := objs[key]
	if !ok {
		keys := make([]string, 0, len(objs))
		for k := range objs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		t.Fatalf("deploy/kubernetes has no %s (has %v)", key, keys)
	}
	return o
}

func TestKubernetes_Deployment(t *testing.T) {
	objs := k8sObjects(t)
	d := mustObj(t, objs, "Deployment/rowhook")
	if n := dig(d, "spec", "replicas"); n != 1 {
		t.Errorf("replicas %v, want 1: one binlog reader, one owner of the state file", n)
	}
	if s := str(d, "spec", "strategy", "type"); s != "Recreate" {
		t.Errorf("strategy %q, want Recreate (a rolling update would run two readers on one state volume)", s)
	}
	pod := dig(d, "spec", "template", "spec")
	if dig(pod, "securityContext", "runAsNonRoot") != true || dig(pod, "securityContext", "runAsUser") != 65532 {
		t.Errorf("pod securityContext %v, want runAsNonRoot and runAsUser 65532", dig(pod, "securityContext"))
	}
	sel := fmt.Sprint(dig(d, "spec", "selector", "matchLabels"))
	if sel != fmt.Sprint(dig(d, "spec", "template", "metadata", "labels")) {
		t.Errorf("selector %s does not match the pod labels %v", sel, dig(d, "spec", "template", "metadata", "labels"))
	}
	containers := list(pod, "containers")
	if len(containers) != 1 {
		t.Fatalf("%d containers, want 1", len(containers))
	}
	c := containers[0]
	if got := fmt.Sprint(dig(c, "args")); !strings.HasPrefix(got, "[run --config /etc/rowhook/rowhook.yaml") {
		t.Errorf("args %s, want run --config /etc/rowhook/rowhook.yaml …", got)
	}
	if dig(c, "ports", 0, "containerPort") != 9788 || str(c, "ports", 0, "name") != "http" {
		t.Errorf("ports %v, want containerPort 9788 named http", dig(c, "ports"))
	}
	for probe, path := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz"} {
		if got := str(c, probe, "httpGet", "path"); got != path {
			t.Errorf("%s path %q, want %s", probe, got, path)
		}
		if port := dig(c, probe, "httpGet", "port"); port != "http" && port != 9788 {
			t.Errorf("%s port %v, want http or 9788", probe, port)
		}
	}
	sc := dig(c, "securityContext")
	for k, want := range map[string]any{"readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false, "runAsNonRoot": true} {
		if got := dig(sc, k); got != want {
			t.Errorf("container securityContext.%s = %v, want %v", k, got, want)
		}
	}
	if fmt.Sprint(dig(sc, "capabilities", "drop")) != "[ALL]" {
		t.Errorf("capabilities.drop %v, want [ALL]", dig(sc, "capabilities", "drop"))
	}
	if dig(c, "resources", "requests", "memory") == nil || dig(c, "resources", "limits", "memory") == nil {
		t.Errorf("resources %v: want memory requests and limits", dig(c, "resources"))
	}

	// Volumes: config from the ConfigMap, state from the PVC, /tmp writable.
	volumes := map[string]any{}
	for _, v := range list(pod, "volumes") {
		volumes[str(v, "name")] = v
	}
	mounts := map[string]string{}
	for _, m := range list(c, "volumeMounts") {
		mounts[str(m, "mountPath")] = str(m, "name")
	}
	cm := str(volumes[mounts["/etc/rowhook"]], "configMap", "name")
	if cm == "" {
		t.Errorf("/etc/rowhook is not mounted from a ConfigMap (mounts %v)", mounts)
	} else {
		mustObj(t, objs, "ConfigMap/"+cm)
	}
	pvc := str(volumes[mounts["/var/lib/rowhook"]], "persistentVolumeClaim", "claimName")
	if pvc == "" {
		t.Errorf("/var/lib/rowhook is not mounted from a PersistentVolumeClaim (mounts %v)", mounts)
	} else if p := mustObj(t, objs, "PersistentVolumeClaim/"+pvc); fmt.Sprint(dig(p, "spec", "accessModes")) != "[ReadWriteOnce]" {
		t.Errorf("PVC %s accessModes %v, want [ReadWriteOnce]", pvc, dig(p, "spec", "accessModes"))
	}
	if dig(volumes[mounts["/tmp"]], "emptyDir") == nil {
		t.Errorf("/tmp is not an emptyDir; with a read-only root file system SQLite needs it (mounts %v)", mounts)
	}

	// Every ${file:…} of the configuration is a key of the Secret mounted
	// at /run/secrets/rowhook, and no ${VAR} is left for an environment.
	secretName := str(volumes[mounts["/run/secrets/rowhook"]], "secret", "secretName")
	secret := mustObj(t, objs, "Secret/"+secretName)
	keys, _ := dig(secret, "stringData").(map[string]any)
	config := str(mustObj(t, objs, "ConfigMap/"+cm), "data", "rowhook.yaml")
	if refs := envRefs(config); len(refs) > 0 {
		t.Errorf("rowhook.yaml uses ${VAR}s %v; secrets come as files", refs)
	}
	used := map[string]bool{}
	for _, m := range regexp.MustCompile(`\$\{file:/run/secrets/rowhook/([^}]+)\}`).FindAllStringSubmatch(config, -1) {
		used[m[1]] = true
		if _, ok := keys[m[1]]; !ok {
			t.Errorf("rowhook.yaml reads /run/secrets/rowhook/%s but Secret %s has no such key", m[1], secretName)
		}
	}
	for k := range keys {
		if !used[k] {
			t.Errorf("Secret key %s is not used by rowhook.yaml", k)
		}
	}
}

func TestKubernetes_ServiceAndMonitor(t *testing.T) {
	objs := k8sObjects(t)
	d := mustObj(t, objs, "Deployment/rowhook")
	svc := mustObj(t, objs, "Service/rowhook")
	podLabels, _ := dig(d, "spec", "template", "metadata", "labels").(map[string]any)
	sel, _ := dig(svc, "spec", "selector").(map[string]any)
	for k, v := range sel {
		if podLabels[k] != v {
			t.Errorf("Service selector %s=%v does not match the pod's labels %v", k, v, podLabels)
		}
	}
	if str(svc, "spec", "ports", 0, "name") != "http" || dig(svc, "spec", "ports", 0, "port") != 9788 {
		t.Errorf("Service ports %v, want http 9788", dig(svc, "spec", "ports"))
	}
	sm := mustObj(t, objs, "ServiceMonitor/rowhook")
	if str(sm, "apiVersion") != "monitoring.coreos.com/v1" {
		t.Errorf("ServiceMonitor apiVersion %q", str(sm, "apiVersion"))
	}
	svcLabels, _ := dig(svc, "metadata", "labels").(map[string]any)
	match, _ := dig(sm, "spec", "selector", "matchLabels").(map[string]any)
	if len(match) == 0 {
		t.Error("ServiceMonitor has no selector")
	}
	for k, v := range match {
		if svcLabels[k] != v {
			t.Errorf("ServiceMonitor selects %s=%v, the Service's labels are %v", k, v, svcLabels)
		}
	}
	if str(sm, "spec", "endpoints", 0, "port") != "http" || str(sm, "spec", "endpoints", 0, "path") != "/metrics" {
		t.Errorf("ServiceMonitor endpoint %v, want port http path /metrics", dig(sm, "spec", "endpoints", 0))
	}
}

// TestKubernetes_PrometheusRule: the PrometheusRule carries exactly the groups
// of deploy/prometheus/alerts.yml (the promtool-tested ones).
func TestKubernetes_PrometheusRule(t *testing.T) {
	pr := mustObj(t, k8sObjects(t), "PrometheusRule/rowhook")
	var alerts map[string]any
	if err := yaml.Unmarshal(readFile(t, "prometheus/alerts.yml"), &alerts); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(dig(pr, "spec", "groups"), alerts["groups"]) {
		t.Error("kubernetes/prometheusrule.yaml spec.groups differ from prometheus/alerts.yml groups: copy them over")
	}
}

func TestKubernetes_Kustomization(t *testing.T) {
	k := yamlDocs(t, "kubernetes/kustomization.yaml")[0]
	listed := map[string]bool{}
	for _, r := range list(k, "resources") {
		s, _ := r.(string)
		listed[s] = true
		if _, err := os.Stat(filepath.Join("kubernetes", s)); err != nil {
			t.Errorf("kustomization lists %s: %v", s, err)
		}
	}
	for _, g := range list(k, "configMapGenerator") {
		for _, f := range list(g, "files") {
			s, _ := f.(string)
			listed[s] = true
		}
	}
	files, _ := filepath.Glob("kubernetes/*.yaml")
	for _, f := range files {
		if b := filepath.Base(f); b != "kustomization.yaml" && !listed[b] {
			t.Errorf("kustomization.yaml does not list %s", b)
		}
	}
}

// A configuration change rolls rowhook out: the ConfigMap is generated
// from rowhook.yaml with a content hash in its name (configMapGenerator,
// no disableNameSuffixHash), so a changed file changes the Deployment's
// pod template. Where kubectl is installed, its kustomize builds the
// manifests twice, the second time with rowhook.yaml changed, and the
// pod templates must differ.
func TestKubernetes_ConfigChangeRollsOut(t *testing.T) {
	k := yamlDocs(t, "kubernetes/kustomization.yaml")[0]
	var gen map[string]any
	for _, g := range list(k, "configMapGenerator") {
		if m, _ := g.(map[string]any); str(m, "name") == "rowhook-config" {
			gen = m
		}
	}
	if gen == nil {
		t.Fatal("kustomization.yaml has no configMapGenerator named rowhook-config: a config change would not roll out")
	}
	if fmt.Sprint(list(gen, "files")) != "[rowhook.yaml]" {
		t.Errorf("rowhook-config generated from %v, want [rowhook.yaml] (the key the Deployment mounts)", list(gen, "files"))
	}
	if dig(gen, "options", "disableNameSuffixHash") == true || dig(k, "generatorOptions", "disableNameSuffixHash") == true {
		t.Error("disableNameSuffixHash: without the hash a changed config does not change the pod template")
	}
	for _, r := range list(k, "resources") {
		if s, _ := r.(string); s != "secret.yaml" && strings.Contains(string(readFile(t, filepath.Join("kubernetes", s))), "kind: ConfigMap") {
			t.Errorf("%s defines a ConfigMap beside the generated one", s)
		}
	}

	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Log("kubectl not installed: the generator checked by the parser above only")
		return
	}
	build := func(dir string) (cm string, tmpl any) {
		t.Helper()
		out, err := exec.Command(kubectl, "kustomize", dir).CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, out)
		}
		dec := yaml.NewDecoder(strings.NewReader(string(out)))
		var deploy map[string]any
		for {
			var d map[string]any
			if dec.Decode(&d) != nil {
				break
			}
			switch {
			case str(d, "kind") == "ConfigMap":
				cm = str(d, "metadata", "name")
			case str(d, "kind") == "Deployment":
				deploy = d
			}
		}
		if !regexp.MustCompile(`^rowhook-config-[a-z0-9]{6,}$`).MatchString(cm) {
			t.Errorf("generated ConfigMap %q, want rowhook-config-<hash>", cm)
		}
		vols := list(deploy, "spec", "template", "spec", "volumes")
		found := false
		for _, v := range vols {
			if str(v, "configMap", "name") == cm {
				found = true
			}
		}
		if !found {
			t.Errorf("the Deployment does not mount the generated ConfigMap %s: %v", cm, vols)
		}
		return cm, dig(deploy, "spec", "template")
	}
	cm1, tmpl1 := build("kubernetes")
	dir := t.TempDir()
	entries, _ := os.ReadDir("kubernetes")
	for _, e := range entries {
		b := readFile(t, filepath.Join("kubernetes", e.Name()))
		if e.Name() == "rowhook.yaml" {
			b = []byte(strings.Replace(string(b), "when: row.amount > 1000", "when: row.amount > 5000", 1))
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cm2, tmpl2 := build(dir)
	if cm1 == cm2 || reflect.DeepEqual(tmpl1, tmpl2) {
		t.Errorf("a changed rowhook.yaml kept ConfigMap %s and the pod template: no rollout", cm1)
	}
}

// TestKubernetes_ArgsAccepted: the container's arguments are flags `rowhook
// run` really has (its --help lists each).
func TestKubernetes_ArgsAccepted(t *testing.T) {
	d := mustObj(t, k8sObjects(t), "Deployment/rowhook")
	args := list(d, "spec", "template", "spec", "containers", 0, "args")
	out, _ := exec.Command(buildAsDockerfile(t), "run", "--help").CombinedOutput()
	for _, a := range args[1:] {
		s, _ := a.(string)
		if strings.HasPrefix(s, "--") && !strings.Contains(string(out), "-"+strings.TrimPrefix(s, "--")+" ") {
			t.Errorf("rowhook run has no flag %s:\n%s", s, out)
		}
	}
}
