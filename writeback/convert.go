package writeback

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rowhook/rowhook/cdc"
)

// column is one column of a mapped table, as information_schema describes it.
type column struct {
	Name       string
	DataType   string // lower case: int, varchar, decimal, …
	ColumnType string // as declared: int(10) unsigned, enum('a','b'), …
	Nullable   bool
	CharMax    int64 // characters, for char/varchar (0: not a character type)
	OctetMax   int64 // bytes
	Precision  int64
	Scale      int64
	DTPrec     int64 // fractional-second digits
	Charset    string
	Generated  bool
	OnUpdate   bool // ON UPDATE CURRENT_TIMESTAMP: the server sets it on every update
	Unsigned   bool
	Labels     []string // ENUM and SET members
}

// supported reports whether values can be written to the column, and why not.
func (c *column) supported() error {
	if c.Generated {
		return fmt.Errorf("column %s is generated (%s) and cannot be written", c.Name, c.ColumnType)
	}
	switch c.DataType {
	case "tinyint", "smallint", "mediumint", "int", "integer", "bigint",
		"decimal", "numeric", "float", "double", "real",
		"date", "datetime", "timestamp", "time", "year",
		"char", "varchar", "tinytext", "text", "mediumtext", "longtext",
		"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob",
		"enum", "set", "json", "bit":
		return nil
	}
	return fmt.Errorf("column %s has type %s, which writeback does not support", c.Name, c.ColumnType)
}

// ConversionError is a value that does not fit its column: never truncated,
// rounded or coerced, always refused. It is permanent.
type ConversionError struct {
	// Table is schema.table.
	Table string
	// Column is the column's name.
	Column string
	// Value is the value the expression produced.
	Value any
	// Type is the column's declared type (varchar(10), decimal(25,8), …).
	Type string
	// Reason says exactly what does not fit.
	Reason string
}

// Error says which column, which value and why.
func (e *ConversionError) Error() string {
	return fmt.Sprintf("writeback: %s.%s %s: value %s: %s", e.Table, e.Column, e.Type, describe(e.Value), e.Reason)
}

// Permanent reports true: the same value will never fit.
func (e *ConversionError) Permanent() bool { return true }

// describe renders a value for an error message, shortened when long.
func describe(v any) string {
	var s string
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		s = strconv.Quote(x)
	case cdc.Decimal:
		s = string(x)
	case []byte:
		s = fmt.Sprintf("%d bytes", len(x))
	default:
		s = fmt.Sprintf("%v (%T)", v, v)
	}
	if r := []rune(s); len(r) > 80 {
		s = string(r[:77]) + "…"
	}
	return s
}

// convert turns an expression's result into the value bound for the column.
func (c *column) convert(table string, v any) (any, error) {
	fail := func(format string, args ...any) error {
		return &ConversionError{Table: table, Column: c.Name, Value: v, Type: c.ColumnType, Reason: fmt.Sprintf(format, args...)}
	}
	if v == nil {
		if !c.Nullable {
			return nil, fail("the column is NOT NULL")
		}
		return nil, nil
	}
	switch c.DataType {
	case "tinyint", "smallint", "mediumint", "int", "integer", "bigint", "year", "bit":
		return c.convertInt(v, fail)
	case "decimal", "numeric":
		return c.convertDecimal(v, fail)
	case "float", "double", "real":
		return c.convertFloat(v, fail)
	case "date":
		t, err := parseTime(v, true)
		if err != nil {
			return nil, fail("%v", err)
		}
		if t.Hour() != 0 || t.Minute() != 0 || t.Second() != 0 || t.Nanosecond() != 0 {
			return nil, fail("a date column cannot hold the time of day %s", t.Format("15:04:05.999999"))
		}
		return t.Format("2006-01-02"), nil
	case "datetime", "timestamp":
		t, err := parseTime(v, false)
		if err != nil {
			return nil, fail("%v", err)
		}
		if t.Nanosecond()%1000 != 0 {
			return nil, fail("more precise than microseconds")
		}
		if ns := t.Nanosecond(); ns != 0 {
			digits := strings.TrimRight(fmt.Sprintf("%06d", ns/1000), "0")
			if int64(len(digits)) > c.DTPrec {
				return nil, fail("has %d fractional second digits; the column keeps %d", len(digits), c.DTPrec)
			}
		}
		if c.DataType == "timestamp" && !t.After(time.Unix(0, 0)) {
			return nil, fail("before the TIMESTAMP range, which starts at 1970-01-01 00:00:01 UTC")
		}
		return t.Format("2006-01-02 15:04:05.999999"), nil
	case "time":
		s, ok := v.(string)
		if !ok {
			return nil, fail("a TIME column takes a string like \"15:04:05\"")
		}
		if !timeRE.MatchString(s) {
			return nil, fail("not a time of the form [-]HHH:MM:SS[.ffffff]")
		}
		return s, nil
	case "char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set":
		s, err := toText(v)
		if err != nil {
			return nil, fail("%v", err)
		}
		if !utf8.ValidString(s) {
			return nil, fail("not valid UTF-8 text")
		}
		switch c.DataType {
		case "enum":
			for _, l := range c.Labels {
				if strings.EqualFold(l, s) {
					return l, nil
				}
			}
			return nil, fail("not one of %s", quoteList(c.Labels))
		case "set":
			if s == "" {
				return s, nil
			}
			var out []string
			for _, part := range strings.Split(s, ",") {
				found := ""
				for _, l := range c.Labels {
					if strings.EqualFold(l, part) {
						found = l
					}
				}
				if found == "" {
					return nil, fail("member %q is not one of %s", part, quoteList(c.Labels))
				}
				out = append(out, found)
			}
			return strings.Join(out, ","), nil
		}
		if c.Charset == "utf8mb3" || c.Charset == "utf8" {
			for i, r := range s {
				if r > 0xFFFF {
					return nil, fail("character %U at byte %d needs 4 bytes in UTF-8; the column's character set utf8mb3 cannot store it", r, i)
				}
			}
		}
		if c.Charset == "latin1" || c.Charset == "ascii" {
			limit := rune(0xFF)
			if c.Charset == "ascii" {
				limit = 0x7F
			}
			for i, r := range s {
				if r > limit {
					return nil, fail("character %U at byte %d is not in the column's character set %s", r, i, c.Charset)
				}
			}
		}
		switch c.DataType {
		case "char", "varchar":
			if n := int64(utf8.RuneCountInString(s)); c.CharMax > 0 && n > c.CharMax {
				return nil, fail("%d characters, longer than the column's %d", n, c.CharMax)
			}
		default:
			if n := int64(storedBytes(s, c.Charset)); c.OctetMax > 0 && n > c.OctetMax {
				return nil, fail("%d bytes, longer than the column's %d", n, c.OctetMax)
			}
		}
		return s, nil
	case "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob":
		var b []byte
		switch x := v.(type) {
		case []byte:
			b = x
		case cdc.Bytes:
			b = []byte(x)
		case string:
			b = []byte(x)
		default:
			return nil, fail("a binary column takes a string or bytes, not %T", v)
		}
		if c.OctetMax > 0 && int64(len(b)) > c.OctetMax {
			return nil, fail("%d bytes, longer than the column's %d", len(b), c.OctetMax)
		}
		return b, nil
	case "json":
		switch x := v.(type) {
		case string:
			if !json.Valid([]byte(x)) {
				return nil, fail("not a JSON document (use toJSON(value) to encode a plain string)")
			}
			return x, nil
		case cdc.JSON:
			return string(x), nil
		default:
			b, err := json.Marshal(v)
			if err != nil {
				return nil, fail("cannot encode as JSON: %v", err)
			}
			return string(b), nil
		}
	}
	return nil, fail("unsupported column type")
}

var timeRE = regexp.MustCompile(`^-?\d{1,3}:[0-5]\d:[0-5]\d(\.\d{1,6})?$`)

// storedBytes is the length of s in the column's character set.
func storedBytes(s, charset string) int {
	switch charset {
	case "latin1", "ascii", "binary":
		return utf8.RuneCountInString(s)
	case "ucs2":
		return 2 * utf8.RuneCountInString(s)
	case "utf16", "utf16le":
		n := 0
		for _, r := range s {
			if r > 0xFFFF {
				n += 4
			} else {
				n += 2
			}
		}
		return n
	case "utf32":
		return 4 * utf8.RuneCountInString(s)
	}
	return len(s)
}

func quoteList(l []string) string {
	q := make([]string, len(l))
	for i, s := range l {
		q[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// toText renders a value for a text column: strings as they are, numbers in
// their exact decimal form, maps and lists as JSON.
func toText(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case cdc.Decimal:
		return string(x), nil
	case cdc.JSON:
		return string(x), nil
	case cdc.Bytes:
		return string(x), nil
	case []byte:
		return string(x), nil
	case bool:
		if x {
			return "1", nil
		}
		return "0", nil
	case int:
		return strconv.Itoa(x), nil
	case int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return fmt.Sprint(x), nil
	case float32:
		return strconv.FormatFloat(float64(x), 'f', -1, 32), nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return "", fmt.Errorf("%v is not a number that can be stored", x)
		}
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case time.Time:
		return x.UTC().Format("2006-01-02 15:04:05.999999"), nil
	case map[string]any, []any, Headers:
		b, err := json.Marshal(x)
		if err != nil {
			return "", err
		}
		return string(b), nil
	}
	return "", fmt.Errorf("cannot store a %T in a text column", v)
}

// intRange is the range of each integer type.
func (c *column) intRange() (lo *big.Int, hi *big.Int) {
	bits := map[string]uint{"tinyint": 8, "smallint": 16, "mediumint": 24, "int": 32, "integer": 32, "bigint": 64}[c.DataType]
	switch c.DataType {
	case "year":
		return big.NewInt(1901), big.NewInt(2155)
	case "bit":
		n := c.Precision
		if n <= 0 {
			n = 1
		}
		hi := new(big.Int).Lsh(big.NewInt(1), uint(n))
		return big.NewInt(0), hi.Sub(hi, big.NewInt(1))
	}
	if c.Unsigned {
		hi := new(big.Int).Lsh(big.NewInt(1), bits)
		return big.NewInt(0), hi.Sub(hi, big.NewInt(1))
	}
	hi = new(big.Int).Lsh(big.NewInt(1), bits-1)
	lo = new(big.Int).Neg(hi)
	return lo, hi.Sub(hi, big.NewInt(1))
}

func (c *column) convertInt(v any, fail func(string, ...any) error) (any, error) {
	n := new(big.Int)
	switch x := v.(type) {
	case bool:
		if x {
			n.SetInt64(1)
		}
	case int:
		n.SetInt64(int64(x))
	case int8:
		n.SetInt64(int64(x))
	case int16:
		n.SetInt64(int64(x))
	case int32:
		n.SetInt64(int64(x))
	case int64:
		n.SetInt64(x)
	case uint:
		n.SetUint64(uint64(x))
	case uint8:
		n.SetUint64(uint64(x))
	case uint16:
		n.SetUint64(uint64(x))
	case uint32:
		n.SetUint64(uint64(x))
	case uint64:
		n.SetUint64(x)
	case float32, float64:
		f := toFloat(x)
		if !isIntegral(f) {
			return nil, fail("not a whole number")
		}
		n.SetInt64(int64(f))
	case string, cdc.Decimal:
		s := strings.TrimSpace(fmt.Sprint(x))
		if _, ok := n.SetString(s, 10); !ok {
			r, ok := new(big.Rat).SetString(s)
			if !ok || !r.IsInt() || strings.ContainsAny(s, "eE") {
				return nil, fail("not a whole number")
			}
			n = r.Num()
		}
	default:
		return nil, fail("an integer column takes a number, not %T", v)
	}
	lo, hi := c.intRange()
	if n.Cmp(lo) < 0 || n.Cmp(hi) > 0 {
		return nil, fail("out of range %s to %s", lo, hi)
	}
	if n.IsInt64() {
		return n.Int64(), nil
	}
	return n.Uint64(), nil
}

func toFloat(v any) float64 {
	switch x := v.(type) {
	case float32:
		return float64(x)
	case float64:
		return x
	}
	return 0
}

func (c *column) convertDecimal(v any, fail func(string, ...any) error) (any, error) {
	var s string
	switch x := v.(type) {
	case string:
		s = strings.TrimSpace(x)
	case cdc.Decimal:
		s = string(x)
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		s = fmt.Sprint(x)
	case float32:
		s = strconv.FormatFloat(float64(x), 'f', -1, 32)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fail("not a finite number")
		}
		s = strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		s = "0"
		if x {
			s = "1"
		}
	default:
		return nil, fail("a decimal column takes a number or numeric string, not %T", v)
	}
	if !decimalRE.MatchString(s) {
		return nil, fail("not a decimal number")
	}
	neg := strings.HasPrefix(s, "-")
	digits := strings.TrimLeft(s, "+-")
	intPart, frac, _ := strings.Cut(digits, ".")
	intPart = strings.TrimLeft(intPart, "0")
	frac = strings.TrimRight(frac, "0")
	if c.Unsigned && neg && (intPart != "" || frac != "") {
		return nil, fail("negative, and the column is unsigned")
	}
	if int64(len(frac)) > c.Scale {
		return nil, fail("has %d decimal places; the column keeps %d (the value would be rounded)", len(frac), c.Scale)
	}
	if int64(len(intPart)) > c.Precision-c.Scale {
		return nil, fail("has %d digits before the decimal point; the column allows %d", len(intPart), c.Precision-c.Scale)
	}
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
	return out, nil
}

var decimalRE = regexp.MustCompile(`^[+-]?(\d+(\.\d*)?|\.\d+)$`)

func (c *column) convertFloat(v any, fail func(string, ...any) error) (any, error) {
	var f float64
	switch x := v.(type) {
	case float32:
		f = float64(x)
	case float64:
		f = x
	case int:
		f = float64(x)
	case int64:
		f = float64(x)
	case uint64:
		f = float64(x)
	case int32, int16, int8, uint32, uint16, uint8, uint:
		f, _ = strconv.ParseFloat(fmt.Sprint(x), 64)
	case string, cdc.Decimal:
		var err error
		f, err = strconv.ParseFloat(strings.TrimSpace(fmt.Sprint(x)), 64)
		if err != nil {
			return nil, fail("not a number")
		}
	default:
		return nil, fail("a floating-point column takes a number, not %T", v)
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, fail("not a finite number")
	}
	if c.Unsigned && f < 0 {
		return nil, fail("negative, and the column is unsigned")
	}
	if c.DataType == "float" && math.Abs(f) > math.MaxFloat32 {
		return nil, fail("out of range for FLOAT")
	}
	return f, nil
}

// timeLayouts are the accepted date and time spellings; ones with a zone are
// converted to UTC (rowhook's writeback session runs with time_zone +00:00).
var timeLayouts = []string{
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
	time.RFC3339Nano,
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02",
}

// parseTime parses a date or date-time value.
func parseTime(v any, dateOnly bool) (time.Time, error) {
	switch x := v.(type) {
	case time.Time:
		return x.UTC(), nil
	case string:
		s := strings.TrimSpace(x)
		for _, l := range timeLayouts {
			if t, err := time.Parse(l, s); err == nil {
				return t.UTC(), nil
			}
		}
		if dateOnly {
			return time.Time{}, fmt.Errorf("not a date of the form 2006-01-02")
		}
		return time.Time{}, fmt.Errorf("not a date-time of the form 2006-01-02 15:04:05[.ffffff] or RFC 3339")
	}
	return time.Time{}, fmt.Errorf("a date column takes a string like \"2006-01-02\", not %T", v)
}

// parseLabels parses the member list of an ENUM or SET column type, as
// information_schema quotes it (single quotes, doubled inside a label).
func parseLabels(colType string) []string {
	open := strings.IndexByte(colType, '(')
	if open < 0 {
		return nil
	}
	s := colType[open+1:]
	var out []string
	for i := 0; i < len(s); i++ {
		if s[i] != '\'' {
			continue
		}
		var b strings.Builder
		i++
		for ; i < len(s); i++ {
			if s[i] == '\'' {
				if i+1 < len(s) && s[i+1] == '\'' {
					b.WriteByte('\'')
					i++
					continue
				}
				break
			}
			if s[i] == '\\' && i+1 < len(s) {
				i++
			}
			b.WriteByte(s[i])
		}
		out = append(out, b.String())
	}
	return out
}
