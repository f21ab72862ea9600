package pipeline

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
)

// Loading a config runs without rowhook's default soft memory limit (the
// GC would otherwise run back to back on a large file's transient heap),
// and the limit is back afterwards; a limit set with GOMEMLIMIT stays.
func TestUntilDone_MemoryLimit(t *testing.T) {
	old := debug.SetMemoryLimit(DefaultMemoryLimit)
	defer debug.SetMemoryLimit(old)
	for _, tt := range []struct {
		env    string
		during int64
	}{{"", math.MaxInt64}, {"40MiB", DefaultMemoryLimit}} {
		t.Setenv("GOMEMLIMIT", tt.env)
		var during int64
		_, _, err := UntilDone(context.Background(), "config", func() (int, int, error) {
			during = debug.SetMemoryLimit(-1)
			return 0, 0, nil
		})
		if err != nil || during != tt.during {
			t.Errorf("GOMEMLIMIT=%q: limit while loading %d, want %d (%v)", tt.env, during, tt.during, err)
		}
		if after := debug.SetMemoryLimit(-1); after != DefaultMemoryLimit {
			t.Errorf("GOMEMLIMIT=%q: limit after loading %d", tt.env, after)
		}
	}
	// Overlapping loads: the limit is back once both are done, whatever
	// order they end in.
	t.Setenv("GOMEMLIMIT", "")
	first, second := liftMemoryLimit(), liftMemoryLimit()
	first()
	if during := debug.SetMemoryLimit(-1); during != math.MaxInt64 {
		t.Errorf("limit with one load still running %d", during)
	}
	second()
	first() // a second call changes nothing
	if after := debug.SetMemoryLimit(-1); after != DefaultMemoryLimit {
		t.Errorf("limit after overlapping loads %d", after)
	}
}

// ruleWritebackConfig has three rules: a without writeback, b and c with
// a writeback block each (%s and %s, indented under writeback:).
const ruleWritebackConfig = `source:
  dsn: mysql://u:p@127.0.0.1:3306/
webhooks:
  erp:
    url: https://erp.example/hook
rules:
  - name: a
    table: crm.deals
    event: RowChanged
    webhooks: [erp]
  - name: b
    table: crm.deals
    event: RowChanged
    webhooks: [erp]
    writeback:
%s
  - name: c
    table: crm.deals
    event: RowChanged
    webhooks: [erp]
    writeback:
%s
`

// The rules' writeback blocks are decoded by the pipeline (rules carries
// them as YAML): their errors keep the place and key path they had when
// rules decoded them, shape errors and validation errors alike, and a
// valid block reaches WritebackMappings under its rule's name.
func TestLoad_RuleWriteback(t *testing.T) {
	good := "      table: crm.deals\n      key: { id: row.id }\n      set: { x: response.json.id }"
	for _, tc := range []struct {
		name, b, c string
		want       []string
	}{
		{"unknown key and wrong shapes", "      tabel: crm.deals\n      key: { id: row.id }\n      set: { x: response.json.id }",
			"      table: crm.deals\n      key: [1, 2]\n      set: { x: response.json.id }\n      when: { a: 1 }",
			[]string{
				"rowhook.yaml:16:7: rules[1].writeback.tabel: unknown key (did you mean table?)",
				"rowhook.yaml:25:12: rules[2].writeback.key: want a mapping, got a list",
				"rowhook.yaml:27:13: rules[2].writeback.when: want a string, got a mapping",
			}},
		{"a bad expression", good, "      table: crm.deals\n      key: { id: row.id }\n      set: { x: 'response.json.id +' }",
			[]string{"rowhook.yaml:26:35: rules[2].writeback.set.x: unexpected token EOF"}},
		{"valid", good, good, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "rowhook.yaml")
			if err := os.WriteFile(path, []byte(fmt.Sprintf(ruleWritebackConfig, tc.b, tc.c)), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, _, err := Load(context.Background(), path)
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				m := WritebackMappings(cfg)
				if len(m) != 2 || m["b"] == nil || m["c"] == nil || m["b"].Table != "crm.deals" {
					t.Errorf("WritebackMappings = %v, want b and c", m)
				}
				return
			}
			if err == nil {
				t.Fatal("loaded")
			}
			got := strings.Split(err.Error(), "\n")
			for i := range got {
				got[i] = strings.TrimPrefix(got[i], filepath.Dir(path)+"/")
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("errors\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}
