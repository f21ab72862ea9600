package deploy_test

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// The metrics the dashboard, the alerts and docs/deploy.md name are checked
// against what a running rowhook serves by cmd/rowhook's
// TestRun_MetricsLive (it scrapes /metrics of a real `rowhook run`), not
// against a list here: a list, or a grep of the source, agrees with itself
// while a metric that is defined but never registered stays absent.

var (
	promqlStrings   = regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'|`[^`]*`")
	promqlVars      = regexp.MustCompile(`\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*`)
	promqlMatchers  = regexp.MustCompile(`\{[^{}]*\}`)
	promqlRanges    = regexp.MustCompile(`\[[^\]]*\]`)
	promqlGrouping  = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promqlDurations = regexp.MustCompile(`\b(?:\d+(?:ms|s|m|h|d|w|y))+\b`)
	promqlNumbers   = regexp.MustCompile(`\b\d+(?:\.\d+)?(?:[eE][+-]?\d+)?\b`)
	promqlIdent     = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`)
	promqlKeywords  = map[string]bool{
		"and": true, "or": true, "unless": true, "bool": true, "offset": true, "by": true, "without": true,
		"on": true, "ignoring": true, "group_left": true, "group_right": true, "inf": true, "nan": true, "atan2": true,
	}
)

// promqlMetrics returns the metric names a PromQL expression selects. It is
// not a full parser, but it knows the parts of the language that are not
// metric names: strings, label matchers, ranges, grouping clauses, numbers,
// function names (an identifier before "("), keywords, and Grafana
// variables. label_values(metric, label) from Grafana is understood too.
func promqlMetrics(expr string) []string {
	e := promqlStrings.ReplaceAllString(expr, `""`)
	e = promqlVars.ReplaceAllString(e, " ")
	for {
		n := promqlMatchers.ReplaceAllString(e, " ")
		if n == e {
			break
		}
		e = n
	}
	e = promqlRanges.ReplaceAllString(e, " ")
	e = promqlGrouping.ReplaceAllString(e, " ")
	e = promqlDurations.ReplaceAllString(e, " ")
	e = promqlNumbers.ReplaceAllString(e, " ")
	// label_values(metric, label): the label is not a metric.
	e = regexp.MustCompile(`label_values\s*\(\s*([A-Za-z_:][A-Za-z0-9_:]*)?\s*,\s*[A-Za-z_][A-Za-z0-9_]*\s*\)`).ReplaceAllString(e, " $1 ")
	seen := map[string]bool{}
	var out []string
	for _, loc := range promqlIdent.FindAllStringIndex(e, -1) {
		name := e[loc[0]:loc[1]]
		rest := strings.TrimLeft(e[loc[1]:], " \t\n")
		if strings.HasPrefix(rest, "(") || promqlKeywords[strings.ToLower(name)] || seen[name] {
			continue
		}
		seen[name] = true
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

func TestPromqlMetrics(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want string
	}{
		{`up{job="rowhook"} == 0`, "up"},
		{`absent(up{job="rowhook"})`, "up"},
		{`sum by (webhook, class) (rate(rowhook_delivery_attempts_total{instance=~"$instance", webhook=~"$webhook"}[$__rate_interval]))`, "rowhook_delivery_attempts_total"},
		{`histogram_quantile(0.95, sum by (le, webhook) (rate(rowhook_delivery_attempt_duration_seconds_bucket{webhook=~"${webhook}"}[5m])))`, "rowhook_delivery_attempt_duration_seconds_bucket"},
		{"(sum by (job) (rate(a_total{outcome!=\"ok\"}[10m])) / sum by (job) (rate(b_total[10m]))) > 0.2\nand sum(increase(c_total[10m])) >= 5", "a_total b_total c_total"},
		{`rate(x_total[5m] offset 1h) * on (instance) group_left (version) rowhook_build_info`, "rowhook_build_info x_total"},
		{`label_values(rowhook_delivery_attempts_total{instance=~"$instance"}, webhook)`, "rowhook_delivery_attempts_total"},
		{`label_values(rowhook_build_info, instance)`, "rowhook_build_info"},
		{`vector(1) > bool 1e3`, ""},
		{`{__name__="odd"}`, ""},
	} {
		t.Run(tc.expr, func(t *testing.T) {
			if got := strings.Join(promqlMetrics(tc.expr), " "); got != tc.want {
				t.Errorf("promqlMetrics(%q) = %q, want %q", tc.expr, got, tc.want)
			}
		})
	}
}

// checkSelectsMetric fails when expr selects no metric at all (a query
// that can only ever be empty).
func checkSelectsMetric(t *testing.T, where, expr string) {
	t.Helper()
	if len(promqlMetrics(expr)) == 0 {
		t.Errorf("%s: expression selects no metric: %s", where, expr)
	}
}

// baseMetric strips a histogram series suffix (_bucket, _sum, _count) from
// a name that has one.
func baseMetric(name string) string {
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			return base
		}
	}
	return name
}

// TestMetrics_Documented: docs/deploy.md's metrics table lists every metric
// the dashboard and the alert rules use.
func TestMetrics_Documented(t *testing.T) {
	docs := string(readFile(t, "../docs/deploy.md"))
	used := map[string]string{}
	for _, r := range loadAlerts(t) {
		for _, n := range promqlMetrics(r.Expr) {
			used[n] = "alert " + r.Alert
		}
	}
	for _, p := range allPanels(loadDashboard(t).Panels) {
		for _, tg := range p.Targets {
			for _, n := range promqlMetrics(tg.Expr) {
				used[n] = fmt.Sprintf("panel %q", p.Title)
			}
		}
	}
	if len(used) < 10 {
		t.Fatalf("found only %d metrics in the dashboard and alerts; is the parser right?", len(used))
	}
	for n, where := range used {
		if n == "up" {
			continue
		}
		if name := baseMetric(n); !strings.Contains(docs, "`"+name+"`") && !strings.Contains(docs, "`"+n+"`") {
			t.Errorf("docs/deploy.md does not list %s (used by %s)", name, where)
		}
	}
}
