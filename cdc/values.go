package cdc

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
)

// binaryCollation is the collation id of binary strings (BINARY, VARBINARY,
// BLOB): their values are bytes, not text.
const binaryCollation = 63

// table is what the decoder knows about one table: names and a converter per
// column, built once per TABLE_MAP event rather than per row.
type table struct {
	schema, name string
	columns      []string
	pk           []int
	pkNames      []string
	conv         []converter
	// tme is the TABLE_MAP event this was built from; a new event with the
	// same table id and the same metadata reuses it.
	tme *replication.TableMapEvent
}

// converter renders one decoded value; nil leaves the value unchanged.
type converter func(v any) (any, error)

// ColumnInfo is what a schema source knows about one column, used when the
// binlog's TABLE_MAP carries no names (binlog_row_metadata=MINIMAL) and, on
// MariaDB, to recognise JSON columns (LONGTEXT with a json_valid CHECK).
type ColumnInfo struct {
	Name string
	// DataType is information_schema.COLUMNS.DATA_TYPE ("varchar", "blob").
	DataType string
	// Enum holds ENUM or SET labels in order.
	Enum []string
	// JSON marks a JSON column.
	JSON bool
	// Binary marks a binary string column (BINARY, VARBINARY, BLOB).
	Binary bool
}

// TableInfo is a schema source's description of a table.
type TableInfo struct {
	Columns []ColumnInfo
	// PK lists the primary key's column names in key order.
	PK []string
}

func newTable(tme *replication.TableMapEvent, flavor string, hint *TableInfo) (*table, error) {
	t := &table{schema: string(tme.Schema), name: string(tme.Table), tme: tme}
	n := int(tme.ColumnCount)
	names := tme.ColumnNameString()
	switch {
	case len(names) == n:
		t.columns = append([]string(nil), names...)
		for _, i := range tme.PrimaryKey {
			t.pk = append(t.pk, int(i))
		}
	case hint != nil && len(hint.Columns) == n:
		t.columns = make([]string, n)
		for i, c := range hint.Columns {
			t.columns[i] = c.Name
		}
		for _, pk := range hint.PK {
			for i, c := range t.columns {
				if c == pk {
					t.pk = append(t.pk, i)
				}
			}
		}
	case hint != nil:
		return nil, fmt.Errorf("%w: %s.%s has %d columns in the binlog but %d in the current schema, so columns cannot be named safely: set binlog_row_metadata=FULL on the source",
			ErrColumnCount, t.schema, t.name, n, len(hint.Columns))
	default:
		return nil, fmt.Errorf("%w: %s.%s: the binlog's TABLE_MAP has no column names and no schema is available: set binlog_row_metadata=FULL on the source",
			ErrNoColumnNames, t.schema, t.name)
	}
	for _, i := range t.pk {
		t.pkNames = append(t.pkNames, t.columns[i])
	}

	collations := tme.CollationMap()
	enums := tme.EnumStrValueMap()
	sets := tme.SetStrValueMap()
	t.conv = make([]converter, n)
	for i := 0; i < n; i++ {
		var col *ColumnInfo
		if hint != nil && i < len(hint.Columns) && hint.Columns[i].Name == t.columns[i] {
			col = &hint.Columns[i]
		}
		t.conv[i] = columnConverter(tme, i, flavor, collations, enums, sets, col)
	}
	return t, nil
}

func columnConverter(tme *replication.TableMapEvent, i int, flavor string, collations map[int]uint64, enums, sets map[int][]string, col *ColumnInfo) converter {
	typ := tme.ColumnType[i]
	meta := tme.ColumnMeta[i]
	if typ == mysql.MYSQL_TYPE_STRING && meta >= 256 {
		if rt := byte(meta >> 8); rt == mysql.MYSQL_TYPE_ENUM || rt == mysql.MYSQL_TYPE_SET {
			typ = rt
		}
	}
	binary := func() bool {
		if c, ok := collations[i]; ok {
			return c == binaryCollation
		}
		return col != nil && col.Binary
	}
	switch typ {
	case mysql.MYSQL_TYPE_TINY, mysql.MYSQL_TYPE_SHORT, mysql.MYSQL_TYPE_INT24, mysql.MYSQL_TYPE_LONG, mysql.MYSQL_TYPE_LONGLONG, mysql.MYSQL_TYPE_YEAR:
		return convInteger
	case mysql.MYSQL_TYPE_NEWDECIMAL, mysql.MYSQL_TYPE_DECIMAL:
		return convDecimal
	case mysql.MYSQL_TYPE_FLOAT:
		return convFloat32
	case mysql.MYSQL_TYPE_BIT:
		return convBit
	case mysql.MYSQL_TYPE_TIMESTAMP, mysql.MYSQL_TYPE_TIMESTAMP2:
		return convTimestamp
	case mysql.MYSQL_TYPE_ENUM:
		labels := enums[i]
		if labels == nil && col != nil {
			labels = col.Enum
		}
		return enumConverter(labels)
	case mysql.MYSQL_TYPE_SET:
		labels := sets[i]
		if labels == nil && col != nil {
			labels = col.Enum
		}
		return setConverter(labels)
	case mysql.MYSQL_TYPE_JSON:
		return convJSON
	case mysql.MYSQL_TYPE_GEOMETRY:
		return convBytes
	case mysql.MYSQL_TYPE_BLOB:
		if col != nil && col.JSON {
			return convJSON
		}
		if binary() {
			return convBytes
		}
		return convText
	case mysql.MYSQL_TYPE_STRING:
		if binary() {
			return padBytes(fixedLength(meta))
		}
		return convText
	case mysql.MYSQL_TYPE_VARCHAR, mysql.MYSQL_TYPE_VAR_STRING:
		if binary() {
			return convBytes
		}
		return convText
	}
	return nil
}

func convInteger(v any) (any, error) {
	switch x := v.(type) {
	case int8:
		return int64(x), nil
	case int16:
		return int64(x), nil
	case int32:
		return int64(x), nil
	case int64:
		return v, nil // already right: returning x would box it again
	case int:
		return int64(x), nil
	case uint8:
		return uint64(x), nil
	case uint16:
		return uint64(x), nil
	case uint32:
		return uint64(x), nil
	case uint64:
		return v, nil
	}
	return v, nil
}

func convDecimal(v any) (any, error) {
	if s, ok := v.(string); ok {
		return Decimal(s), nil
	}
	return v, nil
}

// convFloat32 widens FLOAT to float64 through its shortest decimal form, so
// FLOAT 0.1 reads as 0.1 rather than 0.10000000149011612.
func convFloat32(v any) (any, error) {
	if f, ok := v.(float32); ok {
		if math.IsInf(float64(f), 0) || math.IsNaN(float64(f)) {
			return float64(f), nil
		}
		return strconv.ParseFloat(strconv.FormatFloat(float64(f), 'g', -1, 32), 64)
	}
	return v, nil
}

func convBit(v any) (any, error) {
	if i, ok := v.(int64); ok {
		return uint64(i), nil
	}
	return v, nil
}

// convTimestamp turns the decoder's UTC "2006-01-02 15:04:05.000" into
// "2006-01-02T15:04:05.000Z". Zero timestamps stay "0000-00-00 00:00:00",
// and the fast row decoder's values, already in the second form, pass.
func convTimestamp(v any) (any, error) {
	s, ok := v.(string)
	if !ok || len(s) < 19 || s[10] != ' ' || strings.HasPrefix(s, "0000-00-00") {
		return v, nil
	}
	return s[:10] + "T" + s[11:] + "Z", nil
}

func enumConverter(labels []string) converter {
	return func(v any) (any, error) {
		i, ok := v.(int64)
		if !ok {
			return v, nil
		}
		if i == 0 {
			// MariaDB stores an invalid value inserted in non-strict mode as
			// index 0, which reads back as the empty string.
			return "", nil
		}
		if labels == nil {
			return i, nil
		}
		if int(i) > len(labels) {
			return nil, fmt.Errorf("enum index %d out of range (%d labels)", i, len(labels))
		}
		return labels[i-1], nil
	}
}

func setConverter(labels []string) converter {
	return func(v any) (any, error) {
		mask, ok := v.(int64)
		if !ok {
			return v, nil
		}
		if labels == nil {
			return uint64(mask), nil
		}
		var b strings.Builder
		for bit := 0; bit < len(labels) && bit < 64; bit++ {
			if uint64(mask)&(1<<uint(bit)) != 0 {
				if b.Len() > 0 {
					b.WriteByte(',')
				}
				b.WriteString(labels[bit])
			}
		}
		return b.String(), nil
	}
}

func convJSON(v any) (any, error) {
	switch x := v.(type) {
	case string:
		return JSON(x), nil
	case []byte:
		if len(x) == 0 {
			return JSON(""), nil
		}
		return JSON(x), nil
	}
	return v, nil
}

func convBytes(v any) (any, error) {
	switch x := v.(type) {
	case string:
		return Bytes(x), nil
	case []byte:
		return Bytes(bytes.Clone(x)), nil
	}
	return v, nil
}

// fixedLength is the byte length of a CHAR/BINARY column from its TABLE_MAP
// metadata (the same packing the row decoder uses).
func fixedLength(meta uint16) int {
	if meta >= 256 {
		b0, b1 := uint8(meta>>8), uint8(meta&0xFF)
		if b0&0x30 != 0x30 {
			return int(uint16(b1) | (uint16((b0&0x30)^0x30) << 4))
		}
		return int(meta & 0xFF)
	}
	return int(meta)
}

// padBytes restores the trailing zero bytes the binlog strips from BINARY(n)
// values, so the value is the n bytes the column holds.
func padBytes(n int) converter {
	return func(v any) (any, error) {
		b, err := convBytes(v)
		if err != nil {
			return nil, err
		}
		if x, ok := b.(Bytes); ok && len(x) < n {
			x = append(x, make([]byte, n-len(x))...)
			return x, nil
		}
		return b, nil
	}
}

func convText(v any) (any, error) {
	if b, ok := v.([]byte); ok {
		return string(b), nil
	}
	return v, nil
}

// valuesEqual compares two rendered values; Bytes compare by content.
func valuesEqual(a, b any) bool {
	switch x := a.(type) {
	case Bytes:
		y, ok := b.(Bytes)
		return ok && bytes.Equal(x, y)
	case []byte:
		y, ok := b.([]byte)
		return ok && bytes.Equal(x, y)
	}
	switch b.(type) {
	case Bytes, []byte:
		return false
	}
	return a == b
}
