package deploy_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// knownMetrics are the metric names rowhook exports (cdc, rules, dispatch,
// writeback, cmd/rowhook), plus Prometheus's own `up`. The dashboard and the
// alert rules may use these and no others; TestKnownMetrics_InSource keeps
// the list honest against the Go code.
var knownMetrics = map[string]bool{
	"up": true,
	// cdc
	"rowhook_binlog_events_total":                  true,
	"rowhook_binlog_bytes_total":                   true,
	"rowhook_binlog_rows_total":                    true,
	"rowhook_binlog_transactions_total":            true,
	"rowhook_binlog_reconnects_total":              true,
	"rowhook_binlog_transactions_skipped_total":    true,
	"rowhook_binlog_connected":                     true,
	"rowhook_cdc_lag_seconds":                      true,
	"rowhook_binlog_last_commit_timestamp_seconds": true,
	"rowhook_binlog_position_info":                 true,
	"rowhook_binlog_file_offset_bytes":             true,
	"rowhook_build_info":                           true,
	// dispatch
	"rowhook_deliveries_total":                  true,
	"rowhook_delivery_attempt_duration_seconds": true,
	"rowhook_delivery_retries_total":            true,
	"rowhook_dead_letters_total":                true,
	"rowhook_queue_depth":                       true,
	"rowhook_oldest_pending_age_seconds":        true,
	"rowhook_store_commit_duration_seconds":     true,
	"rowhook_webhook_paused":                    true,
	"rowhook_deliveries_enqueued_total":         true,
	"rowhook_store_errors_total":                true,
	// rules
	"rowhook_rule_events_total":            true,
	"rowhook_rule_condition_errors_total":  true,
	"rowhook_rule_body_field_errors_total": true,
	"rowhook_rule_events_dropped_total":    true,
	"rowhook_rule_held_events":             true,
	"rowhook_rule_settle_windows":          true,
	// writeback
	"rowhook_writeback_attempts_total":   true,
	"rowhook_writebacks_total":           true,
	"rowhook_writeback_duration_seconds": true,
	// internal/leader (ha:)
	"rowhook_ha_leader":          true,
	"rowhook_ha_takeovers_total": true,
}

// histograms are the known metrics exported as histograms: their _bucket,
// _sum and _count series are known too.
var histograms = map[string]bool{
	"rowhook_delivery_attempt_duration_seconds": true,
	"rowhook_store_commit_duration_seconds":     true,
	"rowhook_writeback_duration_seconds":        true,
}

// isKnownMetric reports whether name is a known metric or a series of a
// known histogram.
func isKnownMetric(name string) bool {
	if knownMetrics[name] {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && histograms[base] {
			return true
		}
	}
	return false
}

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
		{`sum by (webhook, outcome) (rate(rowhook_deliveries_total{instance=~"$instance", webhook=~"$webhook"}[$__rate_interval]))`, "rowhook_deliveries_total"},
		{`histogram_quantile(0.95, sum by (le, webhook) (rate(rowhook_delivery_attempt_duration_seconds_bucket{webhook=~"${webhook}"}[5m])))`, "rowhook_delivery_attempt_duration_seconds_bucket"},
		{"(sum by (job) (rate(a_total{outcome!=\"ok\"}[10m])) / sum by (job) (rate(b_total[10m]))) > 0.2\nand sum(increase(c_total[10m])) >= 5", "a_total b_total c_total"},
		{`rate(x_total[5m] offset 1h) * on (instance) group_left (version) rowhook_build_info`, "rowhook_build_info x_total"},
		{`label_values(rowhook_deliveries_total{instance=~"$instance"}, webhook)`, "rowhook_deliveries_total"},
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

// checkKnownMetrics fails for each metric expr uses that rowhook does not export.
func checkKnownMetrics(t *testing.T, where, expr string) {
	t.Helper()
	names := promqlMetrics(expr)
	if len(names) == 0 {
		t.Errorf("%s: expression selects no metric: %s", where, expr)
	}
	for _, n := range names {
		if !isKnownMetric(n) {
			t.Errorf("%s: %q is not a metric rowhook exports (expression: %s)", where, n, expr)
		}
	}
}

var metricLiteral = regexp.MustCompile(`"(rowhook_[a-z0-9_]+)"`)

// TestKnownMetrics_InSource: every metric the dashboard and alerts may use is
// defined by rowhook's Go code (a string literal outside tests), so a renamed
// metric breaks this test rather than a dashboard panel in production.
func TestKnownMetrics_InSource(t *testing.T) {
	defined := map[string]bool{}
	err := filepath.WalkDir(repoRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata" || d.Name() == "deploy") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range metricLiteral.FindAllSubmatch(b, -1) {
			defined[string(m[1])] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for name := range knownMetrics {
		if name != "up" && !defined[name] {
			t.Errorf("%s is in knownMetrics but no Go file defines it: renamed or removed? Update the dashboard and alerts", name)
		}
	}
}

// TestKnownMetrics_Documented: docs/deploy.md's metrics table lists every
// metric the dashboard and alerts may use.
func TestKnownMetrics_Documented(t *testing.T) {
	docs := string(readFile(t, "../docs/deploy.md"))
	for name := range knownMetrics {
		if name != "up" && !strings.Contains(docs, "`"+name+"`") {
			t.Errorf("docs/deploy.md does not list %s", name)
		}
	}
}
