package soap

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rowhook/rowhook/cdc"
)

// integer types and their bounds (nil: unbounded).
var intRanges = map[string][2]*big.Int{
	"xsd:integer":            {nil, nil},
	"xsd:long":               {big.NewInt(math.MinInt64), big.NewInt(math.MaxInt64)},
	"xsd:int":                {big.NewInt(math.MinInt32), big.NewInt(math.MaxInt32)},
	"xsd:short":              {big.NewInt(math.MinInt16), big.NewInt(math.MaxInt16)},
	"xsd:byte":               {big.NewInt(math.MinInt8), big.NewInt(math.MaxInt8)},
	"xsd:nonNegativeInteger": {big.NewInt(0), nil},
	"xsd:positiveInteger":    {big.NewInt(1), nil},
	"xsd:nonPositiveInteger": {nil, big.NewInt(0)},
	"xsd:negativeInteger":    {nil, big.NewInt(-1)},
	"xsd:unsignedLong":       {big.NewInt(0), new(big.Int).SetUint64(math.MaxUint64)},
	"xsd:unsignedInt":        {big.NewInt(0), big.NewInt(math.MaxUint32)},
	"xsd:unsignedShort":      {big.NewInt(0), big.NewInt(math.MaxUint16)},
	"xsd:unsignedByte":       {big.NewInt(0), big.NewInt(math.MaxUint8)},
}

// quote shortens a value for an error message.
func quote(s string) string {
	if utf8.RuneCountInString(s) > 64 {
		r := []rune(s)
		s = string(r[:64]) + "…"
	}
	return strconv.Quote(s)
}

// plainText renders a value without regard to the schema type.
func plainText(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case cdc.Decimal:
		return string(x), nil
	case cdc.JSON:
		return string(x), nil
	case cdc.Bytes:
		if utf8.Valid(x) {
			return string(x), nil
		}
		return base64.StdEncoding.EncodeToString(x), nil
	case []byte:
		if utf8.Valid(x) {
			return string(x), nil
		}
		return base64.StdEncoding.EncodeToString(x), nil
	case bool:
		return strconv.FormatBool(x), nil
	case int:
		return strconv.Itoa(x), nil
	case int8, int16, int32, int64:
		return strconv.FormatInt(reflect.ValueOf(x).Int(), 10), nil
	case uint, uint8, uint16, uint32, uint64:
		return strconv.FormatUint(reflect.ValueOf(x).Uint(), 10), nil
	case float32:
		return formatFloat(float64(x), 32), nil
	case float64:
		return formatFloat(x, 64), nil
	case time.Time:
		return x.Format(time.RFC3339Nano), nil
	case json.Number:
		return string(x), nil
	case fmt.Stringer:
		return x.String(), nil
	}
	return "", fmt.Errorf("a %T cannot be written as text", v)
}

func formatFloat(f float64, bits int) string {
	switch {
	case math.IsInf(f, 1):
		return "INF"
	case math.IsInf(f, -1):
		return "-INF"
	case math.IsNaN(f):
		return "NaN"
	}
	return strconv.FormatFloat(f, 'g', -1, bits)
}

// formatValue renders v as the lexical form of p's simple type and checks
// it against the type and its enumeration and length facets.
func formatValue(p *Param, v any) (string, error) {
	base := p.Base
	if base == "" {
		base = "xsd:string"
	}
	s, err := lexical(base, v)
	if err != nil {
		return "", err
	}
	if len(p.Enum) > 0 && !contains(p.Enum, s) {
		return "", fmt.Errorf("value %s is not one of %s", quote(s), strings.Join(p.Enum, ", "))
	}
	n := utf8.RuneCountInString(s)
	if f, ok := p.Facets["maxLength"]; ok {
		if max, err := strconv.Atoi(f); err == nil && n > max {
			return "", fmt.Errorf("value %s is %d characters long, more than maxLength %d", quote(s), n, max)
		}
	}
	if f, ok := p.Facets["minLength"]; ok {
		if min, err := strconv.Atoi(f); err == nil && n < min {
			return "", fmt.Errorf("value %s is %d characters long, less than minLength %d", quote(s), n, min)
		}
	}
	if err := numericFacets(p, base, s); err != nil {
		return "", err
	}
	if f, ok := p.Facets["length"]; ok {
		if l, err := strconv.Atoi(f); err == nil && n != l {
			return "", fmt.Errorf("value %s is %d characters long, not length %d", quote(s), n, l)
		}
	}
	return s, nil
}

// lexical renders v in the lexical space of the built-in type base.
func lexical(base string, v any) (string, error) {
	if r, ok := intRanges[base]; ok {
		return lexInteger(v, r)
	}
	switch base {
	case "xsd:boolean":
		switch x := v.(type) {
		case bool:
			return strconv.FormatBool(x), nil
		case int64, int, int32, uint64:
			s, _ := plainText(x)
			switch s {
			case "0":
				return "false", nil
			case "1":
				return "true", nil
			}
			return "", fmt.Errorf("%s is not a boolean (0 or 1)", s)
		}
		s, err := plainText(v)
		if err != nil {
			return "", err
		}
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "true", "1":
			return "true", nil
		case "false", "0":
			return "false", nil
		}
		return "", fmt.Errorf("%s is not a boolean (true, false, 1, 0)", quote(s))
	case "xsd:decimal":
		switch x := v.(type) {
		case float64:
			return strconv.FormatFloat(x, 'f', -1, 64), nil
		case float32:
			return strconv.FormatFloat(float64(x), 'f', -1, 32), nil
		}
		s, err := plainText(v)
		if err != nil {
			return "", err
		}
		s = strings.TrimSpace(s)
		if _, ok := new(big.Rat).SetString(s); !ok || strings.ContainsAny(s, "eE/") {
			return "", fmt.Errorf("%s is not a decimal number", quote(s))
		}
		return s, nil
	case "xsd:float", "xsd:double":
		s, err := plainText(v)
		if err != nil {
			return "", err
		}
		s = strings.TrimSpace(s)
		if s == "INF" || s == "-INF" || s == "NaN" {
			return s, nil
		}
		if _, err := strconv.ParseFloat(s, 64); err != nil {
			return "", fmt.Errorf("%s is not a number", quote(s))
		}
		return s, nil
	case "xsd:dateTime":
		return lexDateTime(v)
	case "xsd:date":
		switch x := v.(type) {
		case time.Time:
			return x.Format("2006-01-02"), nil
		}
		s, err := plainText(v)
		if err != nil {
			return "", err
		}
		s = strings.TrimSpace(s)
		if len(s) >= 10 {
			if _, err := time.Parse("2006-01-02", s[:10]); err == nil && (len(s) == 10 || s[10] == ' ' || s[10] == 'T') {
				return s[:10], nil
			}
		}
		return "", fmt.Errorf("%s is not a date (YYYY-MM-DD)", quote(s))
	case "xsd:time":
		switch x := v.(type) {
		case time.Time:
			return x.Format("15:04:05.999999999Z07:00"), nil
		}
		s, err := plainText(v)
		if err != nil {
			return "", err
		}
		s = strings.TrimSpace(s)
		if i := strings.IndexAny(s, " T"); i == 10 {
			s = s[11:]
		}
		if _, err := time.Parse("15:04:05", s[:min(len(s), 8)]); err != nil {
			return "", fmt.Errorf("%s is not a time (hh:mm:ss)", quote(s))
		}
		return s, nil
	case "xsd:base64Binary":
		switch x := v.(type) {
		case cdc.Bytes:
			return base64.StdEncoding.EncodeToString(x), nil
		case []byte:
			return base64.StdEncoding.EncodeToString(x), nil
		}
		s, err := plainText(v)
		if err != nil {
			return "", err
		}
		return base64.StdEncoding.EncodeToString([]byte(s)), nil
	case "xsd:hexBinary":
		switch x := v.(type) {
		case cdc.Bytes:
			return strings.ToUpper(hex.EncodeToString(x)), nil
		case []byte:
			return strings.ToUpper(hex.EncodeToString(x)), nil
		}
		s, err := plainText(v)
		if err != nil {
			return "", err
		}
		return strings.ToUpper(hex.EncodeToString([]byte(s))), nil
	}
	s, err := plainText(v)
	if err != nil {
		return "", err
	}
	if strings.ContainsRune(s, 0) {
		return "", fmt.Errorf("%s contains a NUL character, which XML cannot carry", quote(s))
	}
	return s, nil
}

func lexInteger(v any, r [2]*big.Int) (string, error) {
	var n *big.Int
	switch x := v.(type) {
	case float64:
		if x != math.Trunc(x) || math.IsInf(x, 0) || math.IsNaN(x) {
			return "", fmt.Errorf("%s is not an integer", formatFloat(x, 64))
		}
		n, _ = new(big.Float).SetFloat64(x).Int(nil)
	case float32:
		return lexInteger(float64(x), r)
	case bool:
		n = big.NewInt(0)
		if x {
			n = big.NewInt(1)
		}
	default:
		s, err := plainText(v)
		if err != nil {
			return "", err
		}
		s = strings.TrimSpace(s)
		// DECIMAL columns: "12.00" is the integer 12.
		if i := strings.IndexByte(s, '.'); i >= 0 && strings.Trim(s[i+1:], "0") == "" {
			s = s[:i]
		}
		var ok bool
		if n, ok = new(big.Int).SetString(strings.TrimPrefix(s, "+"), 10); !ok {
			return "", fmt.Errorf("%s is not an integer", quote(s))
		}
	}
	if r[0] != nil && n.Cmp(r[0]) < 0 {
		return "", fmt.Errorf("%s is less than the type's minimum %s", n, r[0])
	}
	if r[1] != nil && n.Cmp(r[1]) > 0 {
		return "", fmt.Errorf("%s is more than the type's maximum %s", n, r[1])
	}
	return n.String(), nil
}

// lexDateTime renders MariaDB DATETIME ("2006-01-02 15:04:05"), DATE and
// rowhook's TIMESTAMP ("2006-01-02T15:04:05Z") text, or a time.Time, as
// xsd:dateTime. A DATETIME has no zone and stays without one.
func lexDateTime(v any) (string, error) {
	if t, ok := v.(time.Time); ok {
		return t.Format(time.RFC3339Nano), nil
	}
	s, err := plainText(v)
	if err != nil {
		return "", err
	}
	s = strings.TrimSpace(s)
	if len(s) == 10 {
		if _, err := time.Parse("2006-01-02", s); err == nil {
			return s + "T00:00:00", nil
		}
	}
	if len(s) >= 19 && s[10] == ' ' {
		s = s[:10] + "T" + s[11:]
	}
	for _, layout := range []string{"2006-01-02T15:04:05.999999999Z07:00", "2006-01-02T15:04:05.999999999"} {
		if _, err := time.Parse(layout, s); err == nil {
			return s, nil
		}
	}
	return "", fmt.Errorf("%s is not a date and time (YYYY-MM-DD hh:mm:ss)", quote(s))
}

// numericFacets checks minInclusive, maxInclusive, minExclusive,
// maxExclusive, totalDigits and fractionDigits of numeric types.
func numericFacets(p *Param, base, s string) error {
	if len(p.Facets) == 0 {
		return nil
	}
	if _, isInt := intRanges[base]; !isInt && base != "xsd:decimal" && base != "xsd:float" && base != "xsd:double" {
		return nil
	}
	v, ok := new(big.Rat).SetString(s)
	if !ok {
		return nil // INF, NaN
	}
	bounds := []struct {
		facet string
		bad   func(c int) bool
		what  string
	}{
		{"minInclusive", func(c int) bool { return c < 0 }, "less than"},
		{"maxInclusive", func(c int) bool { return c > 0 }, "more than"},
		{"minExclusive", func(c int) bool { return c <= 0 }, "not more than"},
		{"maxExclusive", func(c int) bool { return c >= 0 }, "not less than"},
	}
	for _, b := range bounds {
		f, ok := p.Facets[b.facet]
		if !ok {
			continue
		}
		lim, ok := new(big.Rat).SetString(strings.TrimSpace(f))
		if ok && b.bad(v.Cmp(lim)) {
			return fmt.Errorf("value %s is %s %s %s", s, b.what, b.facet, f)
		}
	}
	digits := strings.TrimLeft(strings.TrimPrefix(strings.TrimPrefix(s, "-"), "+"), "0")
	frac := ""
	if i := strings.IndexByte(digits, '.'); i >= 0 {
		frac = strings.TrimRight(digits[i+1:], "0")
		digits = digits[:i] + frac
	}
	if f, ok := p.Facets["fractionDigits"]; ok {
		if n, err := strconv.Atoi(f); err == nil && len(frac) > n {
			return fmt.Errorf("value %s has %d fraction digits, more than fractionDigits %d", s, len(frac), n)
		}
	}
	if f, ok := p.Facets["totalDigits"]; ok {
		if n, err := strconv.Atoi(f); err == nil && len(strings.TrimLeft(digits, "0")) > n {
			return fmt.Errorf("value %s has more than totalDigits %d digits", s, n)
		}
	}
	return nil
}
