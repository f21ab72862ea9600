package rules

import (
	"encoding/json"
	"strconv"
	"sync/atomic"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/internal/jsonx"
)

// Field is one named value of a Body.
type Field struct {
	Name  string
	Value any
}

// Body is an event body: fields in the order the body function produced
// them. Values are scalars, nested Bodies, or []any.
type Body []Field

// Get returns the value of the first field called name.
func (b Body) Get(name string) (any, bool) {
	for _, f := range b {
		if f.Name == name {
			return f.Value, true
		}
	}
	return nil, false
}

// Set replaces the first field called name, or appends it.
func (b *Body) Set(name string, v any) {
	for i := range *b {
		if (*b)[i].Name == name {
			(*b)[i].Value = v
			return
		}
	}
	*b = append(*b, Field{Name: name, Value: v})
}

// MarshalJSON encodes the body as a JSON object with its fields in order.
//
// Nested bodies, strings, integers and string lists are appended to one
// buffer directly (encoding/json would re-check every nested body's
// output); anything else goes through encoding/json, so the bytes are the
// same as json.Marshal would give field by field.
//
// The buffer starts at the size of the last body encoded, plus a little
// (up to 16 KiB): bodies of one rule are alike, so it rarely grows (and
// copies) on the way.
func (b Body) MarshalJSON() ([]byte, error) {
	n := int(lastJSONSize.Load())
	out, err := b.appendJSON(make([]byte, 0, min(max(n+n/8, 256), 16<<10)))
	if err == nil && len(out) != n {
		lastJSONSize.Store(int64(len(out)))
	}
	return out, err
}

// lastJSONSize is the length of the last body MarshalJSON encoded.
var lastJSONSize atomic.Int64

func (b Body) appendJSON(buf []byte) ([]byte, error) {
	buf = append(buf, '{')
	for i, f := range b {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = jsonx.AppendString(buf, f.Name)
		buf = append(buf, ':')
		var err error
		if buf, err = appendJSONValue(buf, f.Value); err != nil {
			return nil, err
		}
	}
	return append(buf, '}'), nil
}

func appendJSONValue(buf []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(buf, "null"...), nil
	case Body:
		return v.appendJSON(buf)
	case string:
		return jsonx.AppendString(buf, v), nil
	case cdc.Decimal:
		return jsonx.AppendString(buf, string(v)), nil
	case int64:
		return strconv.AppendInt(buf, v, 10), nil
	case int:
		return strconv.AppendInt(buf, int64(v), 10), nil
	case uint64:
		return strconv.AppendUint(buf, v, 10), nil
	case bool:
		return strconv.AppendBool(buf, v), nil
	case []string:
		if v == nil {
			return append(buf, "null"...), nil
		}
		buf = append(buf, '[')
		for i, s := range v {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = jsonx.AppendString(buf, s)
		}
		return append(buf, ']'), nil
	case []any:
		if v == nil {
			return append(buf, "null"...), nil
		}
		buf = append(buf, '[')
		for i, e := range v {
			if i > 0 {
				buf = append(buf, ',')
			}
			var err error
			if buf, err = appendJSONValue(buf, e); err != nil {
				return nil, err
			}
		}
		return append(buf, ']'), nil
	}
	j, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(buf, j...), nil
}
