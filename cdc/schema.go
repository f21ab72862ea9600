package cdc

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"
)

// dbSchema is a SchemaSource over the source's information_schema, cached
// per table and invalidated on DDL.
type dbSchema struct {
	db      *sql.DB
	timeout time.Duration
	mu      sync.Mutex
	cache   map[string]*TableInfo
}

var _ SchemaSource = (*dbSchema)(nil)

func newDBSchema(db *sql.DB) *dbSchema {
	return &dbSchema{db: db, timeout: 10 * time.Second, cache: map[string]*TableInfo{}}
}

// jsonCheck matches MariaDB's CHECK for its JSON alias: json_valid(`col`).
var jsonCheck = regexp.MustCompile("(?i)json_valid\\(`?([^`)]+)`?\\)")

func (s *dbSchema) Table(schema, table string) (*TableInfo, error) {
	key := schema + "." + table
	s.mu.Lock()
	if ti, ok := s.cache[key]; ok {
		s.mu.Unlock()
		return ti, nil
	}
	s.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	rows, err := s.db.QueryContext(ctx, `/* rowhook */ SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, COLUMN_KEY, COALESCE(CHARACTER_SET_NAME, '')
		FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`, schema, table)
	if err != nil {
		return nil, fmt.Errorf("read columns of %s: %w", key, err)
	}
	defer rows.Close()
	ti := &TableInfo{}
	for rows.Next() {
		var name, dataType, columnType, columnKey, charset string
		if err := rows.Scan(&name, &dataType, &columnType, &columnKey, &charset); err != nil {
			return nil, fmt.Errorf("read columns of %s: %w", key, err)
		}
		c := ColumnInfo{Name: name, DataType: strings.ToLower(dataType)}
		switch c.DataType {
		case "json":
			c.JSON = true
		case "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob":
			c.Binary = true
		case "enum", "set":
			c.Enum = parseEnumLabels(columnType)
		}
		ti.Columns = append(ti.Columns, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read columns of %s: %w", key, err)
	}
	if len(ti.Columns) == 0 {
		return nil, nil
	}
	// Primary key in key order.
	pk, err := s.db.QueryContext(ctx, `/* rowhook */ SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE
		WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION`, schema, table)
	if err != nil {
		return nil, fmt.Errorf("read primary key of %s: %w", key, err)
	}
	for pk.Next() {
		var n string
		if err := pk.Scan(&n); err != nil {
			pk.Close()
			return nil, fmt.Errorf("read primary key of %s: %w", key, err)
		}
		ti.PK = append(ti.PK, n)
	}
	pk.Close()
	// MariaDB JSON columns are LONGTEXT with CHECK (json_valid(col)). The
	// CHECK_CONSTRAINTS table is MariaDB ≥ 10.2 and MySQL ≥ 8.0.16; where it
	// is missing, JSON columns read as text.
	checks, err := s.db.QueryContext(ctx, `/* rowhook */ SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS
		WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?`, schema, table)
	if err == nil {
		for checks.Next() {
			var clause string
			if checks.Scan(&clause) != nil {
				continue
			}
			for _, m := range jsonCheck.FindAllStringSubmatch(clause, -1) {
				for i := range ti.Columns {
					if strings.EqualFold(ti.Columns[i].Name, m[1]) && ti.Columns[i].DataType == "longtext" {
						ti.Columns[i].JSON = true
					}
				}
			}
		}
		checks.Close()
	}
	s.mu.Lock()
	s.cache[key] = ti
	s.mu.Unlock()
	return ti, nil
}

func (s *dbSchema) Invalidate(schema, table string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if table != "" {
		delete(s.cache, schema+"."+table)
		return
	}
	for k := range s.cache {
		if schema == "" || strings.HasPrefix(k, schema+".") {
			delete(s.cache, k)
		}
	}
}

// parseEnumLabels parses enum('a','b”c') or set(...) into its labels.
func parseEnumLabels(columnType string) []string {
	i := strings.IndexByte(columnType, '(')
	if i < 0 {
		return nil
	}
	s := columnType[i+1:]
	var out []string
	for len(s) > 0 && s[0] == '\'' {
		var b strings.Builder
		j := 1
		for j < len(s) {
			if s[j] == '\'' {
				if j+1 < len(s) && s[j+1] == '\'' {
					b.WriteByte('\'')
					j += 2
					continue
				}
				break
			}
			b.WriteByte(s[j])
			j++
		}
		out = append(out, b.String())
		s = strings.TrimLeft(s[min(j+1, len(s)):], ",")
	}
	return out
}
