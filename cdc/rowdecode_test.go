package cdc

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/rowhook/rowhook/internal/mariadbtest"
)

// TestRowDecoder_MatchesGoMySQL writes thousands of random rows of every
// fast-path type (edge values and NULLs included) to a private MariaDB,
// inserts, updates (FULL, MINIMAL and NOBLOB row images) and deletes them,
// then reads the binlog twice, through go-mysql's own row decoding and
// through the fast path, each followed by the decoder's converters, and
// requires the same changes value by value.
func TestRowDecoder_MatchesGoMySQL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a MariaDB")
	}
	srv := mariadbtest.New(t, mariadbtest.Options{})
	schema, db := srv.NewSchema(t)
	rng := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	seed := rng.Uint64()
	t.Logf("seed %d", seed)
	rng = rand.New(rand.NewPCG(2, seed))

	cols := diffColumns()
	var ddl []string
	for _, c := range cols {
		ddl = append(ddl, "`"+c.name+"` "+c.sqlType)
	}
	mustExecDB(t, db, "CREATE TABLE fast (id INT PRIMARY KEY, "+strings.Join(ddl, ", ")+") DEFAULT CHARSET=utf8mb4")
	// TIME is not on the fast path: this table's events fall back whole.
	mustExecDB(t, db, "CREATE TABLE slow (id INT PRIMARY KEY, tm TIME(3), v VARCHAR(20), d DECIMAL(10,2))")

	var startGTID string
	if err := srv.DB().QueryRow("SELECT @@gtid_binlog_pos").Scan(&startGTID); err != nil {
		t.Fatal(err)
	}

	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := conn.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%.200s: %v", q, err)
		}
	}
	// Zero dates need a non-strict sql_mode; a +02:00 session checks that
	// TIMESTAMPs come out in UTC.
	exec("SET time_zone = '+02:00', sql_mode = 'NO_ENGINE_SUBSTITUTION'")

	const rows = 3000
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = "`" + c.name + "`"
	}
	rowPH := "(" + strings.Repeat("?,", len(cols)) + "?)"
	for start := 0; start < rows; start += 40 {
		var ph []string
		var args []any
		for id := start; id < start+40 && id < rows; id++ {
			ph = append(ph, rowPH)
			args = append(args, id+1)
			for _, c := range cols {
				args = append(args, c.random(rng))
			}
		}
		exec("INSERT INTO fast (id, "+strings.Join(names, ",")+") VALUES "+strings.Join(ph, ","), args...)
	}
	for i := 1; i <= 50; i++ {
		exec("INSERT INTO slow VALUES (?, ?, ?, ?)", i, fmt.Sprintf("-%d:%02d:%02d.%03d", i, i%60, i%60, i), strconv.Itoa(i), fmt.Sprintf("%d.%02d", i*7, i))
	}
	update := func(n int) {
		exec("BEGIN")
		for k := 0; k < n; k++ {
			var sets []string
			var args []any
			for j := 0; j < 1+rng.IntN(6); j++ {
				c := cols[rng.IntN(len(cols))]
				sets = append(sets, "`"+c.name+"` = ?")
				args = append(args, c.random(rng))
			}
			args = append(args, 1+rng.IntN(rows))
			exec("UPDATE fast SET "+strings.Join(sets, ", ")+" WHERE id = ?", args...)
		}
		exec("COMMIT")
		// Multi-row events.
		exec("UPDATE fast SET u32 = u32 DIV 2, vc = REVERSE(vc), dtm6 = dtm6 + INTERVAL 1 SECOND WHERE id % 7 = ?", rng.IntN(7))
		exec("UPDATE slow SET v = CONCAT(v, 'x') WHERE id % 3 = 0")
	}
	update(400)
	exec("DELETE FROM fast WHERE id % 11 = 0")
	exec("SET SESSION binlog_row_image = MINIMAL")
	update(400)
	exec("DELETE FROM fast WHERE id % 11 = 1")
	exec("SET SESSION binlog_row_image = NOBLOB")
	update(300)
	exec("DELETE FROM fast WHERE id % 11 = 2")
	exec("SET SESSION binlog_row_image = FULL")
	exec("DELETE FROM fast WHERE id % 2 = 0")
	exec("DELETE FROM slow")

	endFile, endPos, err := masterStatus(ctx, srv.DB())
	if err != nil {
		t.Fatal(err)
	}
	filter := NewFilter([]string{schema + ".*"}, nil)
	fast := newRowDecoder()
	want := readChanges(t, srv, startGTID, endFile, endPos, filter, nil)
	got := readChanges(t, srv, startGTID, endFile, endPos, filter, fast)
	if fast.fast == 0 || fast.slow == 0 {
		t.Errorf("fast path decoded %d events and fell back on %d; want both used", fast.fast, fast.slow)
	}
	t.Logf("%d changes; fast path decoded %d rows events, go-mysql %d", len(want), fast.fast, fast.slow)
	if len(got) != len(want) {
		t.Fatalf("fast path read %d changes, go-mysql %d", len(got), len(want))
	}
	var ops [3]int
	bad := 0
	for i := range want {
		w, g := &want[i], &got[i]
		switch w.Op {
		case OpInsert:
			ops[0]++
		case OpUpdate:
			ops[1]++
		case OpDelete:
			ops[2]++
		}
		for _, d := range diffChange(w, g) {
			bad++
			if bad <= 20 {
				t.Errorf("change %d (%s %s.%s pk %v): %s", i, w.Op, w.Schema, w.Table, w.PK, d)
			}
		}
	}
	t.Logf("inserts, updates, deletes: %v", ops)
	if ops[0] < rows || ops[1] < 1000 || ops[2] < rows/2 {
		t.Errorf("changes by op (insert, update, delete) = %v: the test wrote fewer than it should", ops)
	}
	if bad > 20 {
		t.Errorf("%d differences in all", bad)
	}
}

func mustExecDB(t *testing.T, db *sql.DB, q string) {
	t.Helper()
	if _, err := db.Exec(q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// readChanges reads the binlog from gtid up to file:pos the way the reader
// does, with fast (or go-mysql when nil) decoding row images.
func readChanges(t *testing.T, srv *mariadbtest.Server, gtid, file string, pos uint32, filter Filter, fast *rowDecoder) []Change {
	t.Helper()
	syncer := replication.NewBinlogSyncer(replication.BinlogSyncerConfig{
		ServerID: 3_100_000_000 + uint32(rand.IntN(1_000_000)), Flavor: mysql.MariaDBFlavor,
		Host: srv.Host, Port: uint16(srv.Port), User: "root",
		TimestampStringLocation: time.UTC,
		DumpCommandFlag:         replication.BINLOG_SEND_ANNOTATE_ROWS_EVENT,
		RowsEventDecodeFunc:     rowsDecodeFunc(filter, fast),
	})
	defer syncer.Close()
	gs, err := mysql.ParseGTIDSet(mysql.MariaDBFlavor, gtid)
	if err != nil {
		t.Fatal(err)
	}
	streamer, err := syncer.StartSyncGTID(gs)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := NewDecoder(DecoderConfig{Flavor: mysql.MariaDBFlavor, Filter: filter, Schema: newDBSchema(srv.DB())}, "", gtid)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out []Change
	for {
		ev, err := streamer.GetEvent(ctx)
		if err != nil {
			t.Fatalf("read binlog (have %d changes): %v", len(out), err)
		}
		tx, err := dec.Handle(ev)
		if err != nil {
			t.Fatal(err)
		}
		if tx != nil {
			out = append(out, tx.Changes...)
		}
		if dec.file == file && ev.Header.LogPos >= pos && !dec.InTransaction() {
			return out
		}
	}
}

// diffChange lists how g differs from w, value by value, types included.
func diffChange(w, g *Change) []string {
	var out []string
	if w.Op != g.Op || w.Schema != g.Schema || w.Table != g.Table || w.Pos != g.Pos || w.Row != g.Row || w.ID != g.ID {
		out = append(out, fmt.Sprintf("coordinates %s %s.%s %d/%d %s, want %s %s.%s %d/%d %s", g.Op, g.Schema, g.Table, g.Pos, g.Row, g.ID, w.Op, w.Schema, w.Table, w.Pos, w.Row, w.ID))
	}
	if !reflect.DeepEqual(w.Changed, g.Changed) {
		out = append(out, fmt.Sprintf("changed %v, want %v", g.Changed, w.Changed))
	}
	if !reflect.DeepEqual(w.Columns, g.Columns) || !reflect.DeepEqual(w.PKColumns, g.PKColumns) {
		out = append(out, "column lists differ")
	}
	for _, side := range []struct {
		name string
		w, g Row
	}{{"pk", w.PK, g.PK}, {"before", w.Before, g.Before}, {"after", w.After, g.After}} {
		out = append(out, diffRow(side.name, side.w, side.g)...)
	}
	return out
}

func diffRow(name string, w, g Row) []string {
	var out []string
	if (w == nil) != (g == nil) {
		return []string{fmt.Sprintf("%s: nil-ness differs: %v vs %v", name, g, w)}
	}
	for k, wv := range w {
		gv, ok := g[k]
		if !ok {
			out = append(out, fmt.Sprintf("%s.%s missing, want %#v (%T)", name, k, wv, wv))
			continue
		}
		if !sameValue(wv, gv) {
			out = append(out, fmt.Sprintf("%s.%s = %#v (%T), want %#v (%T)", name, k, gv, gv, wv, wv))
		}
	}
	for k, gv := range g {
		if _, ok := w[k]; !ok {
			out = append(out, fmt.Sprintf("%s.%s = %#v, want no such column", name, k, gv))
		}
	}
	return out
}

// sameValue is reflect.DeepEqual (types, nil vs empty slices) except that a
// NaN equals a NaN with the same bits.
func sameValue(a, b any) bool {
	switch x := a.(type) {
	case float64:
		y, ok := b.(float64)
		return ok && math.Float64bits(x) == math.Float64bits(y)
	case float32:
		y, ok := b.(float32)
		return ok && math.Float32bits(x) == math.Float32bits(y)
	}
	return reflect.DeepEqual(a, b)
}

// diffColumn is a column of the differential test's table and a generator
// of random SQL values for it (edge values and NULLs included).
type diffColumn struct {
	name, sqlType string
	gen           func(r *rand.Rand) any
}

func (c diffColumn) random(r *rand.Rand) any {
	if r.IntN(12) == 0 {
		return nil
	}
	return c.gen(r)
}

func diffColumns() []diffColumn {
	intCol := func(name, typ string, lo, hi int64) diffColumn {
		return diffColumn{name, typ, func(r *rand.Rand) any {
			switch r.IntN(6) {
			case 0:
				return lo
			case 1:
				return hi
			case 2:
				return int64(r.IntN(3) - 1)
			}
			if lo == math.MinInt64 {
				return int64(r.Uint64())
			}
			return lo + r.Int64N(hi-lo+1)
		}}
	}
	uintCol := func(name, typ string, hi uint64) diffColumn {
		return diffColumn{name, typ, func(r *rand.Rand) any {
			switch r.IntN(5) {
			case 0:
				return uint64(0)
			case 1:
				return strconv.FormatUint(hi, 10)
			}
			if hi == math.MaxUint64 {
				return strconv.FormatUint(r.Uint64(), 10)
			}
			return strconv.FormatUint(r.Uint64N(hi+1), 10)
		}}
	}
	decCol := func(name string, prec, scale int) diffColumn {
		return diffColumn{name, fmt.Sprintf("DECIMAL(%d,%d)", prec, scale), func(r *rand.Rand) any {
			digits := func(n int, all9 bool) string {
				var b strings.Builder
				for i := 0; i < n; i++ {
					if all9 {
						b.WriteByte('9')
					} else {
						b.WriteByte(byte('0' + r.IntN(10)))
					}
				}
				return b.String()
			}
			sign := ""
			if r.IntN(2) == 0 {
				sign = "-"
			}
			all9 := r.IntN(8) == 0
			ip := "0"
			if prec > scale {
				ip = digits(1+r.IntN(prec-scale), all9)
			}
			switch r.IntN(8) {
			case 0:
				return "0"
			case 1:
				ip = "0"
			}
			if scale == 0 {
				return sign + ip
			}
			return sign + ip + "." + digits(1+r.IntN(scale), all9)
		}}
	}
	bitCol := func(n int) diffColumn {
		return diffColumn{fmt.Sprintf("b%d", n), fmt.Sprintf("BIT(%d)", n), func(r *rand.Rand) any {
			v := r.Uint64()
			if n < 64 {
				v &= 1<<n - 1
			}
			switch r.IntN(5) {
			case 0:
				v = 0
			case 1:
				v = math.MaxUint64 >> (64 - n)
			}
			return strconv.FormatUint(v, 10)
		}}
	}
	frac := func(r *rand.Rand, dec int) string {
		if dec == 0 {
			return ""
		}
		s := fmt.Sprintf(".%06d", r.IntN(1_000_000))
		switch r.IntN(4) {
		case 0:
			s = ".000000"
		case 1:
			s = ".999999"
		}
		return s[:1+dec]
	}
	date := func(r *rand.Rand) string {
		switch r.IntN(10) {
		case 0:
			return "0000-00-00"
		case 1:
			return fmt.Sprintf("%04d-00-00", 1000+r.IntN(9000))
		case 2:
			return "9999-12-31"
		case 3:
			return "1000-01-01"
		}
		return fmt.Sprintf("%04d-%02d-%02d", 1000+r.IntN(9000), 1+r.IntN(12), 1+r.IntN(28))
	}
	datetimeCol := func(dec int) diffColumn {
		typ := "DATETIME"
		if dec > 0 {
			typ = fmt.Sprintf("DATETIME(%d)", dec)
		}
		return diffColumn{fmt.Sprintf("dtm%d", dec), typ, func(r *rand.Rand) any {
			if r.IntN(10) == 0 {
				return "0000-00-00 00:00:00"
			}
			return fmt.Sprintf("%s %02d:%02d:%02d%s", date(r), r.IntN(24), r.IntN(60), r.IntN(60), frac(r, dec))
		}}
	}
	timestampCol := func(dec int) diffColumn {
		typ := "TIMESTAMP NULL"
		if dec > 0 {
			typ = fmt.Sprintf("TIMESTAMP(%d) NULL", dec)
		}
		plus2 := time.FixedZone("+02:00", 2*3600)
		return diffColumn{fmt.Sprintf("ts%d", dec), typ, func(r *rand.Rand) any {
			switch r.IntN(10) {
			case 0:
				return "0000-00-00 00:00:00"
			case 1:
				return time.Unix(1, 0).In(plus2).Format("2006-01-02 15:04:05") + frac(r, dec)
			case 2:
				return time.Unix(math.MaxInt32, 0).In(plus2).Format("2006-01-02 15:04:05") + frac(r, dec)
			}
			return time.Unix(1+r.Int64N(math.MaxInt32-1), 0).In(plus2).Format("2006-01-02 15:04:05") + frac(r, dec)
		}}
	}
	text := func(r *rand.Rand, maxChars int, latin1 bool) string {
		pieces := []string{"a", "Z", " ", "é", "ü", "0", "\n", "'", "\\", "€", "😀", "✓", "ß"}
		if latin1 {
			pieces = []string{"a", "Z", " ", "é", "ü", "0", "\n", "'", "\\", "ß", "¥"}
		}
		n := r.IntN(maxChars + 1)
		switch r.IntN(6) {
		case 0:
			n = 0
		case 1:
			n = maxChars
		}
		var b strings.Builder
		for i := 0; i < n; i++ {
			b.WriteString(pieces[r.IntN(len(pieces))])
		}
		return b.String()
	}
	textCol := func(name, typ string, maxChars int, latin1 bool) diffColumn {
		return diffColumn{name, typ, func(r *rand.Rand) any { return text(r, maxChars, latin1) }}
	}
	binCol := func(name, typ string, maxLen int) diffColumn {
		return diffColumn{name, typ, func(r *rand.Rand) any {
			n := r.IntN(maxLen + 1)
			if r.IntN(5) == 0 {
				n = maxLen
			}
			b := make([]byte, n)
			for i := range b {
				switch r.IntN(3) {
				case 0:
					b[i] = 0
				default:
					b[i] = byte(r.IntN(256))
				}
			}
			return b
		}}
	}
	labels := func(prefix string, n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("%s%d", prefix, i)
		}
		return out
	}
	quoted := func(ls []string) string {
		q := make([]string, len(ls))
		for i, l := range ls {
			q[i] = "'" + l + "'"
		}
		return strings.Join(q, ",")
	}
	enum300, set64 := labels("e", 300), labels("s", 64)
	enumCol := func(name string, ls []string) diffColumn {
		return diffColumn{name, "ENUM(" + quoted(ls) + ")", func(r *rand.Rand) any {
			if r.IntN(10) == 0 {
				return "not a label" // stored as index 0 in non-strict mode
			}
			return ls[r.IntN(len(ls))]
		}}
	}
	setCol := func(name string, ls []string) diffColumn {
		return diffColumn{name, "SET(" + quoted(ls) + ")", func(r *rand.Rand) any {
			var pick []string
			for _, l := range ls {
				if r.IntN(3) == 0 {
					pick = append(pick, l)
				}
			}
			if r.IntN(8) == 0 {
				pick = ls
			}
			return strings.Join(pick, ",")
		}}
	}
	return []diffColumn{
		intCol("i8", "TINYINT", math.MinInt8, math.MaxInt8), uintCol("u8", "TINYINT UNSIGNED", math.MaxUint8),
		intCol("i16", "SMALLINT", math.MinInt16, math.MaxInt16), uintCol("u16", "SMALLINT UNSIGNED", math.MaxUint16),
		intCol("i24", "MEDIUMINT", -1<<23, 1<<23-1), uintCol("u24", "MEDIUMINT UNSIGNED", 1<<24-1),
		intCol("i32", "INT", math.MinInt32, math.MaxInt32), uintCol("u32", "INT UNSIGNED", math.MaxUint32),
		intCol("i64", "BIGINT", math.MinInt64, math.MaxInt64), uintCol("u64", "BIGINT UNSIGNED", math.MaxUint64),
		{"yr", "YEAR", func(r *rand.Rand) any {
			switch r.IntN(5) {
			case 0:
				return 0
			case 1:
				return 1901
			case 2:
				return 2155
			}
			return 1901 + r.IntN(255)
		}},
		{"f", "FLOAT", func(r *rand.Rand) any {
			vs := []float32{0, 0.1, -0.1, 1.5, 3.4e38, -3.4e38, 1.17549435e-38, 123456.79, 16777216}
			if r.IntN(2) == 0 {
				return strconv.FormatFloat(float64(vs[r.IntN(len(vs))]), 'g', -1, 32)
			}
			return strconv.FormatFloat(float64(float32(r.NormFloat64()*math.Pow(10, float64(r.IntN(20)-10)))), 'g', -1, 32)
		}},
		{"d", "DOUBLE", func(r *rand.Rand) any {
			vs := []float64{0, 0.1, -0.1, math.MaxFloat64, -math.MaxFloat64, 2.2250738585072014e-308, math.Pi, 1e15 + 0.3}
			if r.IntN(2) == 0 {
				return strconv.FormatFloat(vs[r.IntN(len(vs))], 'g', -1, 64)
			}
			return strconv.FormatFloat(r.NormFloat64()*math.Pow(10, float64(r.IntN(40)-20)), 'g', -1, 64)
		}},
		decCol("dec0", 10, 0), decCol("dec1", 20, 6), decCol("dec2", 5, 2), decCol("dec3", 65, 30),
		decCol("dec4", 18, 9), decCol("dec5", 9, 9), decCol("dec6", 65, 0), decCol("dec7", 12, 4), decCol("dec8", 1, 0),
		decCol("dec9", 30, 1), decCol("dec10", 19, 17),
		bitCol(1), bitCol(7), bitCol(8), bitCol(10), bitCol(33), bitCol(63), bitCol(64),
		{"dt", "DATE", func(r *rand.Rand) any { return date(r) }},
		datetimeCol(0), datetimeCol(1), datetimeCol(2), datetimeCol(3), datetimeCol(4), datetimeCol(5), datetimeCol(6),
		timestampCol(0), timestampCol(1), timestampCol(2), timestampCol(3), timestampCol(4), timestampCol(5), timestampCol(6),
		textCol("ch", "CHAR(5)", 5, false), textCol("ch100", "CHAR(100)", 100, false), textCol("ch255", "CHAR(255)", 255, false),
		textCol("lat", "CHAR(10) CHARACTER SET latin1", 10, true), textCol("lat255", "CHAR(255) CHARACTER SET latin1", 255, true),
		textCol("vc", "VARCHAR(50)", 50, false), textCol("vc300", "VARCHAR(300)", 300, false),
		textCol("vlat", "VARCHAR(200) CHARACTER SET latin1", 200, true), textCol("vlat300", "VARCHAR(300) CHARACTER SET latin1", 300, true),
		binCol("bin", "BINARY(4)", 4), binCol("bin1", "BINARY(1)", 1), binCol("bin255", "BINARY(255)", 255),
		binCol("vbin", "VARBINARY(10)", 10), binCol("vbin300", "VARBINARY(300)", 300),
		textCol("tt", "TINYTEXT", 60, false), textCol("tx", "TEXT", 300, false), textCol("mtx", "MEDIUMTEXT", 300, false),
		textCol("ltx", "LONGTEXT", 300, false), textCol("ltxlat", "LONGTEXT CHARACTER SET latin1", 100, true),
		binCol("tb", "TINYBLOB", 255), binCol("bl", "BLOB", 300), binCol("mbl", "MEDIUMBLOB", 300), binCol("lbl", "LONGBLOB", 300),
		{"js", "JSON", func(r *rand.Rand) any {
			docs := []string{`{"a": [1, 2.5, "x"], "b": null}`, `[]`, `"é😀"`, `{"k": {"n": -1e10}}`, `true`}
			return docs[r.IntN(len(docs))]
		}},
		enumCol("en", []string{"a", "b", "c"}), enumCol("en300", enum300),
		setCol("st", []string{"x", "y", "z"}), setCol("st64", set64),
	}
}

// The synthetic table of the fuzz test and TestRowDecoder_RandomImages: one
// column of each fast-path shape plus two that force the fallback when a
// test asks for them.
type synthColumn struct {
	name    string
	typ     byte
	meta    []byte // as in the TABLE_MAP
	numeric bool
	// unsigned is the signedness bit of a numeric column.
	unsigned bool
	// charset is the collation of a character column, 0 for none.
	charset uint64
	labels  []string // ENUM or SET
	set     bool
	// enc appends a random valid value.
	enc func(r *rand.Rand, b []byte) []byte
}

func randBytes(r *rand.Rand, b []byte, n int) []byte {
	for i := 0; i < n; i++ {
		b = append(b, byte(r.IntN(256)))
	}
	return b
}

func fixed(n int) func(r *rand.Rand, b []byte) []byte {
	return func(r *rand.Rand, b []byte) []byte { return randBytes(r, b, n) }
}

func prefixed(prefix, maxLen int) func(r *rand.Rand, b []byte) []byte {
	return func(r *rand.Rand, b []byte) []byte {
		n := r.IntN(maxLen + 1)
		var l [4]byte
		binary.LittleEndian.PutUint32(l[:], uint32(n))
		b = append(b, l[:prefix]...)
		for i := 0; i < n; i++ {
			if r.IntN(2) == 0 {
				b = append(b, "aé€ 0"[r.IntN(7)])
			} else {
				b = append(b, byte(r.IntN(256)))
			}
		}
		return b
	}
}

// decimalEnc encodes a random DECIMAL(prec,scale) the way MySQL does.
func decimalEnc(prec, scale int) func(r *rand.Rand, b []byte) []byte {
	return func(r *rand.Rand, b []byte) []byte {
		start := len(b)
		group := func(digits int) {
			size := compressedBytes[digits]
			v := uint32(r.Int64N(int64(math.Pow10(digits))))
			if r.IntN(4) == 0 {
				v = 0
			}
			for k := size - 1; k >= 0; k-- {
				b = append(b, byte(v>>(8*k)))
			}
		}
		integral := prec - scale
		group(integral % digitsPerInteger)
		for range integral / digitsPerInteger {
			group(digitsPerInteger)
		}
		for range scale / digitsPerInteger {
			group(digitsPerInteger)
		}
		group(scale % digitsPerInteger)
		if r.IntN(2) == 0 {
			for k := start; k < len(b); k++ {
				b[k] ^= 0xFF
			}
		}
		b[start] ^= 0x80
		return b
	}
}

func synthColumns() []synthColumn {
	const utf8mb4, latin1, bin = 45, 8, binaryCollation
	strMeta := func(real byte, length int) []byte {
		return []byte{real ^ byte((length&0x300)>>4), byte(length)}
	}
	le16 := func(v int) []byte { return []byte{byte(v), byte(v >> 8)} }
	return []synthColumn{
		{name: "i8", typ: mysql.MYSQL_TYPE_TINY, numeric: true, enc: fixed(1)},
		{name: "u8", typ: mysql.MYSQL_TYPE_TINY, numeric: true, unsigned: true, enc: fixed(1)},
		{name: "i16", typ: mysql.MYSQL_TYPE_SHORT, numeric: true, enc: fixed(2)},
		{name: "u16", typ: mysql.MYSQL_TYPE_SHORT, numeric: true, unsigned: true, enc: fixed(2)},
		{name: "i24", typ: mysql.MYSQL_TYPE_INT24, numeric: true, enc: fixed(3)},
		{name: "u24", typ: mysql.MYSQL_TYPE_INT24, numeric: true, unsigned: true, enc: fixed(3)},
		{name: "i32", typ: mysql.MYSQL_TYPE_LONG, numeric: true, enc: fixed(4)},
		{name: "u32", typ: mysql.MYSQL_TYPE_LONG, numeric: true, unsigned: true, enc: fixed(4)},
		{name: "i64", typ: mysql.MYSQL_TYPE_LONGLONG, numeric: true, enc: fixed(8)},
		{name: "u64", typ: mysql.MYSQL_TYPE_LONGLONG, numeric: true, unsigned: true, enc: fixed(8)},
		{name: "yr", typ: mysql.MYSQL_TYPE_YEAR, numeric: true, enc: fixed(1)},
		{name: "f", typ: mysql.MYSQL_TYPE_FLOAT, meta: []byte{4}, numeric: true, enc: fixed(4)},
		{name: "d", typ: mysql.MYSQL_TYPE_DOUBLE, meta: []byte{8}, numeric: true, enc: fixed(8)},
		{name: "dec1", typ: mysql.MYSQL_TYPE_NEWDECIMAL, meta: []byte{20, 6}, numeric: true, enc: decimalEnc(20, 6)},
		{name: "dec0", typ: mysql.MYSQL_TYPE_NEWDECIMAL, meta: []byte{10, 0}, numeric: true, enc: decimalEnc(10, 0)},
		{name: "dec3", typ: mysql.MYSQL_TYPE_NEWDECIMAL, meta: []byte{65, 30}, numeric: true, enc: decimalEnc(65, 30)},
		{name: "dec5", typ: mysql.MYSQL_TYPE_NEWDECIMAL, meta: []byte{9, 9}, numeric: true, enc: decimalEnc(9, 9)},
		{name: "b10", typ: mysql.MYSQL_TYPE_BIT, meta: le16(1<<8 | 2), enc: fixed(2)},
		{name: "b64", typ: mysql.MYSQL_TYPE_BIT, meta: le16(8 << 8), enc: fixed(8)},
		{name: "b1", typ: mysql.MYSQL_TYPE_BIT, meta: le16(1), enc: fixed(1)},
		{name: "b33", typ: mysql.MYSQL_TYPE_BIT, meta: le16(4<<8 | 1), enc: fixed(5)},
		{name: "dt", typ: mysql.MYSQL_TYPE_DATE, enc: fixed(3)},
		{name: "dtm0", typ: mysql.MYSQL_TYPE_DATETIME2, meta: []byte{0}, enc: fixed(5)},
		{name: "dtm2", typ: mysql.MYSQL_TYPE_DATETIME2, meta: []byte{2}, enc: fixed(6)},
		{name: "dtm3", typ: mysql.MYSQL_TYPE_DATETIME2, meta: []byte{3}, enc: fixed(7)},
		{name: "dtm6", typ: mysql.MYSQL_TYPE_DATETIME2, meta: []byte{6}, enc: fixed(8)},
		{name: "ts0", typ: mysql.MYSQL_TYPE_TIMESTAMP2, meta: []byte{0}, enc: fixed(4)},
		{name: "ts1", typ: mysql.MYSQL_TYPE_TIMESTAMP2, meta: []byte{1}, enc: fixed(5)},
		{name: "ts4", typ: mysql.MYSQL_TYPE_TIMESTAMP2, meta: []byte{4}, enc: fixed(6)},
		{name: "ts5", typ: mysql.MYSQL_TYPE_TIMESTAMP2, meta: []byte{5}, enc: fixed(7)},
		{name: "en", typ: mysql.MYSQL_TYPE_STRING, meta: []byte{mysql.MYSQL_TYPE_ENUM, 1}, labels: []string{"a", "b", "c"}, enc: fixed(1)},
		{name: "en2", typ: mysql.MYSQL_TYPE_STRING, meta: []byte{mysql.MYSQL_TYPE_ENUM, 2}, labels: make([]string, 300), enc: fixed(2)},
		{name: "st", typ: mysql.MYSQL_TYPE_STRING, meta: []byte{mysql.MYSQL_TYPE_SET, 1}, labels: []string{"x", "y", "z"}, set: true, enc: fixed(1)},
		{name: "st8", typ: mysql.MYSQL_TYPE_STRING, meta: []byte{mysql.MYSQL_TYPE_SET, 8}, labels: make([]string, 64), set: true, enc: fixed(8)},
		{name: "ch", typ: mysql.MYSQL_TYPE_STRING, meta: strMeta(mysql.MYSQL_TYPE_STRING, 40), charset: utf8mb4, enc: prefixed(1, 40)},
		{name: "ch400", typ: mysql.MYSQL_TYPE_STRING, meta: strMeta(mysql.MYSQL_TYPE_STRING, 400), charset: utf8mb4, enc: prefixed(2, 400)},
		{name: "bin4", typ: mysql.MYSQL_TYPE_STRING, meta: strMeta(mysql.MYSQL_TYPE_STRING, 4), charset: bin, enc: prefixed(1, 4)},
		{name: "vc", typ: mysql.MYSQL_TYPE_VARCHAR, meta: le16(200), charset: utf8mb4, enc: prefixed(1, 200)},
		{name: "vc1200", typ: mysql.MYSQL_TYPE_VARCHAR, meta: le16(1200), charset: utf8mb4, enc: prefixed(2, 300)},
		{name: "vbin", typ: mysql.MYSQL_TYPE_VARCHAR, meta: le16(10), charset: bin, enc: prefixed(1, 10)},
		{name: "lat", typ: mysql.MYSQL_TYPE_VARCHAR, meta: le16(300), charset: latin1, enc: prefixed(2, 300)},
		{name: "tt", typ: mysql.MYSQL_TYPE_BLOB, meta: []byte{1}, charset: utf8mb4, enc: prefixed(1, 255)},
		{name: "tx", typ: mysql.MYSQL_TYPE_BLOB, meta: []byte{2}, charset: utf8mb4, enc: prefixed(2, 300)},
		{name: "mtx", typ: mysql.MYSQL_TYPE_BLOB, meta: []byte{3}, charset: latin1, enc: prefixed(3, 300)},
		{name: "ltx", typ: mysql.MYSQL_TYPE_BLOB, meta: []byte{4}, charset: utf8mb4, enc: prefixed(4, 300)},
		{name: "bl", typ: mysql.MYSQL_TYPE_BLOB, meta: []byte{2}, charset: bin, enc: prefixed(2, 300)},
		{name: "lbl", typ: mysql.MYSQL_TYPE_BLOB, meta: []byte{4}, charset: bin, enc: prefixed(4, 300)},
	}
}

// synthEvents builds a FORMAT_DESCRIPTION and a TABLE_MAP event for cols,
// as MariaDB 10.11 writes them (CRC32 checksums, 6-byte table ids).
func synthEvents(cols []synthColumn) (fde, tme []byte) {
	body := binary.LittleEndian.AppendUint16(nil, 4)
	var ver [50]byte
	copy(ver[:], "10.11.19-MariaDB-log")
	body = append(body, ver[:]...)
	body = append(body, 0, 0, 0, 0, replication.EventHeaderSize)
	body = append(body, bytes.Repeat([]byte{8}, 200)...) // post-header lengths: any but 6
	body = append(body, byte(replication.BINLOG_CHECKSUM_ALG_CRC32), 0, 0, 0, 0)
	fde = synthEvent(replication.FORMAT_DESCRIPTION_EVENT, body)

	body = []byte{42, 0, 0, 0, 0, 0, 1, 0}
	body = append(body, 2, 'd', 'b', 0, 1, 't', 0, byte(len(cols)))
	var meta []byte
	for _, c := range cols {
		body = append(body, c.typ)
		meta = append(meta, c.meta...)
	}
	body = append(body, byte(len(meta)))
	body = append(body, meta...)
	body = append(body, bytes.Repeat([]byte{0xFF}, (len(cols)+7)/8)...)
	appendTLV := func(b []byte, t byte, v []byte) []byte {
		b = append(b, t)
		b = append(b, mysql.PutLengthEncodedInt(uint64(len(v)))...)
		return append(b, v...)
	}
	var sign, charsets, names, enums, sets []byte
	nNumeric := 0
	for _, c := range cols {
		if c.numeric {
			if nNumeric%8 == 0 {
				sign = append(sign, 0)
			}
			if c.unsigned {
				sign[len(sign)-1] |= 0x80 >> (nNumeric % 8)
			}
			nNumeric++
		}
		if c.charset != 0 {
			charsets = append(charsets, mysql.PutLengthEncodedInt(c.charset)...)
		}
		names = append(names, byte(len(c.name)))
		names = append(names, c.name...)
		if c.labels != nil {
			v := mysql.PutLengthEncodedInt(uint64(len(c.labels)))
			for i, l := range c.labels {
				if l == "" {
					l = "l" + strconv.Itoa(i)
				}
				v = append(v, mysql.PutLengthEncodedInt(uint64(len(l)))...)
				v = append(v, l...)
			}
			if c.set {
				sets = append(sets, v...)
			} else {
				enums = append(enums, v...)
			}
		}
	}
	body = appendTLV(body, replication.TABLE_MAP_OPT_META_SIGNEDNESS, sign)
	body = appendTLV(body, replication.TABLE_MAP_OPT_META_COLUMN_CHARSET, charsets)
	body = appendTLV(body, replication.TABLE_MAP_OPT_META_COLUMN_NAME, names)
	body = appendTLV(body, replication.TABLE_MAP_OPT_META_SET_STR_VALUE, sets)
	body = appendTLV(body, replication.TABLE_MAP_OPT_META_ENUM_STR_VALUE, enums)
	body = appendTLV(body, replication.TABLE_MAP_OPT_META_SIMPLE_PRIMARY_KEY, []byte{0})
	tme = synthEvent(replication.TABLE_MAP_EVENT, append(body, 0, 0, 0, 0))
	return fde, tme
}

func synthEvent(t replication.EventType, body []byte) []byte {
	h := make([]byte, replication.EventHeaderSize)
	h[4] = byte(t)
	binary.LittleEndian.PutUint32(h[9:], uint32(len(h)+len(body)))
	return append(h, body...)
}

// rowsEventTypes are the rows event types the fuzz input picks from.
var rowsEventTypes = []replication.EventType{
	replication.WRITE_ROWS_EVENTv1, replication.UPDATE_ROWS_EVENTv1, replication.DELETE_ROWS_EVENTv1,
	replication.WRITE_ROWS_EVENTv2, replication.UPDATE_ROWS_EVENTv2, replication.DELETE_ROWS_EVENTv2,
}

// synthRowsEvent wraps row images in a rows event of type kind for the
// synthetic table, with column bitmaps bm1 and bm2 and 4 checksum bytes.
func synthRowsEvent(ncols int, kind uint8, bm1, bm2 uint64, images []byte) ([]byte, bool) {
	return synthRowsEventOf(rowsEventTypes[int(kind)%len(rowsEventTypes)], ncols, bm1, bm2, images)
}

func synthRowsEventOf(t replication.EventType, ncols int, bm1, bm2 uint64, images []byte) ([]byte, bool) {
	body := []byte{42, 0, 0, 0, 0, 0, 1, 0}
	if t == replication.WRITE_ROWS_EVENTv2 || t == replication.UPDATE_ROWS_EVENTv2 || t == replication.DELETE_ROWS_EVENTv2 {
		body = append(body, 2, 0)
	}
	body = append(body, byte(ncols))
	n := (ncols + 7) / 8
	bitmap := func(bm uint64) ([]byte, bool) {
		var b []byte
		any := false
		for i := 0; i < n; i++ {
			x := byte(bm >> (8 * (i % 8)))
			if i == n-1 && ncols%8 != 0 {
				if x&byte(1<<(ncols%8)-1) != 0 {
					any = true
				}
			} else if x != 0 {
				any = true
			}
			b = append(b, x)
		}
		return b, any
	}
	b1, ok1 := bitmap(bm1)
	body = append(body, b1...)
	ok := ok1
	if t == replication.UPDATE_ROWS_EVENTv1 || t == replication.UPDATE_ROWS_EVENTv2 {
		b2, ok2 := bitmap(bm2)
		body = append(body, b2...)
		ok = ok && ok2
	}
	body = append(body, images...)
	body = append(body, 0xde, 0xad, 0xbe, 0xef)
	// An image with no column present never ends: go-mysql loops forever.
	return synthEvent(t, body), ok
}

// synthImage appends a random valid row image: NULL bitmap, then values.
func synthImage(r *rand.Rand, cols []synthColumn, bm uint64, b []byte) []byte {
	var present []int
	for i := range cols {
		if bm>>(i%64)&1 != 0 {
			present = append(present, i)
		}
	}
	nulls := make([]byte, (len(present)+7)/8)
	var vals []byte
	for k, i := range present {
		if r.IntN(8) == 0 {
			nulls[k/8] |= 1 << (k % 8)
			continue
		}
		vals = cols[i].enc(r, vals)
	}
	b = append(b, nulls...)
	return append(b, vals...)
}

// decodePair parses a rows event with go-mysql's decoding and with the fast
// path (raw, without the fallback), after fde and tme.
type decodePair struct {
	slow, fast *replication.BinlogParser
	dec        *rowDecoder
	table      *table
}

func newDecodePair(t testing.TB, fde, tme []byte) *decodePair {
	p := &decodePair{slow: replication.NewBinlogParser(), fast: replication.NewBinlogParser(), dec: newRowDecoder()}
	for _, bp := range []*replication.BinlogParser{p.slow, p.fast} {
		bp.SetFlavor(mysql.MariaDBFlavor)
		bp.SetTimestampStringLocation(time.UTC)
		if _, err := bp.Parse(fde); err != nil {
			t.Fatal(err)
		}
		ev, err := bp.Parse(tme)
		if err != nil {
			t.Fatal(err)
		}
		if p.table == nil {
			p.table, err = newTable(ev.Event.(*replication.TableMapEvent), mysql.MariaDBFlavor, nil)
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	p.fast.SetRowsEventDecodeFunc(rowsDecodeFunc(Filter{}, p.dec))
	return p
}

// check decodes raw both ways and fails t unless both fail or both give
// the same converted rows; fastErr reports whether the fast path declined.
func (p *decodePair) check(t testing.TB, raw []byte) (declined bool) {
	t.Helper()
	before := p.dec.slow
	want, werr := p.slow.Parse(bytes.Clone(raw))
	got, gerr := p.fast.Parse(bytes.Clone(raw))
	declined = p.dec.slow != before
	if (werr != nil) != (gerr != nil) {
		t.Fatalf("go-mysql error %v, fast path error %v", werr, gerr)
	}
	if werr != nil {
		return declined
	}
	wr, gr := want.Event.(*replication.RowsEvent), got.Event.(*replication.RowsEvent)
	if len(wr.Rows) != len(gr.Rows) {
		t.Fatalf("go-mysql decoded %d row images, fast path %d", len(wr.Rows), len(gr.Rows))
	}
	for i := range wr.Rows {
		wSkip, gSkip := skippedAt(wr.SkippedColumns, i), skippedAt(gr.SkippedColumns, i)
		if len(wSkip) != len(gSkip) || (len(wSkip) > 0 && !reflect.DeepEqual(wSkip, gSkip)) {
			t.Fatalf("image %d: skipped %v, want %v", i, gSkip, wSkip)
		}
		wRow, werr := p.table.image(wr.Rows[i], wSkip)
		gRow, gerr := p.table.image(gr.Rows[i], gSkip)
		if (werr != nil) != (gerr != nil) || (werr != nil && werr.Error() != gerr.Error()) {
			t.Fatalf("image %d: converter error %v, want %v", i, gerr, werr)
		}
		if d := diffRow("image "+strconv.Itoa(i), wRow, gRow); len(d) > 0 {
			t.Fatalf("%s", strings.Join(d, "\n"))
		}
	}
	return declined
}

// TestRowDecoder_RandomImages runs random valid row images of every
// fast-path shape, with random NULLs and column bitmaps (MINIMAL images),
// through go-mysql and the fast path.
func TestRowDecoder_RandomImages(t *testing.T) {
	cols := synthColumns()
	fde, tme := synthEvents(cols)
	p := newDecodePair(t, fde, tme)
	r := rand.New(rand.NewPCG(3, 4))
	full := uint64(1)<<len(cols) - 1
	fast := 0
	for n := 0; n < 3000; n++ {
		kind := uint8(r.IntN(len(rowsEventTypes)))
		bm1, bm2 := full, full
		if r.IntN(3) == 0 {
			bm1, bm2 = r.Uint64()&full|1, r.Uint64()&full|1
		}
		var images []byte
		for k := 0; k < 1+r.IntN(5); k++ {
			images = synthImage(r, cols, bm1, images)
			if t := rowsEventTypes[kind]; t == replication.UPDATE_ROWS_EVENTv1 || t == replication.UPDATE_ROWS_EVENTv2 {
				images = synthImage(r, cols, bm2, images)
			}
		}
		raw, _ := synthRowsEvent(len(cols), kind, bm1, bm2, images)
		if !p.check(t, raw) {
			fast++
		}
	}
	if fast < 2900 {
		t.Errorf("fast path decoded %d of 3000 valid events", fast)
	}
}

// TestRowDecoder_Fallback checks that shapes the fast path leaves alone
// reach go-mysql and still decode the same.
func TestRowDecoder_Fallback(t *testing.T) {
	cols := synthColumns()
	cols = append(cols, synthColumn{name: "tm", typ: mysql.MYSQL_TYPE_TIME2, meta: []byte{3}, enc: fixed(5)})
	fde, tme := synthEvents(cols)
	p := newDecodePair(t, fde, tme)
	r := rand.New(rand.NewPCG(5, 6))
	full := uint64(1)<<len(cols) - 1
	raw, _ := synthRowsEvent(len(cols), 0, full, full, synthImage(r, cols, full, nil))
	if !p.check(t, raw) {
		t.Error("a TIME2 column did not fall back")
	}
	cols = synthColumns()
	fde, tme = synthEvents(cols)
	p = newDecodePair(t, fde, tme)
	full = uint64(1)<<len(cols) - 1

	// Compressed MariaDB rows events and MySQL partial JSON updates are
	// left to go-mysql; only the event type is looked at.
	for typ, want := range map[replication.EventType]bool{
		replication.WRITE_ROWS_EVENTv1: true, replication.UPDATE_ROWS_EVENTv2: true, replication.DELETE_ROWS_EVENTv2: true,
		replication.MARIADB_WRITE_ROWS_COMPRESSED_EVENT_V1: false, replication.MARIADB_UPDATE_ROWS_COMPRESSED_EVENT_V1: false,
		replication.PARTIAL_UPDATE_ROWS_EVENT: false, replication.WRITE_ROWS_EVENTv0: false,
	} {
		bp := replication.NewBinlogParser()
		if _, err := bp.Parse(fde); err != nil {
			t.Fatal(err)
		}
		if _, err := bp.Parse(tme); err != nil {
			t.Fatal(err)
		}
		var got, called bool
		bp.SetRowsEventDecodeFunc(func(e *replication.RowsEvent, data []byte) error {
			if _, err := e.DecodeHeader(data); err != nil {
				return err
			}
			called, got = true, fastEventType(e)
			return nil
		})
		v2 := typ == replication.UPDATE_ROWS_EVENTv2 || typ == replication.DELETE_ROWS_EVENTv2 || typ == replication.PARTIAL_UPDATE_ROWS_EVENT
		bitmap := bytes.Repeat([]byte{0xFF}, (len(cols)+7)/8)
		body := []byte{42, 0, 0, 0, 0, 0, 1, 0}
		if v2 {
			body = append(body, 2, 0)
		}
		body = append(body, byte(len(cols)))
		body = append(body, bitmap...)
		if typ == replication.UPDATE_ROWS_EVENTv2 || typ == replication.MARIADB_UPDATE_ROWS_COMPRESSED_EVENT_V1 || typ == replication.PARTIAL_UPDATE_ROWS_EVENT {
			body = append(body, bitmap...)
		}
		if _, err := bp.Parse(synthEvent(typ, append(body, 0, 0, 0, 0))); err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		if !called || got != want {
			t.Errorf("%s: fast path %v, want %v", typ, got, want)
		}
	}
	// A truncated image: go-mysql decides.
	img := synthImage(r, cols, full, nil)
	raw, _ = synthRowsEvent(len(cols), 0, full, full, img[:len(img)/2])
	if !p.check(t, raw) {
		t.Error("a truncated image was not handed to go-mysql")
	}
}

// FuzzRowImage feeds random row-image bytes for a fixed table map to
// go-mysql and to the fast path: both must fail, or give the same values
// after the converters, and neither may panic.
func FuzzRowImage(f *testing.F) {
	cols := synthColumns()
	fde, tme := synthEvents(cols)
	full := uint64(1)<<len(cols) - 1
	r := rand.New(rand.NewPCG(7, 8))
	for k := 0; k < 6; k++ {
		bm := full
		if k >= 3 {
			bm = r.Uint64() & full
		}
		img := synthImage(r, cols, bm, nil)
		img = synthImage(r, cols, bm, img)
		f.Add(uint8(k), bm, bm, img)
	}
	f.Fuzz(func(t *testing.T, kind uint8, bm1, bm2 uint64, images []byte) {
		raw, ok := synthRowsEvent(len(cols), kind, bm1, bm2, images)
		if !ok {
			t.Skip("no column present")
		}
		p := newDecodePair(t, fde, tme)
		p.check(t, raw)
	})
}

// TestRowDecoder_Values pins a few renderings against go-mysql's own
// formatting directly.
func TestRowDecoder_Values(t *testing.T) {
	a := &strArena{}
	ts := binary.BigEndian.AppendUint32(nil, uint32(time.Date(2024, 2, 29, 13, 14, 15, 0, time.UTC).Unix()))
	ts = binary.BigEndian.AppendUint16(ts, 2500)
	for _, tc := range []struct {
		name string
		got  string
		want string
	}{
		{"datetime2 zero frac", datetime2([]byte{0x80, 0, 0, 0, 0, 0x12}, 2, a), "0000-00-00 00:00:00.18"},
		{"timestamp2 zero", timestamp2([]byte{0, 0, 0, 0, 0, 0}, 3, a), "0000-00-00 00:00:00.000"},
		{"timestamp2", timestamp2(ts, 3, a), "2024-02-29T13:14:15.250Z"},
		{"date", mustValue(t, colPlan{kind: kDate, size: 3}, []byte{0x5d, 0xd0, 0x0f}), "2024-02-29"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %q, want %q", tc.name, tc.got, tc.want)
		}
	}
}

func mustValue(t *testing.T, c colPlan, b []byte) string {
	t.Helper()
	v, _, err := c.value(b, 0, &strArena{})
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(v)
}

func TestAppendPadded(t *testing.T) {
	for _, v := range []int64{0, 5, -5, 12345, -12345, math.MinInt64, math.MaxInt64, -1} {
		for _, w := range []int{0, 2, 4, 6, 9} {
			want := fmt.Sprintf("%0*d", w, v)
			if got := string(appendPadded(nil, v, w)); got != want {
				t.Errorf("appendPadded(%d, %d) = %q, want %q", v, w, got, want)
			}
		}
	}
}
