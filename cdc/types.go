package cdc

import (
	"encoding/json"
	"strconv"
)

// Decimal is an exact DECIMAL value in its canonical text form ("1234.50").
// It encodes as a JSON string so no consumer rounds it through a float.
type Decimal string

// Float64 returns the decimal as a float64, for comparisons in rules.
func (d Decimal) Float64() (float64, error) { return strconv.ParseFloat(string(d), 64) }

// String returns the decimal's text.
func (d Decimal) String() string { return string(d) }

// JSON is a JSON document from a JSON column, kept as its text.
// It encodes as the document itself, not as a string.
type JSON string

// MarshalJSON returns the document; an invalid document (possible in MariaDB,
// where JSON is LONGTEXT with a CHECK) is encoded as a JSON string instead.
func (j JSON) MarshalJSON() ([]byte, error) {
	if j == "" {
		return []byte("null"), nil
	}
	if json.Valid([]byte(j)) {
		return []byte(j), nil
	}
	return json.Marshal(string(j))
}

// Bytes is a binary string (BINARY, VARBINARY, BLOB); it encodes as base64.
type Bytes []byte
