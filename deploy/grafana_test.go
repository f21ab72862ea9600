package deploy_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

type dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Datasource json.RawMessage `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int             `json:"id"`
	Type       string          `json:"type"`
	Title      string          `json:"title"`
	Datasource json.RawMessage `json:"datasource"`
	Targets    []struct {
		Expr       string          `json:"expr"`
		RefID      string          `json:"refId"`
		Datasource json.RawMessage `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	raw := readFile(t, "grafana/rowhook-dashboard.json")
	if !json.Valid(raw) {
		t.Fatal("grafana/rowhook-dashboard.json is not valid JSON")
	}
	var d dashboard
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("grafana/rowhook-dashboard.json: %v", err)
	}
	return d
}

func allPanels(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, allPanels(p.Panels)...)
	}
	return out
}

// TestDashboard_Queries: every query selects a metric and goes through the
// datasource variable (cmd/rowhook's TestRun_MetricsLive checks the metrics
// against a running rowhook).
func TestDashboard_Queries(t *testing.T) {
	d := loadDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Errorf("dashboard needs a uid and a title (provisioning keys on the uid), got %q %q", d.UID, d.Title)
	}
	ids := map[int]string{}
	queries := 0
	for _, p := range allPanels(d.Panels) {
		if prev, dup := ids[p.ID]; dup {
			t.Errorf("panel id %d used by %q and %q", p.ID, prev, p.Title)
		}
		ids[p.ID] = p.Title
		if p.Type == "row" {
			continue
		}
		if p.Title == "" {
			t.Errorf("panel %d has no title", p.ID)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		if !strings.Contains(string(p.Datasource), "${datasource}") {
			t.Errorf("panel %q datasource %s, want the ${datasource} variable", p.Title, p.Datasource)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			queries++
			where := fmt.Sprintf("panel %q query %s", p.Title, tg.RefID)
			if refs[tg.RefID] {
				t.Errorf("%s: refId used twice", where)
			}
			refs[tg.RefID] = true
			if !strings.Contains(string(tg.Datasource), "${datasource}") {
				t.Errorf("%s: datasource %s, want the ${datasource} variable", where, tg.Datasource)
			}
			checkSelectsMetric(t, where, tg.Expr)
		}
	}
	if queries < 15 {
		t.Errorf("dashboard has %d queries; expected the full set of rowhook panels", queries)
	}
}

// TestDashboard_Coverage: the panels the deploy brief lists are there.
func TestDashboard_Coverage(t *testing.T) {
	d := loadDashboard(t)
	var exprs strings.Builder
	for _, p := range allPanels(d.Panels) {
		for _, tg := range p.Targets {
			exprs.WriteString(tg.Expr + "\n")
		}
	}
	all := exprs.String()
	for _, want := range []string{
		"rowhook_cdc_lag_seconds",
		"sum by (op) (rate(rowhook_binlog_rows_total",
		"rowhook_binlog_transactions_total",
		"rowhook_binlog_reconnects_total",
		"sum by (webhook, class) (rate(rowhook_delivery_attempts_total",
		"rowhook_delivery_latency_seconds_bucket",
		"histogram_quantile(0.5, sum by (le, webhook) (rate(rowhook_delivery_attempt_duration_seconds_bucket",
		"histogram_quantile(0.95, sum by (le, webhook) (rate(rowhook_delivery_attempt_duration_seconds_bucket",
		"histogram_quantile(0.99, sum by (le, webhook) (rate(rowhook_delivery_attempt_duration_seconds_bucket",
		"sum by (webhook) (rowhook_queue_depth",
		"sum by (webhook, status) (rowhook_dead_letter_queue_depth",
		"rowhook_oldest_pending_age_seconds",
		"rowhook_dead_letters_total",
		"sum by (table, outcome) (rate(rowhook_writebacks_total",
		"rowhook_webhook_state",
		"rowhook_store_commit_duration_seconds_bucket",
		"rowhook_build_info",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("no dashboard query contains %q", want)
		}
	}
}

// TestDashboard_Variables: a datasource variable and a webhook variable that
// the delivery panels filter on.
func TestDashboard_Variables(t *testing.T) {
	d := loadDashboard(t)
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
		if v.Type == "query" {
			var q struct {
				Query string `json:"query"`
			}
			if err := json.Unmarshal(v.Query, &q); err != nil {
				var s string
				if json.Unmarshal(v.Query, &s) != nil {
					t.Errorf("variable %s: query %s is neither an object nor a string", v.Name, v.Query)
				}
				q.Query = s
			}
			checkSelectsMetric(t, "variable "+v.Name, q.Query)
			if !strings.Contains(string(v.Datasource), "${datasource}") {
				t.Errorf("variable %s datasource %s, want ${datasource}", v.Name, v.Datasource)
			}
		}
	}
	if vars["datasource"] != "datasource" {
		t.Errorf("want a datasource variable named datasource, got %v", vars)
	}
	if vars["webhook"] != "query" {
		t.Errorf("want a query variable named webhook, got %v", vars)
	}
	filtered := 0
	for _, p := range allPanels(d.Panels) {
		for _, tg := range p.Targets {
			if strings.Contains(tg.Expr, `webhook=~"$webhook"`) {
				filtered++
			}
		}
	}
	if filtered < 4 {
		t.Errorf(`%d queries filter on webhook=~"$webhook"; the delivery panels should`, filtered)
	}
}

// TestDashboard_Layout: panels sit inside the 24-column grid without
// overlapping, so Grafana shows them as laid out instead of reflowing them.
func TestDashboard_Layout(t *testing.T) {
	var d struct {
		Panels []struct {
			ID      int    `json:"id"`
			Title   string `json:"title"`
			GridPos struct {
				H, W, X, Y int
			} `json:"gridPos"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(readFile(t, "grafana/rowhook-dashboard.json"), &d); err != nil {
		t.Fatal(err)
	}
	type cell struct{ x, y int }
	used := map[cell]string{}
	for _, p := range d.Panels {
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.Y < 0 || g.X+g.W > 24 {
			t.Errorf("panel %q gridPos %+v is outside the 24-column grid", p.Title, g)
			continue
		}
	cells:
		for x := g.X; x < g.X+g.W; x++ {
			for y := g.Y; y < g.Y+g.H; y++ {
				if other, ok := used[cell{x, y}]; ok {
					t.Errorf("panel %q overlaps %q at column %d row %d", p.Title, other, x, y)
					break cells
				}
				used[cell{x, y}] = p.Title
			}
		}
	}
}

// TestDashboard_PromQLParses: every dashboard query is valid PromQL. Each is
// written, with Grafana's variables filled in, as a recording rule and given
// to `promtool check rules`, which parses it with Prometheus's own parser.
func TestDashboard_PromQLParses(t *testing.T) {
	d := loadDashboard(t)
	vars := strings.NewReplacer("$__rate_interval", "5m", "$__range", "6h", "$__interval", "1m",
		"${webhook}", ".*", "$webhook", ".*", "${instance}", ".*", "$instance", ".*")
	var b strings.Builder
	b.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	n := 0
	for _, p := range allPanels(d.Panels) {
		for _, tg := range p.Targets {
			n++
			expr, err := json.Marshal(vars.Replace(tg.Expr))
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "      - record: dashboard:query%d\n        expr: %s\n", n, expr)
		}
	}
	path := filepath.Join(t.TempDir(), "dashboard_rules.yml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(promtool(t), "check", "rules", path).CombinedOutput()
	if err != nil {
		t.Fatalf("a dashboard query is not valid PromQL: %v\n%s\n%s", err, out, b.String())
	}
	if !strings.Contains(string(out), fmt.Sprintf("SUCCESS: %d rules found", n)) {
		t.Errorf("promtool check rules: %s (want %d rules)", out, n)
	}
}
