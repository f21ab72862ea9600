package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"

	"github.com/rowhook/rowhook/internal/mariadbtest"
	"github.com/rowhook/rowhook/internal/vtiger"
)

// The dashboard, the alert rules and the docs name metrics; a real
// `rowhook run` (rules, writeback, HA lock, two webhooks) must serve every
// one of them on /metrics, and the series whose labels are known at start
// (each webhook, each rule, each outcome) must be there at 0 before
// anything happens, so that increase() sees the first event. A list of
// names, or a grep of the source, agrees with itself while a metric that is
// defined but never registered stays absent: this scrapes the process.
func TestRun_MetricsLive(t *testing.T) {
	referenced := referencedMetrics(t)

	s := mariadbtest.New(t, mariadbtest.Options{})
	schema, db := s.NewSchema(t)
	// Vtiger's tables too, for a preset rule (its settle windows and
	// dropped-event reasons).
	if err := vtiger.Load(context.Background(), db, schema); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("CREATE TABLE deals (id INT PRIMARY KEY, name VARCHAR(80), amount DECIMAL(10,2), erp_ref VARCHAR(20))"); err != nil {
		t.Fatal(err)
	}
	var start string
	if err := s.DB().QueryRow("SELECT @@gtid_binlog_pos").Scan(&start); err != nil {
		t.Fatal(err)
	}
	erp := newERP(t)
	listen := freeAddr(t)
	cfgPath := writeConfig(t, t.TempDir(), fmt.Sprintf(`
source:
  dsn: %[1]s
  include: ['%[2]s.*']
  start: 'gtid:%[3]s'
  heartbeat: 1s
  max_backoff: 500ms
http:
  listen: %[4]s
state:
  path: state.db
ha:
  enabled: true
  dsn: %[1]s
  name: rowhook-metrics-live-%[2]s
  interval: 500ms
rules:
  - name: new-deal
    table: %[2]s.deals
    on: [insert]
    when: 'row.amount > 100'
    event: Deal
    webhooks: [erp]
    writeback:
      table: %[2]s.deals
      key: { id: 'row.id' }
      set: { erp_ref: 'response.json.id' }
  - name: deal-deleted
    table: %[2]s.deals
    on: [delete]
    event: RowChanged
    webhooks: [archive]
  - name: new-opportunity
    table: vtiger_potential
    on: [insert]
    event: NewOpportunity
    webhooks: [archive]
vtiger:
  schema: %[2]s
bodies:
  Deal:
    fields:
      id: row.id
      name: row.name
      amount: row.amount
webhooks:
  erp:
    url: %[5]s/deals
    retry: { max_attempts: 3, initial_interval: 100ms, max_interval: 1s }
  archive:
    url: %[5]s/archive
writeback:
  dsn: mysql://root@127.0.0.1:%[6]d/%[2]s
`, s.URL(), schema, start, listen, erp.URL, s.Port))

	logs := &syncWriter{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"run", "--config", cfgPath}, stdio{in: strings.NewReader(""), out: io.Discard, err: logs})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("rowhook run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("rowhook run did not stop within 30s of cancel")
		}
		if t.Failed() {
			t.Logf("rowhook log:\n%s", logs.String())
		}
	})
	waitReady(t, listen)
	// With ha: on, /readyz answers 200 as soon as the lock is held, before
	// the pipeline behind it is built: wait for the pipeline's own word.
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(logs.String(), `msg="rowhook started"`) {
		if time.Now().After(deadline) {
			t.Fatal("rowhook did not log that it started within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}

	// At start, before any row: the known series exist at 0. The queue
	// gauges come from a background read of the store that the first
	// scrape starts: wait for it.
	fams := scrape(t, listen)
	deadline = time.Now().Add(30 * time.Second)
	for _, ok := fams.series[`rowhook_queue_depth{webhook="erp"}`]; !ok; _, ok = fams.series[`rowhook_queue_depth{webhook="erp"}`] {
		if time.Now().After(deadline) {
			t.Fatal("rowhook_queue_depth not served within 30s of the start")
		}
		time.Sleep(20 * time.Millisecond)
		fams = scrape(t, listen)
	}
	var atZero []string
	for _, w := range []string{"erp", "archive"} {
		atZero = append(atZero,
			`rowhook_dead_letters_total{webhook="`+w+`"}`,
			`rowhook_delivery_retries_total{webhook="`+w+`"}`,
			`rowhook_webhook_state{state="paused",webhook="`+w+`"}`,
			`rowhook_webhook_state{state="disabled",webhook="`+w+`"}`,
			`rowhook_oldest_pending_age_seconds{webhook="`+w+`"}`,
		)
		atZero = append(atZero, `rowhook_queue_depth{webhook="`+w+`"}`)
		for _, st := range []string{"failed", "dead"} {
			atZero = append(atZero, `rowhook_dead_letter_queue_depth{status="`+st+`",webhook="`+w+`"}`)
		}
		for _, c := range []string{"2xx", "3xx", "4xx", "5xx", "rejected", "timeout", "network", "request"} {
			atZero = append(atZero, `rowhook_delivery_attempts_total{class="`+c+`",webhook="`+w+`"}`)
		}
	}
	for _, reason := range []string{"other_module", "no_record", "deleted", "created_in_window", "restored"} {
		atZero = append(atZero, `rowhook_rule_events_dropped_total{reason="`+reason+`",rule="new-opportunity"}`)
	}
	for _, r := range []string{"new-deal", "deal-deleted", "new-opportunity"} {
		for _, n := range []string{"rowhook_rule_events_total", "rowhook_rule_condition_errors_total", "rowhook_rule_body_field_errors_total"} {
			atZero = append(atZero, n+`{rule="`+r+`"}`)
		}
	}
	for _, o := range []string{"not_found", "conversion_error", "expression_error", "transient_error", "permanent_error"} {
		atZero = append(atZero, `rowhook_writebacks_total{outcome="`+o+`",table="`+schema+`.deals"}`)
	}
	for _, k := range atZero {
		v, ok := fams.series[k]
		switch {
		case !ok:
			t.Errorf("at start: %s is absent, want it at 0 (increase() misses an event whose series appears at 1)", k)
		case v != 0:
			t.Errorf("at start: %s = %v, want 0", k, v)
		}
	}

	// One delivery, written back.
	if _, err := db.Exec("INSERT INTO deals (id, name, amount) VALUES (1, 'Acme', 2500)"); err != nil {
		t.Fatal(err)
	}
	erp.wait(t, 1)
	waitValue(t, s, "SELECT COALESCE(erp_ref, '') FROM "+schema+".deals WHERE id = 1", "ERP-1001")
	wantAfter := map[string]float64{
		`rowhook_rule_events_total{rule="new-deal"}`:                          1,
		`rowhook_delivery_attempts_total{class="2xx",webhook="erp"}`:          1,
		`rowhook_writebacks_total{outcome="ok",table="` + schema + `.deals"}`: 1,
		`rowhook_ha_leader`: 1,
	}
	deadline = time.Now().Add(30 * time.Second)
	for {
		fams = scrape(t, listen)
		var wrong []string
		for k, want := range wantAfter {
			if got, ok := fams.series[k]; !ok || got != want {
				wrong = append(wrong, fmt.Sprintf("%s = %v (present: %v), want %v", k, got, ok, want))
			}
		}
		if len(wrong) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after one delivery and its writeback:\n%s", strings.Join(wrong, "\n"))
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Every metric deploy/ and the docs name is served.
	names := make([]string, 0, len(referenced))
	for n := range referenced {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if !fams.has(n) {
			t.Errorf("%s is named by %s but /metrics does not serve it", n, strings.Join(referenced[n], ", "))
		}
	}
	// …and every rowhook_ family served is in the docs' metrics table.
	docs := string(readRepoFile(t, "docs/deploy.md"))
	for n := range fams.families {
		if strings.HasPrefix(n, "rowhook_") && !strings.Contains(docs, "`"+n+"`") {
			t.Errorf("/metrics serves %s but docs/deploy.md's metrics table does not list it", n)
		}
	}
	t.Logf("%d metric names from deploy/ and the docs checked against /metrics: %s", len(names), strings.Join(names, " "))
	if len(names) < 20 {
		t.Errorf("found only %d metric names in deploy/ and the docs; is the parsing right? %v", len(names), names)
	}
}

// scraped is one /metrics response: families by name and every sample as
// `name{label="value",…}` (labels sorted) → value.
type scraped struct {
	families map[string]*dto.MetricFamily
	series   map[string]float64
}

func scrape(t *testing.T, addr string) scraped {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("/metrics: %s: %s", resp.Status, b)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse as the Prometheus text format: %v", err)
	}
	out := scraped{families: fams, series: map[string]float64{}}
	for name, mf := range fams {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			sort.Strings(labels)
			key := name
			if len(labels) > 0 {
				key += "{" + strings.Join(labels, ",") + "}"
			}
			var v float64
			switch {
			case m.Counter != nil:
				v = m.GetCounter().GetValue()
			case m.Gauge != nil:
				v = m.GetGauge().GetValue()
			case m.Untyped != nil:
				v = m.GetUntyped().GetValue()
			case m.Histogram != nil:
				v = float64(m.GetHistogram().GetSampleCount())
			case m.Summary != nil:
				v = float64(m.GetSummary().GetSampleCount())
			}
			out.series[key] = v
		}
	}
	return out
}

// has reports whether name is a served family, or a _bucket, _sum or
// _count series of a served histogram or summary.
func (s scraped) has(name string) bool {
	if _, ok := s.families[name]; ok {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		if mf, ok := s.families[base]; ok && (mf.GetType() == dto.MetricType_HISTOGRAM || mf.GetType() == dto.MetricType_SUMMARY) {
			return true
		}
	}
	return false
}

// repoRoot is the repository root seen from cmd/rowhook.
const repoRoot = "../.."

func readRepoFile(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var (
	// metricName is a rowhook metric name inside a PromQL expression or a
	// series selector: metric names are the only rowhook_ identifiers
	// there (label values are quoted, and no label value rowhook exports
	// starts with rowhook_).
	metricName = regexp.MustCompile(`\browhook_[a-zA-Z0-9_:]*[a-zA-Z0-9]`)
	// docMetric is a metric named in Markdown: `rowhook_x{labels}`, or
	// `rowhook_x` ending in a metric unit or type suffix (plain
	// `rowhook_x` names SQL tables and users too).
	docMetric = regexp.MustCompile("`(rowhook_[a-z0-9_]+)(\\{[^`]*\\})?`")
	// tableMetric is a metric in a metrics table's first cell.
	tableMetric = regexp.MustCompile("`(rowhook_[a-z0-9_]+)`")
)

// promqlKeys are the keys whose values are PromQL or series selectors in
// Prometheus rule files, promtool tests, PrometheusRule manifests and
// Grafana dashboards.
var promqlKeys = map[string]bool{"expr": true, "query": true, "definition": true, "series": true}

// referencedMetrics returns every rowhook metric name that deploy/ (alert
// rules, their promtool tests, the PrometheusRule, dashboards) and the docs
// name, each with where.
func referencedMetrics(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	add := func(name, where string) {
		for _, w := range out[name] {
			if w == where {
				return
			}
		}
		out[name] = append(out[name], where)
	}
	root := filepath.Join(repoRoot, "deploy")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		ext := filepath.Ext(path)
		if ext != ".yml" && ext != ".yaml" && ext != ".json" {
			return nil
		}
		rel, _ := filepath.Rel(repoRoot, path)
		docs, err := decodeDocs(path)
		if err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		for _, doc := range docs {
			walkStrings(doc, "", func(key, v string) {
				if !promqlKeys[key] {
					return
				}
				for _, n := range metricName.FindAllString(v, -1) {
					add(n, rel)
				}
			})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	mds, _ := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	mds = append(mds, filepath.Join(repoRoot, "README.md"), filepath.Join(root, "README.md"))
	for _, p := range mds {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(repoRoot, p)
		for _, line := range strings.Split(string(b), "\n") {
			// A row of a metrics table: | `rowhook_a`, `rowhook_b` | labels | meaning |
			if cells := strings.Split(line, "|"); len(cells) > 2 && strings.HasPrefix(strings.TrimSpace(cells[1]), "`rowhook_") {
				for _, m := range tableMetric.FindAllStringSubmatch(cells[1], -1) {
					add(m[1], rel+" (metrics table)")
				}
				continue
			}
			for _, m := range docMetric.FindAllStringSubmatch(line, -1) {
				name, labels := m[1], m[2]
				if labels != "" || hasMetricSuffix(name) {
					add(name, rel)
				}
			}
		}
	}
	return out
}

func hasMetricSuffix(name string) bool {
	for _, s := range []string{"_total", "_seconds", "_bytes", "_info"} {
		if strings.HasSuffix(name, s) {
			return true
		}
	}
	return false
}

// decodeDocs decodes a JSON file, or every document of a YAML file.
func decodeDocs(path string) ([]any, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if filepath.Ext(path) == ".json" {
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			return nil, err
		}
		return []any{v}, nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var out []any
	for {
		var v any
		if err := dec.Decode(&v); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, err
		}
		out = append(out, v)
	}
}

// walkStrings calls fn for every string in v with the map key it is under
// (a string in a list inherits the list's key).
func walkStrings(v any, key string, fn func(key, s string)) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			walkStrings(e, k, fn)
		}
	case []any:
		for _, e := range x {
			walkStrings(e, key, fn)
		}
	case string:
		fn(key, x)
	}
}
