package cdc

import (
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
)

// TestSameTableMap: a TABLE_MAP reusing a table id keeps the converters
// built for the last one only when everything they depend on is the same.
func TestSameTableMap(t *testing.T) {
	base := func() *replication.TableMapEvent {
		return &replication.TableMapEvent{
			Schema: []byte("crm"), Table: []byte("t"), ColumnCount: 3,
			ColumnType:       []byte{mysql.MYSQL_TYPE_LONG, mysql.MYSQL_TYPE_STRING, mysql.MYSQL_TYPE_VARCHAR},
			ColumnMeta:       []uint16{0, uint16(mysql.MYSQL_TYPE_ENUM)<<8 | 1, 40},
			ColumnName:       [][]byte{[]byte("id"), []byte("stage"), []byte("code")},
			SignednessBitmap: []byte{0},
			DefaultCharset:   []uint64{45},
			EnumStrValue:     [][][]byte{{[]byte("open"), []byte("won")}},
			PrimaryKey:       []uint64{0},
		}
	}
	if !sameTableMap(base(), base()) {
		t.Fatal("identical table maps: not the same")
	}
	for name, change := range map[string]func(*replication.TableMapEvent){
		"enum label renamed":    func(e *replication.TableMapEvent) { e.EnumStrValue[0][1] = []byte("closed") },
		"enum label added":      func(e *replication.TableMapEvent) { e.EnumStrValue[0] = append(e.EnumStrValue[0], []byte("lost")) },
		"text to binary":        func(e *replication.TableMapEvent) { e.DefaultCharset, e.ColumnCharset = nil, []uint64{45, 63} },
		"default collation":     func(e *replication.TableMapEvent) { e.DefaultCharset = []uint64{63} },
		"primary key":           func(e *replication.TableMapEvent) { e.PrimaryKey = []uint64{2} },
		"column renamed":        func(e *replication.TableMapEvent) { e.ColumnName[2] = []byte("ref") },
		"signedness":            func(e *replication.TableMapEvent) { e.SignednessBitmap = []byte{0x80} },
		"varchar length (meta)": func(e *replication.TableMapEvent) { e.ColumnMeta[2] = 80 },
	} {
		e := base()
		change(e)
		if sameTableMap(base(), e) {
			t.Errorf("%s: table maps reported the same", name)
		}
	}
}
