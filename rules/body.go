package rules

import (
	"bytes"
	"encoding/json"
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
func (b Body) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, f := range b {
		if i > 0 {
			buf.WriteByte(',')
		}
		k, err := json.Marshal(f.Name)
		if err != nil {
			return nil, err
		}
		buf.Write(k)
		buf.WriteByte(':')
		v, err := json.Marshal(f.Value)
		if err != nil {
			return nil, err
		}
		buf.Write(v)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}
