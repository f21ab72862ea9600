package writeback

import (
	"container/list"
	"encoding/json"
	"fmt"
	"math/big"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rowhook/rowhook/cdc"
)

// The recent-writes guard is the last line of defence against a writeback
// firing its own rule again, whatever the mode: when neither an annotation
// nor a marker row identifies rowhook's write (annotations turned off on a
// running server, a write that raced a mode switch), the update still
// repeats exactly the values a writeback just wrote to that row.
//
// The window is measured on rowhook's own clock from the moment of the
// write: it bounds how long rowhook waits for its write to come back through
// the binlog (replication and reading delay), which is a delay on this
// host. The write's binlog commit time is the primary's clock and is not
// known when the write is made, so it cannot anchor the window.
const (
	// OwnWriteWindow is how long a writeback's values are remembered.
	OwnWriteWindow = 10 * time.Minute
	// ownWriteMax bounds the memory: the oldest writes are forgotten first.
	ownWriteMax = 50000
)

// recentWrites remembers, per row, the canonical values of the columns each
// recent writeback set. Each write is matched at most once: a writeback
// produces at most one row change.
type recentWrites struct {
	mu     sync.Mutex
	now    func() time.Time
	window time.Duration
	max    int
	order  *list.List // of *recentWrite, oldest first
	rows   map[string][]*list.Element
}

type recentWrite struct {
	row  string
	at   time.Time
	cols map[string]string // lower-case column name → canonical value
}

func newRecentWrites(now func() time.Time) *recentWrites {
	if now == nil {
		now = time.Now
	}
	return &recentWrites{now: now, window: OwnWriteWindow, max: ownWriteMax, order: list.New(), rows: map[string][]*list.Element{}}
}

// add remembers that the row identified by row was just written with cols.
func (r *recentWrites) add(row string, cols map[string]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	r.expireLocked(now)
	for r.order.Len() >= r.max {
		r.removeLocked(r.order.Front())
	}
	e := r.order.PushBack(&recentWrite{row: row, at: now, cols: cols})
	r.rows[row] = append(r.rows[row], e)
}

// match finds the oldest write to row that ok accepts, forgets it and
// reports true; false when none does.
func (r *recentWrites) match(row string, ok func(cols map[string]string) bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expireLocked(r.now())
	for _, e := range r.rows[row] {
		if ok(e.Value.(*recentWrite).cols) {
			r.removeLocked(e)
			return true
		}
	}
	return false
}

// forget drops every write to row (the row was deleted).
func (r *recentWrites) forget(row string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.rows[row] {
		r.order.Remove(e)
	}
	delete(r.rows, row)
}

func (r *recentWrites) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.order.Len()
}

func (r *recentWrites) expireLocked(now time.Time) {
	for e := r.order.Front(); e != nil; e = r.order.Front() {
		if now.Sub(e.Value.(*recentWrite).at) < r.window {
			return
		}
		r.removeLocked(e)
	}
}

func (r *recentWrites) removeLocked(e *list.Element) {
	w := e.Value.(*recentWrite)
	r.order.Remove(e)
	es := r.rows[w.row]
	for i, x := range es {
		if x == e {
			es = append(es[:i], es[i+1:]...)
			break
		}
	}
	if len(es) == 0 {
		delete(r.rows, w.row)
	} else {
		r.rows[w.row] = es
	}
}

// tableGuard is what the guard knows about one written table.
type tableGuard struct {
	// keys are the key column sets the table's mappings address rows by.
	keys [][]*column
	// columns by lower-case name, to read change values in their type.
	columns map[string]*column
	// auto are columns the server changes by itself when a row is updated
	// (ON UPDATE CURRENT_TIMESTAMP, generated columns): they may change
	// beside rowhook's own columns.
	auto map[string]bool
}

// rowKey is the guard's identity of a row: table, key columns, canonical
// key values. ok is false when img lacks a key column.
func rowKey(table string, keys []*column, img map[string]any) (string, bool) {
	var b strings.Builder
	b.WriteString(table)
	for _, k := range keys {
		v, ok := lookup(img, k.Name)
		if !ok {
			return "", false
		}
		b.WriteByte(0)
		b.WriteString(strings.ToLower(k.Name))
		b.WriteByte('=')
		b.WriteString(canonical(k, v))
	}
	return b.String(), true
}

// lookup finds a column in a row image, names compared case-insensitively
// as the server does.
func lookup(img map[string]any, name string) (any, bool) {
	if v, ok := img[name]; ok {
		return v, true
	}
	for k, v := range img {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return nil, false
}

// canonical renders a value of column c so that the value a writeback
// bound and the value the binlog shows for it compare equal: the cdc reader
// and writeback's conversion spell numbers, dates and sets differently
// (int64 against a DECIMAL string, "2024-01-02T03:04:05Z" against
// "2024-01-02 03:04:05", trailing zeros, SET member order).
func canonical(c *column, v any) string {
	if v == nil {
		return "\x00null"
	}
	switch c.DataType {
	case "tinyint", "smallint", "mediumint", "int", "integer", "bigint", "year", "bit":
		return canonicalNumber(v, true)
	case "decimal", "numeric":
		return canonicalNumber(v, false)
	case "float", "double", "real":
		f, err := strconv.ParseFloat(strings.TrimSpace(text(v)), 64)
		if err != nil {
			return text(v)
		}
		if c.DataType == "float" {
			return strconv.FormatFloat(float64(float32(f)), 'g', -1, 32)
		}
		return strconv.FormatFloat(f, 'g', -1, 64)
	case "date":
		s := text(v)
		if len(s) > 10 {
			s = s[:10]
		}
		return s
	case "datetime", "timestamp":
		if t, ok := v.(time.Time); ok {
			return t.UTC().Format("2006-01-02 15:04:05.999999")
		}
		s := strings.TrimSuffix(strings.Replace(text(v), "T", " ", 1), "Z")
		if t, err := time.Parse("2006-01-02 15:04:05.999999999", s); err == nil {
			return t.Format("2006-01-02 15:04:05.999999")
		}
		return s
	case "time":
		s := text(v)
		if strings.Contains(s, ".") {
			s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
		}
		return s
	case "char":
		return strings.TrimRight(text(v), " ")
	case "binary":
		return strings.TrimRight(text(v), "\x00")
	case "set":
		parts := strings.Split(text(v), ",")
		sort.Strings(parts)
		return strings.Join(parts, ",")
	case "json":
		s := text(v)
		var doc any
		if json.Unmarshal([]byte(s), &doc) == nil {
			if b, err := json.Marshal(doc); err == nil {
				return string(b)
			}
		}
		return s
	}
	return text(v)
}

// canonicalNumber is an exact decimal rendering: no sign on zero, no
// leading zeros, no trailing fractional zeros.
func canonicalNumber(v any, integer bool) string {
	var s string
	switch x := v.(type) {
	case float32:
		s = strconv.FormatFloat(float64(x), 'f', -1, 32)
	case float64:
		s = strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		s = "0"
		if x {
			s = "1"
		}
	default:
		s = strings.TrimSpace(text(v))
	}
	if integer {
		if n, ok := new(big.Int).SetString(s, 10); ok {
			return n.String()
		}
	}
	if !decimalRE.MatchString(s) {
		return s
	}
	neg := strings.HasPrefix(s, "-")
	digits := strings.TrimLeft(s, "+-")
	intPart, frac, _ := strings.Cut(digits, ".")
	intPart = strings.TrimLeft(intPart, "0")
	frac = strings.TrimRight(frac, "0")
	if intPart == "" {
		intPart = "0"
	}
	out := intPart
	if frac != "" {
		out += "." + frac
	}
	if neg && out != "0" {
		out = "-" + out
	}
	return out
}

// text renders any value the cdc reader or a conversion produces as text.
func text(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case cdc.Decimal:
		return string(x)
	case cdc.JSON:
		return string(x)
	case cdc.Bytes:
		return string(x)
	case []byte:
		return string(x)
	}
	return fmt.Sprint(v)
}

// isEcho reports whether update c changes only columns the write set (and
// columns the server maintains itself), at least one of them, each to the
// value the write bound.
func (g *tableGuard) isEcho(c *cdc.Change, cols map[string]string) bool {
	written := 0
	for _, name := range c.Changed {
		lname := strings.ToLower(name)
		want, ok := cols[lname]
		if !ok {
			if g.auto[lname] {
				continue
			}
			return false
		}
		col := g.columns[lname]
		if col == nil {
			return false
		}
		v, _ := lookup(c.After, name)
		if canonical(col, v) != want {
			return false
		}
		written++
	}
	return written > 0
}

// Own reports whether c is rowhook's own write and must fire nothing: its
// statement annotation carries the Tag (IsOwnChange), or, whatever the
// mode, it is an update that sets exactly values one of this Writer's
// writebacks wrote to that row in the last OwnWriteWindow. Changes only
// the second test recognises are counted
// (rowhook_writeback_own_changes_skipped_total) and the first is logged:
// they mean annotations or markers are missing. Each writeback is
// recognised at most once, so a user who later sets the same value again
// fires the rule as usual. Own is the rules engine's Skip.
func (w *Writer) Own(c *cdc.Change) bool {
	tagged := IsOwnChange(c)
	echo := w.echo(c)
	if echo && !tagged {
		table := strings.ToLower(c.Schema + "." + c.Table)
		w.metrics.ownSkipped(table)
		if !w.echoLogged.Swap(true) {
			w.logger.Warn("an update repeating rowhook's own recent writeback came without its annotation or marker; not fired (logged once, counted in rowhook_writeback_own_changes_skipped_total)",
				"table", table, "tx", c.Tx, "mode", string(w.Mode()))
		}
	}
	return tagged || echo
}

// OwnTransaction reports whether tx is one of rowhook's marker-mode
// writebacks: it writes a row of the marker table (the one the Writer uses,
// or would switch to). Its changes are taken off the recent-writes guard.
func (w *Writer) OwnTransaction(tx *cdc.Transaction) bool {
	if w.markerID == "" || !IsOwnTransaction(tx, w.markerID) {
		return false
	}
	for i := range tx.Changes {
		w.echo(&tx.Changes[i])
	}
	return true
}

// MarkerName is the marker table (schema.table) the Writer uses in marker
// mode or would switch to, "" when the configuration names none. The binlog
// reader must read it in every mode, since the Writer may switch at run time.
func (w *Writer) MarkerName() string { return w.markerID }

// echo matches c against the recent writes and forgets the one it repeats;
// a deleted row's writes are forgotten too.
func (w *Writer) echo(c *cdc.Change) bool {
	if c == nil || w.own == nil || (c.Op != cdc.OpUpdate && c.Op != cdc.OpDelete) {
		return false
	}
	// Every change of the binlog passes here: look up without building
	// strings when the names are lower case already (strings.ToLower
	// returns them as they are).
	g := w.guards[strings.ToLower(c.Schema)][strings.ToLower(c.Table)]
	if g == nil {
		return false
	}
	table := strings.ToLower(c.Schema + "." + c.Table)
	if c.Op == cdc.OpDelete {
		for _, keys := range g.keys {
			if row, ok := rowKey(table, keys, c.Before); ok {
				w.own.forget(row)
			}
		}
		return false
	}
	for _, keys := range g.keys {
		row, ok := rowKey(table, keys, c.After)
		if !ok {
			continue
		}
		if w.own.match(row, func(cols map[string]string) bool { return g.isEcho(c, cols) }) {
			return true
		}
	}
	return false
}
