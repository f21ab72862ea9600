package rules

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/rowhook/rowhook/cdc"
)

// env is what conditions and YAML body fields see. Functions that need the
// change (changed, changedTo, …) or the event time (isToday, daysAgo, …)
// are fields bound to an evalCtx once, so evaluating costs no allocation.
type env struct {
	Row    map[string]any `expr:"row"`
	Old    map[string]any `expr:"old"`
	Op     string         `expr:"op"`
	Table  string         `expr:"table"`
	Schema string         `expr:"schema"`
	// Lookup is a YAML body's lookup result (empty in conditions).
	Lookup map[string]any `expr:"lookup"`
	// Now is the event time: the change's binlog commit time in the
	// configured zone. Date helpers count from it, so a replay gives the
	// same answers as the live run.
	Now time.Time `expr:"now"`

	// Signatures are among expr's typed fast calls (no reflection).
	Changed     func(col string) bool `expr:"changed"`
	ChangedTo   func(col, v any) bool `expr:"changedTo"`
	ChangedFrom func(col, v any) bool `expr:"changedFrom"`

	IsToday             func(d any) bool    `expr:"isToday"`
	IsTomorrow          func(d any) bool    `expr:"isTomorrow"`
	IsYesterday         func(d any) bool    `expr:"isYesterday"`
	DaysSince           func(d any) float64 `expr:"daysSince"`
	DaysAgo             func(d, n any) bool `expr:"daysAgo"`
	DaysLater           func(d, n any) bool `expr:"daysLater"`
	LessThanDaysAgo     func(d, n any) bool `expr:"lessThanDaysAgo"`
	MoreThanDaysAgo     func(d, n any) bool `expr:"moreThanDaysAgo"`
	InLessThanDays      func(d, n any) bool `expr:"inLessThanDays"`
	InMoreThanDays      func(d, n any) bool `expr:"inMoreThanDays"`
	LessThanHoursBefore func(d, n any) bool `expr:"lessThanHoursBefore"`
	LessThanHoursLater  func(d, n any) bool `expr:"lessThanHoursLater"`
	MoreThanHoursBefore func(d, n any) bool `expr:"moreThanHoursBefore"`
	MoreThanHoursLater  func(d, n any) bool `expr:"moreThanHoursLater"`

	// Col is row.x / old.x in conditions (the compiler's rewrite): a
	// field of this signature is a typed call, which, unlike a function
	// registered with expr.Function, takes no argument slice per run.
	Col func(m, k any) any `expr:"_col"`
}

// evalCtx is the change an env's functions look at. One per goroutine.
type evalCtx struct {
	ch  *cdc.Change
	now time.Time
	loc *time.Location
}

func newEnv(c *evalCtx) *env {
	return &env{
		Changed:             c.changed,
		ChangedTo:           c.changedTo,
		ChangedFrom:         c.changedFrom,
		IsToday:             func(d any) bool { return c.dayOffset(d) == 0 },
		IsTomorrow:          func(d any) bool { return c.dayOffset(d) == 1 },
		IsYesterday:         func(d any) bool { return c.dayOffset(d) == -1 },
		DaysSince:           c.daysSince,
		DaysAgo:             func(d, n any) bool { o, k := c.days(d, n); return o != noDate && o == -k },
		DaysLater:           func(d, n any) bool { o, k := c.days(d, n); return o != noDate && o == k },
		LessThanDaysAgo:     func(d, n any) bool { o, k := c.days(d, n); return o != noDate && o <= 0 && o >= -k },
		MoreThanDaysAgo:     func(d, n any) bool { o, k := c.days(d, n); return o != noDate && o <= -k },
		InLessThanDays:      func(d, n any) bool { o, k := c.days(d, n); return o != noDate && o >= 0 && o <= k },
		InMoreThanDays:      func(d, n any) bool { o, k := c.days(d, n); return o != noDate && o >= k },
		LessThanHoursBefore: func(d, n any) bool { h, ok := c.hours(d); return ok && h <= 0 && h >= -num(n) },
		LessThanHoursLater:  func(d, n any) bool { h, ok := c.hours(d); return ok && h >= 0 && h <= num(n) },
		MoreThanHoursBefore: func(d, n any) bool { h, ok := c.hours(d); return ok && h <= -num(n) },
		MoreThanHoursLater:  func(d, n any) bool { h, ok := c.hours(d); return ok && h >= num(n) },
		Col:                 colValue,
	}
}

// bind points e at the change (conditions: Row is the rule's image).
func (e *env) bind(c *evalCtx, ch *cdc.Change, loc *time.Location) {
	c.ch = ch
	c.loc = loc
	c.now = ch.Timestamp.In(loc)
	e.Row = ch.Image()
	e.Old = ch.Before
	if e.Old == nil {
		e.Old = emptyRow
	}
	if e.Row == nil {
		e.Row = emptyRow
	}
	e.Op = string(ch.Op)
	e.Table = ch.Table
	e.Schema = ch.Schema
	e.Now = c.now
	e.Lookup = emptyRow
}

var emptyRow = map[string]any{}

// days returns dayOffset(d) and n as a whole number of days (noDate when
// n is not a number).
func (c *evalCtx) days(d, n any) (int, int) {
	k := num(n)
	if math.IsNaN(k) {
		return noDate, 0
	}
	return c.dayOffset(d), int(k)
}

func (c *evalCtx) changed(col string) bool {
	switch c.ch.Op {
	case cdc.OpInsert:
		// Vtiger's "has changed" is true for a new record's set fields.
		return !isEmpty(c.ch.After[col])
	case cdc.OpDelete:
		return false
	}
	for _, x := range c.ch.Changed {
		if x == col {
			return true
		}
	}
	return false
}

func (c *evalCtx) changedTo(col, v any) bool {
	name, ok := col.(string)
	if !ok || c.ch.Op == cdc.OpDelete {
		return false
	}
	return c.changed(name) && looseEqual(c.ch.After[name], v)
}

func (c *evalCtx) changedFrom(col, v any) bool {
	name, ok := col.(string)
	if !ok || c.ch.Op != cdc.OpUpdate {
		return false
	}
	return c.changed(name) && looseEqual(c.ch.Before[name], v)
}

// noDate is dayOffset's answer for a value that is not a date.
const noDate = math.MinInt32

// dayOffset is the number of calendar days from the event's day to d's day
// (negative: in the past), or noDate.
func (c *evalCtx) dayOffset(d any) int {
	t, ok := toTime(d, c.loc)
	if !ok {
		return noDate
	}
	y1, m1, d1 := c.now.Date()
	y2, m2, d2 := t.Date()
	a := time.Date(y1, m1, d1, 0, 0, 0, 0, time.UTC)
	b := time.Date(y2, m2, d2, 0, 0, 0, 0, time.UTC)
	return int(b.Sub(a).Hours() / 24)
}

func (c *evalCtx) daysSince(d any) float64 {
	o := c.dayOffset(d)
	if o == noDate {
		return math.NaN()
	}
	return float64(-o)
}

func (c *evalCtx) hours(d any) (float64, bool) {
	t, ok := toTime(d, c.loc)
	if !ok {
		return 0, false
	}
	return t.Sub(c.now).Hours(), true
}

// Layouts of the date and time strings cdc produces (and users write).
var timeLayouts = []string{
	"2006-01-02 15:04:05.999999",
	"2006-01-02T15:04:05.999999Z07:00",
	"2006-01-02T15:04:05.999999",
	"2006-01-02",
	"2006-01-02 15:04",
}

// toTime reads a DATE / DATETIME / TIMESTAMP value. Strings without a zone
// are in loc (DATETIME holds wall time); cdc's TIMESTAMP strings end in Z.
func toTime(v any, loc *time.Location) (time.Time, bool) {
	switch x := v.(type) {
	case time.Time:
		return x.In(loc), true
	case string:
		if x == "" || strings.HasPrefix(x, "0000-00-00") {
			return time.Time{}, false
		}
		for _, l := range timeLayouts {
			if t, err := time.ParseInLocation(l, x, loc); err == nil {
				return t.In(loc), true
			}
		}
	}
	return time.Time{}, false
}

// isEmpty follows PHP's empty(), which Vtiger's "is empty" uses: NULL, "",
// "0", 0 and a zero date are empty.
func isEmpty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == "" || x == "0" || strings.HasPrefix(x, "0000-00-00")
	case cdc.Decimal:
		f, err := x.Float64()
		return err == nil && f == 0
	case cdc.Bytes:
		return len(x) == 0
	case cdc.JSON:
		return x == "" || x == "null"
	case bool:
		return !x
	case []any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	}
	if f, ok := toFloat(v); ok {
		return f == 0
	}
	return false
}

// toFloat converts numbers (and cdc.Decimal) to float64.
func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case int:
		return float64(x), true
	case int8:
		return float64(x), true
	case int16:
		return float64(x), true
	case int32:
		return float64(x), true
	case int64:
		return float64(x), true
	case uint:
		return float64(x), true
	case uint8:
		return float64(x), true
	case uint16:
		return float64(x), true
	case uint32:
		return float64(x), true
	case uint64:
		return float64(x), true
	case float32:
		return float64(x), true
	case float64:
		return x, true
	case cdc.Decimal:
		f, err := x.Float64()
		return f, err == nil
	}
	return 0, false
}

// looseEqual compares like Vtiger's ==: numbers numerically (a numeric
// string equals the number), everything else as text.
func looseEqual(a, b any) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	fa, aok := toFloat(a)
	fb, bok := toFloat(b)
	switch {
	case aok && bok:
		return fa == fb
	case aok:
		if s, ok := b.(string); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
			return err == nil && f == fa
		}
	case bok:
		if s, ok := a.(string); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
			return err == nil && f == fb
		}
	}
	return text(a) == text(b)
}

// text renders a value as Vtiger would show it.
func text(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case cdc.Decimal:
		return string(x)
	case cdc.Bytes:
		return string(x)
	case cdc.JSON:
		return string(x)
	case fmt.Stringer:
		return x.String()
	}
	return fmt.Sprint(v)
}

// exprValue is how a column value looks inside expr: DECIMAL as float64 so
// `row.amount > 1000` compares numerically, binary strings as text. It is
// applied by _col, which the compiler puts in place of every row.x / old.x.
func exprValue(v any) any {
	switch x := v.(type) {
	case cdc.Decimal:
		if f, err := x.Float64(); err == nil {
			return f
		}
		return string(x)
	case cdc.Bytes:
		return string(x)
	case cdc.JSON:
		return string(x)
	}
	return v
}

// Stateless helpers, registered with expr.Function.
var helpers = []struct {
	name  string
	fn    func(params ...any) (any, error)
	types []any
	doc   string
}{
	{"isEmpty", func(p ...any) (any, error) { return isEmpty(p[0]), nil }, []any{new(func(any) bool)},
		"NULL, empty string, \"0\", 0 or a zero date (Vtiger \"is empty\")"},
	{"isNotEmpty", func(p ...any) (any, error) { return !isEmpty(p[0]), nil }, []any{new(func(any) bool)},
		"the opposite of isEmpty (Vtiger \"is not empty\")"},
	{"before", func(p ...any) (any, error) { return cmpTime(p[0], p[1], func(c int) bool { return c < 0 }), nil }, []any{new(func(any, any) bool)},
		"date/time d is before ref (a date string or column); false when either is empty"},
	{"after", func(p ...any) (any, error) { return cmpTime(p[0], p[1], func(c int) bool { return c > 0 }), nil }, []any{new(func(any, any) bool)},
		"date/time d is after ref"},
	{"between", func(p ...any) (any, error) { return between(p[0], p[1], p[2]), nil }, []any{new(func(any, any, any) bool)},
		"from ≤ v ≤ to, for dates (compared as times) or numbers"},
	{"num", func(p ...any) (any, error) { return num(p[0]), nil }, []any{new(func(any) float64)},
		"the value as a number (numeric strings too); NaN when not a number"},
	{"str", func(p ...any) (any, error) { return text(p[0]), nil }, []any{new(func(any) string)},
		"the value as text (NULL is \"\")"},
	{"eq", func(p ...any) (any, error) { return looseEqual(p[0], p[1]), nil }, []any{new(func(any, any) bool)},
		"loose equality as in Vtiger: 5 equals \"5\" and 5.00"},
	{"date", func(p ...any) (any, error) { return dateOf(p[0]), nil }, []any{new(func(any) string)},
		"the calendar date part (\"2006-01-02\") of a DATE/DATETIME/TIMESTAMP value"},
}

// colValue is row.x in conditions: the column's value as exprValue
// converts it. A column name that is not a string (row[1]) fails the
// condition: the VM turns the panic into the run's error, as it does a
// function's error. So does a first argument that is not a row, which only
// a condition calling the internal _col itself can pass (with the helper
// registered by expr.Function, the type checker refused it).
func colValue(m, k any) any {
	r, ok := m.(map[string]any)
	if !ok && m != nil {
		panic(fmt.Errorf("_col reads a row, not %T", m))
	}
	name, ok := k.(string)
	if !ok {
		panic(fmt.Errorf("a column name must be a string, not %T", k))
	}
	return exprValue(r[name])
}

func num(v any) float64 {
	if f, ok := toFloat(v); ok {
		return f
	}
	if s, ok := v.(string); ok {
		if f, err := strconv.ParseFloat(strings.TrimSpace(s), 64); err == nil {
			return f
		}
	}
	if b, ok := v.(bool); ok && b {
		return 1
	}
	return math.NaN()
}

func dateOf(v any) string {
	t, ok := toTime(v, time.UTC)
	if !ok {
		return ""
	}
	return t.Format("2006-01-02")
}

func cmpTime(a, b any, ok func(int) bool) bool {
	ta, aok := toTime(a, time.UTC)
	tb, bok := toTime(b, time.UTC)
	if !aok || !bok {
		return false
	}
	return ok(ta.Compare(tb))
}

func between(v, from, to any) bool {
	if fv, ok := toFloat(v); ok {
		lo, lok := toFloat(from)
		hi, hok := toFloat(to)
		if lok && hok {
			return lo <= fv && fv <= hi
		}
	}
	t, ok := toTime(v, time.UTC)
	lo, lok := toTime(from, time.UTC)
	hi, hok := toTime(to, time.UTC)
	if !ok || !lok || !hok {
		return false
	}
	return !t.Before(lo) && !t.After(hi)
}

// HelperNames lists the functions conditions and body fields may call
// besides expr's own builtins.
func HelperNames() []string { return helperNames() }

// helperNames lists every function name conditions may call, for errors.
func helperNames() []string {
	var out []string
	t := reflect.TypeOf(env{})
	for i := 0; i < t.NumField(); i++ {
		if name := t.Field(i).Tag.Get("expr"); t.Field(i).Type.Kind() == reflect.Func && !strings.HasPrefix(name, "_") {
			out = append(out, name)
		}
	}
	for _, h := range helpers {
		if !strings.HasPrefix(h.name, "_") {
			out = append(out, h.name)
		}
	}
	return out
}
