package cdc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// MarshalChange encodes c for storage beside a delivery, so that writeback
// can read the row again after a restart: Change's JSON plus the column
// lists it leaves out (Columns, PKColumns). A nil change encodes as nil.
func MarshalChange(c *Change) ([]byte, error) {
	if c == nil {
		return nil, nil
	}
	type stored struct {
		*Change
		Columns   []string `json:"columns,omitempty"`
		PKColumns []string `json:"pk_columns,omitempty"`
	}
	return json.Marshal(stored{Change: c, Columns: c.Columns, PKColumns: c.PKColumns})
}

// UnmarshalChange decodes what MarshalChange wrote. The row values come
// back as JSON gives them: integers as int64 (uint64 above MaxInt64),
// other numbers as float64, DECIMAL, text and dates as string, binary as
// base64 strings, JSON documents as maps and slices, NULL as nil.
// Annotation is not stored.
func UnmarshalChange(raw []byte) (*Change, error) {
	var s struct {
		Change
		Before    map[string]json.RawMessage `json:"before"`
		After     map[string]json.RawMessage `json:"after"`
		PK        map[string]json.RawMessage `json:"pk"`
		Columns   []string                   `json:"columns"`
		PKColumns []string                   `json:"pk_columns"`
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, err
	}
	c := s.Change
	c.Columns, c.PKColumns = s.Columns, s.PKColumns
	var err error
	if c.Before, err = unmarshalRow(s.Before); err != nil {
		return nil, err
	}
	if c.After, err = unmarshalRow(s.After); err != nil {
		return nil, err
	}
	if c.PK, err = unmarshalRow(s.PK); err != nil {
		return nil, err
	}
	return &c, nil
}

func unmarshalRow(m map[string]json.RawMessage) (Row, error) {
	if m == nil {
		return nil, nil
	}
	row := make(Row, len(m))
	for k, raw := range m {
		var v any
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("column %s: %w", k, err)
		}
		row[k] = normalizeNumber(v)
	}
	return row, nil
}

// normalizeNumber turns the json.Numbers in v into int64, uint64 or
// float64, in nested documents too.
func normalizeNumber(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		if u, err := strconv.ParseUint(string(x), 10, 64); err == nil {
			return u
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = normalizeNumber(e)
		}
	case []any:
		for i, e := range x {
			x[i] = normalizeNumber(e)
		}
	}
	return v
}
