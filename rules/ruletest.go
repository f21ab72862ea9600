package rules

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/internal/yamlconf"
)

// TestFile is a rule test file (`rowhook test`): row changes in, expected
// events and bodies out, in the spirit of `promtool test rules`.
type TestFile struct {
	Tests []TestCase `yaml:"tests"`
}

// TestCase is one test: its changes run through a fresh engine.
type TestCase struct {
	Name string `yaml:"name"`
	// Changes are row changes in binlog order. Each is its own transaction
	// unless consecutive changes share a tx number.
	Changes []TestChange `yaml:"changes"`
	// Lookups are the results YAML body functions' lookup queries return,
	// by body function name (tests run without a database).
	Lookups map[string]yaml.Node `yaml:"lookups"`
	// FlushAt is the wall time at which the source goes idle after the
	// last change (closing settle windows due by then); zero closes all.
	FlushAt time.Time `yaml:"flush_at"`
	// Expect lists the events, in order; empty means none fires.
	Expect []TestExpect `yaml:"expect"`
}

// TestChange is one input row change.
type TestChange struct {
	// Table is "schema.table" ("table" alone is in schema "test").
	Table string `yaml:"table"`
	// Op is insert, update or delete.
	Op string `yaml:"op"`
	// At is the transaction's commit time; default: the previous change's,
	// or 2026-01-01T00:00:00Z.
	At time.Time `yaml:"at"`
	// Tx groups consecutive changes into one transaction.
	Tx int `yaml:"tx"`
	// Key lists the primary key columns; default the first column.
	Key []string `yaml:"key"`
	// Before and After are the row images, column: value. Integers are
	// BIGINT, numbers with a fraction DECIMAL (exact); tag !float for
	// FLOAT/DOUBLE, !decimal to force DECIMAL, !bytes for binary text.
	Before yaml.Node `yaml:"before"`
	After  yaml.Node `yaml:"after"`
	// Annotation is the statement text (a writeback tag here makes the
	// change rowhook's own write).
	Annotation string `yaml:"annotation"`
}

// TestExpect is one expected event. Empty fields are not compared.
type TestExpect struct {
	Rule     string   `yaml:"rule"`
	Event    string   `yaml:"event"`
	ID       string   `yaml:"id"`
	Key      string   `yaml:"key"`
	Webhooks []string `yaml:"webhooks"`
	// Body is compared whole; Fields only the fields listed.
	Body   yaml.Node `yaml:"body"`
	Fields yaml.Node `yaml:"fields"`
}

// TestResult is the outcome of one TestCase.
type TestResult struct {
	Name string
	// Path is the case's key path ("tests[2]") and Pos its place.
	Path string
	Pos  yamlconf.Pos
	// Failures are human-readable differences; empty means passed.
	Failures []string
	// Events are the events the case produced.
	Events []Event
}

// Passed reports whether the case passed.
func (r TestResult) Passed() bool { return len(r.Failures) == 0 }

var testEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// LoadTests reads a rule test file; errors are positioned.
func LoadTests(path string) (*TestFile, *yamlconf.Doc, error) {
	var tf TestFile
	doc, err := yamlconf.Load(path, &tf)
	if err != nil {
		return nil, doc, err
	}
	var errs []error
	if len(tf.Tests) == 0 {
		errs = append(errs, yamlconf.Errf("tests", "no tests in the file"))
	}
	for i, tc := range tf.Tests {
		p := fmt.Sprintf("tests[%d]", i)
		if tc.Name == "" {
			errs = append(errs, yamlconf.Errf(p+".name", "is required"))
		}
		if len(tc.Changes) == 0 {
			errs = append(errs, yamlconf.Errf(p+".changes", "at least one change is required"))
		}
		for j, c := range tc.Changes {
			if _, err := c.change(); err != nil {
				errs = append(errs, yamlconf.Errf(fmt.Sprintf("%s.changes[%d]", p, j), "%v", err))
			}
		}
		for name, n := range tc.Lookups {
			if _, err := nodeRow(&n); err != nil {
				errs = append(errs, yamlconf.Errf(p+".lookups."+name, "%v", err))
			}
		}
	}
	return &tf, doc, doc.Locate(errors.Join(errs...))
}

// change builds the cdc.Change (without ids and times).
func (c TestChange) change() (*cdc.Change, error) {
	schema, table := "test", c.Table
	if i := strings.IndexByte(table, '.'); i >= 0 {
		schema, table = table[:i], table[i+1:]
	}
	if table == "" {
		return nil, errors.New("table is required")
	}
	before, err := nodeRow(&c.Before)
	if err != nil {
		return nil, fmt.Errorf("before: %w", err)
	}
	after, err := nodeRow(&c.After)
	if err != nil {
		return nil, fmt.Errorf("after: %w", err)
	}
	ch := &cdc.Change{Schema: schema, Table: table, Op: cdc.Op(c.Op), Before: before.vals, After: after.vals, Annotation: c.Annotation}
	img := after
	switch ch.Op {
	case cdc.OpInsert:
		if after.vals == nil || before.vals != nil {
			return nil, errors.New("an insert has after and no before")
		}
		ch.Changed = after.cols
	case cdc.OpUpdate:
		if after.vals == nil || before.vals == nil {
			return nil, errors.New("an update has before and after")
		}
		for _, col := range after.cols {
			if !reflect.DeepEqual(before.vals[col], after.vals[col]) {
				ch.Changed = append(ch.Changed, col)
			}
		}
	case cdc.OpDelete:
		if before.vals == nil || after.vals != nil {
			return nil, errors.New("a delete has before and no after")
		}
		img = before
		ch.Changed = before.cols
	default:
		return nil, fmt.Errorf("op must be insert, update or delete, not %q", c.Op)
	}
	ch.Columns = img.cols
	ch.PKColumns = c.Key
	if len(ch.PKColumns) == 0 && len(img.cols) > 0 {
		ch.PKColumns = img.cols[:1]
	}
	ch.PK = cdc.Row{}
	for _, k := range ch.PKColumns {
		v, ok := img.vals[k]
		if !ok {
			return nil, fmt.Errorf("key column %s is not in the row", k)
		}
		ch.PK[k] = v
	}
	return ch, nil
}

type orderedRow struct {
	cols []string
	vals cdc.Row
}

// nodeRow reads a mapping of column: value (a zero node is no row).
func nodeRow(n *yaml.Node) (orderedRow, error) {
	if n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
		return orderedRow{}, nil
	}
	if n.Kind != yaml.MappingNode {
		return orderedRow{}, fmt.Errorf("line %d: a row is a mapping of column: value", n.Line)
	}
	r := orderedRow{vals: cdc.Row{}}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i].Value, n.Content[i+1]
		val, err := nodeValue(v)
		if err != nil {
			return orderedRow{}, fmt.Errorf("column %s: %w", k, err)
		}
		r.cols = append(r.cols, k)
		r.vals[k] = val
	}
	return r, nil
}

// nodeValue maps a YAML scalar to the value cdc would give the column.
func nodeValue(n *yaml.Node) (any, error) {
	if n.Kind != yaml.ScalarNode {
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, err
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		return cdc.JSON(b), nil // a mapping or list is a JSON column
	}
	switch n.Tag {
	case "!!null":
		return nil, nil
	case "!!int":
		i, err := strconv.ParseInt(n.Value, 0, 64)
		if err != nil {
			u, uerr := strconv.ParseUint(n.Value, 0, 64)
			if uerr != nil {
				return nil, err
			}
			return u, nil
		}
		return i, nil
	case "!!float", "!decimal":
		return cdc.Decimal(n.Value), nil
	case "!float":
		f, err := strconv.ParseFloat(n.Value, 64)
		return f, err
	case "!bytes":
		return cdc.Bytes(n.Value), nil
	case "!!bool":
		if n.Value == "true" {
			return int64(1), nil
		}
		return int64(0), nil
	case "!!timestamp":
		// A DATE or DATETIME written unquoted: keep the text cdc gives.
		return n.Value, nil
	}
	return n.Value, nil
}

// RunTests runs every case of tf against the rules of c, offline.
func (c Config) RunTests(ctx context.Context, tf *TestFile, doc *yamlconf.Doc) ([]TestResult, error) {
	ruleNames := map[string]bool{}
	for _, r := range c.Rules {
		ruleNames[r.Name] = true
	}
	var out []TestResult
	for i, tc := range tf.Tests {
		p := fmt.Sprintf("tests[%d]", i)
		res := TestResult{Name: tc.Name, Path: p, Pos: doc.Pos(p)}
		for j, x := range tc.Expect {
			if x.Rule != "" && !ruleNames[x.Rule] {
				pos := doc.Pos(fmt.Sprintf("%s.expect[%d].rule", p, j))
				res.Failures = append(res.Failures, fmt.Sprintf("%s:%d:%d: expect[%d]: no rule named %q in the config", doc.File, pos.Line, pos.Col, j, x.Rule))
			}
		}
		if len(res.Failures) == 0 {
			evs, err := c.runCase(ctx, tc)
			if err != nil {
				return nil, fmt.Errorf("%s: %s: %w", p, tc.Name, err)
			}
			res.Events = evs
			res.Failures = compareEvents(tc.Expect, evs)
		}
		out = append(out, res)
	}
	return out, nil
}

func (c Config) runCase(ctx context.Context, tc TestCase) ([]Event, error) {
	e, err := New(ctx, c, Deps{})
	if err != nil {
		return nil, err
	}
	e.lookupStub = map[string]map[string]any{}
	for name, n := range tc.Lookups {
		r, _ := nodeRow(&n)
		e.lookupStub[name] = r.vals
	}
	var events []Event
	at := testEpoch
	var tx *cdc.Transaction
	n := 0
	flush := func() error {
		if tx == nil {
			return nil
		}
		evs, err := e.Process(ctx, tx)
		events = append(events, evs...)
		tx = nil
		return err
	}
	lastTx := 0
	for _, tch := range tc.Changes {
		ch, err := tch.change()
		if err != nil {
			return nil, err
		}
		if !tch.At.IsZero() {
			at = tch.At.UTC()
		}
		if tx == nil || tch.Tx == 0 || tch.Tx != lastTx {
			if err := flush(); err != nil {
				return nil, err
			}
			n++
			gtid := fmt.Sprintf("0-1-%d", n)
			tx = &cdc.Transaction{ID: gtid, GTID: gtid, Timestamp: at,
				Checkpoint: cdc.Checkpoint{Flavor: "mariadb", File: "test-bin.000001", Pos: uint32(n), GTIDSet: gtid, Timestamp: at}}
		}
		lastTx = tch.Tx
		ch.Tx, ch.GTID, ch.Seq, ch.Timestamp = tx.ID, tx.GTID, len(tx.Changes), tx.Timestamp
		ch.ID = fmt.Sprintf("%s:%d", tx.ID, ch.Seq)
		ch.File, ch.Pos = "test-bin.000001", uint32(n)
		tx.Changes = append(tx.Changes, *ch)
	}
	if err := flush(); err != nil {
		return nil, err
	}
	idle := tc.FlushAt
	if idle.IsZero() {
		idle = at.Add(100 * 365 * 24 * time.Hour)
	}
	evs, err := e.Flush(ctx, idle)
	return append(events, evs...), err
}

// compareEvents returns the differences between expected and got.
func compareEvents(want []TestExpect, got []Event) []string {
	var fails []string
	for i := 0; i < max(len(want), len(got)); i++ {
		if i >= len(want) {
			fails = append(fails, fmt.Sprintf("unexpected event %d: rule %s, event %s, key %s, body:\n%s", i+1, got[i].Rule, got[i].Name, got[i].Key, indent(prettyJSON(got[i].Body))))
			continue
		}
		w := want[i]
		if i >= len(got) {
			fails = append(fails, fmt.Sprintf("missing event %d: rule %s%s", i+1, w.Rule, ifSet(", event ", w.Event)))
			continue
		}
		g := got[i]
		where := fmt.Sprintf("event %d (rule %s)", i+1, g.Rule)
		check := func(field, want, got string) {
			if want != "" && want != got {
				fails = append(fails, fmt.Sprintf("%s: %s is %q, want %q", where, field, got, want))
			}
		}
		check("rule", w.Rule, g.Rule)
		check("event", w.Event, g.Name)
		check("id", w.ID, g.ID)
		check("key", w.Key, g.Key)
		if w.Webhooks != nil && !reflect.DeepEqual(w.Webhooks, g.Webhooks) {
			fails = append(fails, fmt.Sprintf("%s: webhooks are %v, want %v", where, g.Webhooks, w.Webhooks))
		}
		gotBody := normalJSON(g.Body)
		if w.Body.Kind != 0 {
			wantBody, err := nodeJSON(&w.Body)
			if err != nil {
				fails = append(fails, fmt.Sprintf("%s: expected body: %v", where, err))
			} else if !reflect.DeepEqual(wantBody, gotBody) {
				fails = append(fails, fmt.Sprintf("%s: body differs (- want, + got):\n%s", where,
					indent(lineDiff(prettyJSON(wantBody), prettyJSON(gotBody)))))
			}
		}
		if w.Fields.Kind != 0 {
			wantFields, err := nodeJSON(&w.Fields)
			wm, ok := wantFields.(map[string]any)
			gm, _ := gotBody.(map[string]any)
			switch {
			case err != nil:
				fails = append(fails, fmt.Sprintf("%s: expected fields: %v", where, err))
			case !ok:
				fails = append(fails, fmt.Sprintf("%s: fields must be a mapping", where))
			default:
				keys := make([]string, 0, len(wm))
				for k := range wm {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				for _, k := range keys {
					gv, present := gm[k]
					if !present {
						fails = append(fails, fmt.Sprintf("%s: body has no field %q", where, k))
					} else if !reflect.DeepEqual(wm[k], gv) {
						fails = append(fails, fmt.Sprintf("%s: field %s is %s, want %s", where, k, compactJSON(gv), compactJSON(wm[k])))
					}
				}
			}
		}
	}
	return fails
}

func ifSet(prefix, s string) string {
	if s == "" {
		return ""
	}
	return prefix + s
}

// normalJSON round-trips v through JSON so values compare as JSON does.
func normalJSON(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("<%v>", err)
	}
	var out any
	_ = json.Unmarshal(b, &out)
	return out
}

func nodeJSON(n *yaml.Node) (any, error) {
	var v any
	if err := n.Decode(&v); err != nil {
		return nil, err
	}
	return normalJSON(v), nil
}

func prettyJSON(v any) string {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func compactJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}

// lineDiff is a line diff (longest common subsequence), "- " for lines
// only in a, "+ " for lines only in b, "  " for common lines.
func lineDiff(a, b string) string {
	x, y := strings.Split(a, "\n"), strings.Split(b, "\n")
	lcs := make([][]int, len(x)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(y)+1)
	}
	for i := len(x) - 1; i >= 0; i-- {
		for j := len(y) - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out strings.Builder
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		switch {
		case i < len(x) && j < len(y) && x[i] == y[j]:
			fmt.Fprintf(&out, "  %s\n", x[i])
			i++
			j++
		case i < len(x) && (j == len(y) || lcs[i+1][j] >= lcs[i][j+1]):
			fmt.Fprintf(&out, "- %s\n", x[i])
			i++
		default:
			fmt.Fprintf(&out, "+ %s\n", y[j])
			j++
		}
	}
	return out.String()
}
