package rules

import (
	"database/sql"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/rowhook/rowhook/cdc"
)

// scanRows reads up to limit rows (0: all) and renders their values as cdc
// does for binlog rows (int64/uint64, cdc.Decimal, strings for dates and
// text, cdc.Bytes for binary), so looked-up rows and stream rows look alike.
func scanRows(rows *sql.Rows, limit int) ([]string, []cdc.Row, error) {
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, nil, err
	}
	types, err := rows.ColumnTypes()
	if err != nil {
		return nil, nil, err
	}
	var out []cdc.Row
	raw := make([]sql.RawBytes, len(cols))
	ptrs := make([]any, len(cols))
	for i := range raw {
		ptrs[i] = &raw[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, nil, err
		}
		r := make(cdc.Row, len(cols))
		for i, c := range cols {
			r[c] = sqlValue(raw[i], types[i].DatabaseTypeName())
		}
		out = append(out, r)
		if limit > 0 && len(out) >= limit {
			break
		}
	}
	return cols, out, rows.Err()
}

func sqlValue(b sql.RawBytes, typ string) any {
	if b == nil {
		return nil
	}
	s := string(b)
	unsigned := strings.HasPrefix(typ, "UNSIGNED ")
	switch strings.TrimPrefix(typ, "UNSIGNED ") {
	case "TINYINT", "SMALLINT", "MEDIUMINT", "INT", "BIGINT", "YEAR":
		if unsigned {
			if u, err := strconv.ParseUint(s, 10, 64); err == nil {
				return u
			}
		}
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n
		}
	case "DECIMAL":
		return cdc.Decimal(s)
	case "FLOAT":
		if f, err := strconv.ParseFloat(s, 32); err == nil {
			return float32(f)
		}
	case "DOUBLE":
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return f
		}
	case "TIMESTAMP":
		// cdc renders TIMESTAMP in UTC with a Z; the session's zone is
		// what the server returns here, assumed UTC.
		if len(s) >= 19 {
			return s[:10] + "T" + s[11:] + "Z"
		}
	case "BINARY", "VARBINARY", "BLOB", "TINYBLOB", "MEDIUMBLOB", "LONGBLOB", "GEOMETRY", "BIT":
		return cdc.Bytes(append([]byte(nil), b...))
	case "JSON":
		if json.Valid(b) {
			return cdc.JSON(s)
		}
	}
	return s
}
