// Package studio is the rule studio: a bounded in-memory ring of recent row
// changes, filled by the running reader (or from binlog files offline), and
// an evaluator that runs a rule under edit over it, with the same compiler
// and engine as rowhook check and rowhook replay, showing what would be
// sent without sending, enqueueing or writing anything.
package studio

import (
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"sync"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/internal/yamlconf"
)

// Masked replaces the value of a redacted column.
const Masked = "***"

// Config is the `studio:` section.
type Config struct {
	// Enabled keeps recent changes in memory and serves POST /studio/try.
	// Off by default: the ring holds CRM data.
	Enabled bool `yaml:"enabled"`
	// Size is how many recent changes are kept per table.
	Size int `yaml:"size"`
	// Tables are "schema.table" or "table" globs; empty means every table
	// the reader includes.
	Tables []string `yaml:"tables"`
	// Redact are column name globs (case-insensitive, e.g. "*password*")
	// whose values are replaced by "***" before a change is kept.
	Redact []string `yaml:"redact"`
	// MaxBytes bounds the ring's estimated memory across all tables.
	MaxBytes int64 `yaml:"max_bytes"`
}

// DefaultConfig is the section's defaults: off, 200 changes per table,
// 16 MB, passwords and tokens redacted.
func DefaultConfig() Config {
	return Config{Size: 200, MaxBytes: 16 << 20,
		Redact: []string{"*password*", "*passwd*", "*secret*", "*token*", "*api_key*", "*accesskey*"}}
}

// Validate checks the section; errors are yamlconf path errors.
func (c Config) Validate() error {
	if !c.Enabled {
		return nil
	}
	var errs []error
	if c.Size < 1 || c.Size > 100000 {
		errs = append(errs, yamlconf.Errf("studio.size", "must be between 1 and 100000 changes per table, got %d", c.Size))
	}
	if c.MaxBytes < 64<<10 {
		errs = append(errs, yamlconf.Errf("studio.max_bytes", "must be at least 65536 (64 KB), got %d", c.MaxBytes))
	}
	for i, t := range c.Tables {
		if _, err := path.Match(t, "x"); err != nil || t == "" || strings.Count(t, ".") > 1 {
			errs = append(errs, yamlconf.Errf(fmt.Sprintf("studio.tables[%d]", i), "bad table pattern %q: use schema.table or table, globs allowed", t))
		}
	}
	for i, r := range c.Redact {
		if _, err := path.Match(r, "x"); err != nil || r == "" {
			errs = append(errs, yamlconf.Errf(fmt.Sprintf("studio.redact[%d]", i), "bad column pattern %q", r))
		}
	}
	return errors.Join(errs...)
}

// Ring keeps the most recent changes per table, bounded by count per table
// and by estimated bytes overall. Safe for concurrent use.
type Ring struct {
	cfg Config

	mu      sync.Mutex
	tables  map[string]*tableRing // "schema.table"
	bytes   int64
	seq     uint64
	dropped uint64
}

type tableRing struct {
	entries []entry // oldest first
}

type entry struct {
	seq  uint64
	size int64
	ch   cdc.Change
}

// NewRing returns an empty ring for cfg (Size and MaxBytes must be set).
func NewRing(cfg Config) *Ring {
	return &Ring{cfg: cfg, tables: map[string]*tableRing{}}
}

// Add keeps tx's changes of the configured tables, redacted. A change
// larger than the whole budget is not kept (counted in Dropped).
func (r *Ring) Add(tx *cdc.Transaction) {
	for i := range tx.Changes {
		c := &tx.Changes[i]
		if !r.wants(c.Schema, c.Table) {
			continue
		}
		kept := r.copyRedacted(c)
		size := sizeOf(&kept)
		r.mu.Lock()
		if size > r.cfg.MaxBytes {
			r.dropped++
			r.mu.Unlock()
			continue
		}
		r.seq++
		key := c.Schema + "." + c.Table
		tr := r.tables[key]
		if tr == nil {
			tr = &tableRing{}
			r.tables[key] = tr
		}
		tr.entries = append(tr.entries, entry{seq: r.seq, size: size, ch: kept})
		r.bytes += size
		for len(tr.entries) > r.cfg.Size {
			r.bytes -= tr.entries[0].size
			tr.entries[0] = entry{}
			tr.entries = tr.entries[1:]
		}
		for r.bytes > r.cfg.MaxBytes {
			r.evictOldest()
		}
		r.mu.Unlock()
	}
}

// evictOldest drops the oldest change of any table.
func (r *Ring) evictOldest() {
	var oldest *tableRing
	var key string
	for k, tr := range r.tables {
		if len(tr.entries) > 0 && (oldest == nil || tr.entries[0].seq < oldest.entries[0].seq) {
			oldest, key = tr, k
		}
	}
	if oldest == nil {
		r.bytes = 0
		return
	}
	r.bytes -= oldest.entries[0].size
	oldest.entries[0] = entry{}
	oldest.entries = oldest.entries[1:]
	if len(oldest.entries) == 0 {
		delete(r.tables, key)
	}
}

func (r *Ring) wants(schema, table string) bool {
	if len(r.cfg.Tables) == 0 {
		return true
	}
	for _, p := range r.cfg.Tables {
		name := table
		if strings.Contains(p, ".") {
			name = schema + "." + table
		}
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

// Redacted reports whether column's values are masked.
func (r *Ring) Redacted(column string) bool {
	lc := strings.ToLower(column)
	for _, p := range r.cfg.Redact {
		if ok, _ := path.Match(strings.ToLower(p), lc); ok {
			return true
		}
	}
	return false
}

func (r *Ring) copyRedacted(c *cdc.Change) cdc.Change {
	out := *c
	out.Before, out.After, out.PK = r.row(c.Before), r.row(c.After), r.row(c.PK)
	out.Changed = append([]string(nil), c.Changed...)
	out.Columns = append([]string(nil), c.Columns...)
	out.PKColumns = append([]string(nil), c.PKColumns...)
	return out
}

func (r *Ring) row(in cdc.Row) cdc.Row {
	if in == nil {
		return nil
	}
	out := make(cdc.Row, len(in))
	for k, v := range in {
		if r.Redacted(k) {
			out[k] = Masked
			continue
		}
		if b, ok := v.([]byte); ok {
			v = append([]byte(nil), b...)
		}
		out[k] = v
	}
	return out
}

// sizeOf estimates the memory a kept change holds.
func sizeOf(c *cdc.Change) int64 {
	n := int64(512 + len(c.ID) + len(c.Schema) + len(c.Table) + len(c.GTID) + len(c.File) + len(c.Tx) + len(c.Annotation))
	for _, row := range []cdc.Row{c.Before, c.After, c.PK} {
		for k, v := range row {
			n += int64(48 + len(k) + valueSize(v))
		}
	}
	for _, s := range [][]string{c.Changed, c.Columns, c.PKColumns} {
		for _, x := range s {
			n += int64(16 + len(x))
		}
	}
	return n
}

func valueSize(v any) int {
	switch x := v.(type) {
	case string:
		return len(x)
	case []byte:
		return len(x)
	case fmt.Stringer:
		return 32 + len(x.String())
	}
	return 16
}

// Bytes is the ring's estimated size.
func (r *Ring) Bytes() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bytes
}

// Dropped counts changes too large to keep.
func (r *Ring) Dropped() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dropped
}

// TableInfo describes one table in the ring.
type TableInfo struct {
	Table   string   `json:"table"`
	Changes int      `json:"changes"`
	Columns []string `json:"columns"`
}

// Tables lists the tables with kept changes and their latest column list.
func (r *Ring) Tables() []TableInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]TableInfo, 0, len(r.tables))
	for k, tr := range r.tables {
		ti := TableInfo{Table: k, Changes: len(tr.entries)}
		if n := len(tr.entries); n > 0 {
			ti.Columns = append([]string(nil), tr.entries[n-1].ch.Columns...)
		}
		out = append(out, ti)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Table < out[j].Table })
	return out
}

// Changes returns copies of the kept changes, oldest first, in binlog
// order; with match non-nil only those of tables it accepts.
func (r *Ring) Changes(match func(schema, table string) bool) []cdc.Change {
	r.mu.Lock()
	var es []entry
	for _, tr := range r.tables {
		for _, e := range tr.entries {
			if match == nil || match(e.ch.Schema, e.ch.Table) {
				es = append(es, e)
			}
		}
	}
	r.mu.Unlock()
	sort.Slice(es, func(i, j int) bool { return es[i].seq < es[j].seq })
	out := make([]cdc.Change, len(es))
	for i, e := range es {
		out[i] = e.ch // rows are never mutated once kept
	}
	return out
}

// ColumnsFor returns the union of the latest column lists of the kept
// tables that pattern ("table" or "schema.table", globs allowed) names; nil
// when none is kept.
func (r *Ring) ColumnsFor(pattern string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	seen := map[string]bool{}
	for key, tr := range r.tables {
		name := key
		if !strings.Contains(pattern, ".") {
			name = key[strings.IndexByte(key, '.')+1:]
		}
		if ok, _ := path.Match(pattern, name); !ok || len(tr.entries) == 0 {
			continue
		}
		for _, c := range tr.entries[len(tr.entries)-1].ch.Columns {
			if !seen[c] {
				seen[c] = true
				out = append(out, c)
			}
		}
	}
	return out
}
