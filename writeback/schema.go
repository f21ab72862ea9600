package writeback

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"

	"github.com/jmoiron/sqlx"
)

// tableInfo is one table's columns and unique keys from information_schema.
type tableInfo struct {
	schema, name string
	columns      []*column
	byName       map[string]*column
	// keys are the primary and unique keys, each its column list.
	keys map[string][]string
}

func (t *tableInfo) column(name string) *column {
	if c := t.byName[name]; c != nil {
		return c
	}
	// Column names are case-insensitive in MariaDB and MySQL.
	for _, c := range t.columns {
		if strings.EqualFold(c.Name, name) {
			return c
		}
	}
	return nil
}

func (t *tableInfo) names() []string {
	out := make([]string, len(t.columns))
	for i, c := range t.columns {
		out[i] = c.Name
	}
	return out
}

// unique reports whether cols include every column of a primary or unique
// key, so that they address at most one row.
func (t *tableInfo) unique(cols []string) bool {
	have := map[string]bool{}
	for _, c := range cols {
		have[strings.ToLower(c)] = true
	}
	for _, k := range t.keys {
		all := true
		for _, c := range k {
			if !have[strings.ToLower(c)] {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

func (t *tableInfo) describeKeys() string {
	if len(t.keys) == 0 {
		return "a table with a primary key (this one has none)"
	}
	var ks []string
	for name, cols := range t.keys {
		ks = append(ks, fmt.Sprintf("%s (%s)", name, strings.Join(cols, ", ")))
	}
	sort.Strings(ks)
	return "the columns of " + strings.Join(ks, " or ")
}

// schemaCache reads each table once.
type schemaCache struct {
	db     *sqlx.DB
	tables map[string]*tableInfo
}

type columnRow struct {
	Name       string         `db:"COLUMN_NAME"`
	DataType   string         `db:"DATA_TYPE"`
	ColumnType string         `db:"COLUMN_TYPE"`
	Nullable   string         `db:"IS_NULLABLE"`
	CharMax    sql.NullInt64  `db:"CHARACTER_MAXIMUM_LENGTH"`
	OctetMax   sql.NullInt64  `db:"CHARACTER_OCTET_LENGTH"`
	Precision  sql.NullInt64  `db:"NUMERIC_PRECISION"`
	Scale      sql.NullInt64  `db:"NUMERIC_SCALE"`
	DTPrec     sql.NullInt64  `db:"DATETIME_PRECISION"`
	Charset    sql.NullString `db:"CHARACTER_SET_NAME"`
	Extra      string         `db:"EXTRA"`
}

// table returns schema.table's description, nil when it does not exist.
func (sc *schemaCache) table(ctx context.Context, schema, table string) (*tableInfo, error) {
	id := schema + "." + table
	if t, ok := sc.tables[id]; ok {
		return t, nil
	}
	var rows []columnRow
	err := sc.db.SelectContext(ctx, &rows, `/* rowhook */ SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE,
		CHARACTER_MAXIMUM_LENGTH, CHARACTER_OCTET_LENGTH, NUMERIC_PRECISION, NUMERIC_SCALE,
		DATETIME_PRECISION, CHARACTER_SET_NAME, EXTRA
		FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?
		ORDER BY ORDINAL_POSITION`, schema, table)
	if err != nil {
		return nil, classify("read columns of", id, err)
	}
	if len(rows) == 0 {
		sc.tables[id] = nil
		return nil, nil
	}
	t := &tableInfo{schema: schema, name: table, byName: map[string]*column{}, keys: map[string][]string{}}
	for _, r := range rows {
		c := &column{
			Name:       r.Name,
			DataType:   strings.ToLower(r.DataType),
			ColumnType: r.ColumnType,
			Nullable:   r.Nullable == "YES",
			CharMax:    r.CharMax.Int64,
			OctetMax:   r.OctetMax.Int64,
			Precision:  r.Precision.Int64,
			Scale:      r.Scale.Int64,
			DTPrec:     r.DTPrec.Int64,
			Charset:    r.Charset.String,
			Unsigned:   strings.Contains(strings.ToLower(r.ColumnType), "unsigned"),
			Generated:  generated(r.Extra),
			OnUpdate:   strings.Contains(strings.ToLower(r.Extra), "on update"),
		}
		if c.DataType == "enum" || c.DataType == "set" {
			c.Labels = parseLabels(r.ColumnType)
		}
		t.columns = append(t.columns, c)
		t.byName[c.Name] = c
	}
	var idx []struct {
		Index  string `db:"INDEX_NAME"`
		Column string `db:"COLUMN_NAME"`
	}
	err = sc.db.SelectContext(ctx, &idx, `/* rowhook */ SELECT INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS
		WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND NON_UNIQUE = 0 ORDER BY INDEX_NAME, SEQ_IN_INDEX`, schema, table)
	if err != nil {
		return nil, classify("read keys of", id, err)
	}
	for _, r := range idx {
		t.keys[r.Index] = append(t.keys[r.Index], r.Column)
	}
	sc.tables[id] = t
	return t, nil
}

// reload forgets and re-reads schema.table.
func (sc *schemaCache) reload(ctx context.Context, schema, table string) (*tableInfo, error) {
	delete(sc.tables, schema+"."+table)
	return sc.table(ctx, schema, table)
}

// missingTable explains a table that does not exist: the schema is missing,
// or similar table names.
func (sc *schemaCache) missingTable(ctx context.Context, schema, table string) string {
	var names []string
	if err := sc.db.SelectContext(ctx, &names, "/* rowhook */ SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?", schema); err != nil || len(names) == 0 {
		var n int
		_ = sc.db.GetContext(ctx, &n, "/* rowhook */ SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", schema)
		if n == 0 {
			return fmt.Sprintf("table %s.%s does not exist: there is no database %s on the primary (or the writeback user cannot see it)", schema, table, schema)
		}
	}
	msg := fmt.Sprintf("table %s.%s does not exist on the primary (or the writeback user cannot see it)", schema, table)
	if near := nearMatches(table, names); len(near) > 0 {
		msg += fmt.Sprintf("; did you mean %s?", strings.Join(near, ", "))
	}
	return msg
}

// generated recognises generated columns by EXTRA ("VIRTUAL GENERATED",
// "STORED GENERATED", MariaDB's "PERSISTENT"), not MySQL's
// "DEFAULT_GENERATED", which is an ordinary column with an expression default.
func generated(extra string) bool {
	e := strings.ToUpper(extra)
	return strings.Contains(e, "VIRTUAL") || strings.Contains(e, "STORED GENERATED") || strings.Contains(e, "PERSISTENT")
}
