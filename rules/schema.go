package rules

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// sourceSchema is the source's tables and columns, read once at New.
type sourceSchema struct {
	tables  map[string]bool       // "schema.table"
	cols    map[string]*columnSet // "schema.table"
	schemas map[string][]string   // table → schemas holding it
}

func loadSchema(ctx context.Context, db *sql.DB) (*sourceSchema, error) {
	rows, err := db.QueryContext(ctx, `/* rowhook */ SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, DATA_TYPE
FROM information_schema.COLUMNS
WHERE TABLE_SCHEMA NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys')
ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	s := &sourceSchema{tables: map[string]bool{}, cols: map[string]*columnSet{}, schemas: map[string][]string{}}
	for rows.Next() {
		var sc, tb, col, typ string
		if err := rows.Scan(&sc, &tb, &col, &typ); err != nil {
			return nil, err
		}
		key := sc + "." + tb
		cs := s.cols[key]
		if cs == nil {
			cs = &columnSet{table: key, cols: map[string]bool{}, types: map[string]string{}}
			s.cols[key] = cs
			s.tables[key] = true
			s.schemas[tb] = append(s.schemas[tb], sc)
		}
		cs.cols[col] = true
		cs.types[col] = strings.ToLower(typ)
		cs.order = append(cs.order, col)
	}
	return s, rows.Err()
}

// columnsFor returns the columns of a rule's table pattern: nil (not
// checked) for globs and for a bare table name found in several schemas.
func (s *sourceSchema) columnsFor(pattern string) (*columnSet, error) {
	if strings.ContainsAny(pattern, "*?[") {
		return nil, nil
	}
	if strings.Contains(pattern, ".") {
		if cs := s.cols[pattern]; cs != nil {
			return cs, nil
		}
		return nil, fmt.Errorf("table %s does not exist on the source", pattern)
	}
	switch sc := s.schemas[pattern]; len(sc) {
	case 0:
		return nil, fmt.Errorf("no schema on the source has a table %s", pattern)
	case 1:
		return s.cols[sc[0]+"."+pattern], nil
	}
	return nil, nil
}

// commonColumns returns the table columns shared by every rule using the
// body function name, when they all read the same known table.
func (s *sourceSchema) commonColumns(rules []RuleConfig, name string) *columnSet {
	var out *columnSet
	for _, r := range rules {
		if r.Event != name {
			continue
		}
		cs, err := s.columnsFor(r.Table)
		if err != nil || cs == nil || (out != nil && out != cs) {
			return nil
		}
		out = cs
	}
	return out
}
