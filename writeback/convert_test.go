package writeback

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/rowhook/rowhook/cdc"
)

func TestColumn_Convert(t *testing.T) {
	vc := &column{Name: "c", DataType: "varchar", ColumnType: "varchar(5)", CharMax: 5, OctetMax: 15, Charset: "utf8mb3", Nullable: true}
	notNull := &column{Name: "c", DataType: "varchar", ColumnType: "varchar(5)", CharMax: 5, OctetMax: 20, Charset: "utf8mb4"}
	text := &column{Name: "c", DataType: "text", ColumnType: "text", OctetMax: 65535, Charset: "utf8mb4", Nullable: true}
	tiny := &column{Name: "c", DataType: "tinytext", ColumnType: "tinytext", OctetMax: 255, Charset: "utf8mb4"}
	i32 := &column{Name: "c", DataType: "int", ColumnType: "int(11)"}
	u8 := &column{Name: "c", DataType: "tinyint", ColumnType: "tinyint(3) unsigned", Unsigned: true}
	u64 := &column{Name: "c", DataType: "bigint", ColumnType: "bigint(20) unsigned", Unsigned: true}
	dec := &column{Name: "c", DataType: "decimal", ColumnType: "decimal(7,3)", Precision: 7, Scale: 3}
	dbl := &column{Name: "c", DataType: "double", ColumnType: "double"}
	date := &column{Name: "c", DataType: "date", ColumnType: "date"}
	dt0 := &column{Name: "c", DataType: "datetime", ColumnType: "datetime"}
	dt3 := &column{Name: "c", DataType: "datetime", ColumnType: "datetime(3)", DTPrec: 3}
	ts := &column{Name: "c", DataType: "timestamp", ColumnType: "timestamp"}
	tm := &column{Name: "c", DataType: "time", ColumnType: "time"}
	yr := &column{Name: "c", DataType: "year", ColumnType: "year(4)"}
	enum := &column{Name: "c", DataType: "enum", ColumnType: "enum('open','won','it''s')", Labels: parseLabels("enum('open','won','it''s')")}
	set := &column{Name: "c", DataType: "set", ColumnType: "set('a','b')", Labels: []string{"a", "b"}}
	js := &column{Name: "c", DataType: "json", ColumnType: "longtext", Nullable: true}
	bin := &column{Name: "c", DataType: "varbinary", ColumnType: "varbinary(4)", OctetMax: 4}
	bit := &column{Name: "c", DataType: "bit", ColumnType: "bit(3)", Precision: 3}

	tests := []struct {
		name   string
		col    *column
		in     any
		want   any
		reason string // non-empty: expect a ConversionError containing it
	}{
		{"varchar fits", vc, "héllo", "héllo", ""},
		{"varchar too long", vc, "hello!", nil, "6 characters, longer than the column's 5"},
		{"varchar 4-byte char in utf8mb3", vc, "a😀", nil, "U+1F600"},
		{"varchar from int", vc, 12345, "12345", ""},
		{"varchar from float", vc, 1.5, "1.5", ""},
		{"varchar invalid utf8", vc, "\xff", nil, "not valid UTF-8"},
		{"null into nullable", vc, nil, nil, ""},
		{"null into not null", notNull, nil, nil, "NOT NULL"},
		{"text bytes", tiny, strings.Repeat("é", 128), nil, "256 bytes, longer than the column's 255"},
		{"text map as json", text, map[string]any{"a": 1}, `{"a":1}`, ""},
		{"int", i32, 42, int64(42), ""},
		{"int from string", i32, "-7", int64(-7), ""},
		{"int from whole float", i32, 3.0, int64(3), ""},
		{"int from fraction", i32, 3.5, nil, "not a whole number"},
		{"int overflow", i32, int64(1) << 31, nil, "out of range -2147483648 to 2147483647"},
		{"int from words", i32, "abc", nil, "not a whole number"},
		{"int from bool", i32, true, int64(1), ""},
		{"int from map", i32, map[string]any{}, nil, "an integer column takes a number"},
		{"unsigned negative", u8, -1, nil, "out of range 0 to 255"},
		{"unsigned 256", u8, 256, nil, "out of range 0 to 255"},
		{"bigint unsigned max", u64, "18446744073709551615", uint64(18446744073709551615), ""},
		{"decimal exact", dec, "1234.5", "1234.5", ""},
		{"decimal from float", dec, 0.125, "0.125", ""},
		{"decimal trailing zeros", dec, "1.25000", "1.25", ""},
		{"decimal rounding refused", dec, "1.2345", nil, "4 decimal places; the column keeps 3"},
		{"decimal too big", dec, 12345, nil, "5 digits before the decimal point; the column allows 4"},
		{"decimal cdc", dec, cdc.Decimal("-0.500"), "-0.5", ""},
		{"decimal words", dec, "1e3", nil, "not a decimal number"},
		{"double", dbl, "2.5", 2.5, ""},
		{"date", date, "2026-12-31", "2026-12-31", ""},
		{"date from midnight datetime", date, "2026-12-31 00:00:00", "2026-12-31", ""},
		{"date with time", date, "2026-12-31 10:00:00", nil, "cannot hold the time of day"},
		{"date invalid", date, "2026-02-30", nil, "not a date"},
		{"date from number", date, 20261231, nil, "takes a string"},
		{"datetime rfc3339 to utc", dt0, "2026-01-02T03:04:05+02:00", "2026-01-02 01:04:05", ""},
		{"datetime fraction refused", dt0, "2026-01-02 03:04:05.5", nil, "1 fractional second digits; the column keeps 0"},
		{"datetime(3) fraction", dt3, "2026-01-02 03:04:05.125", "2026-01-02 03:04:05.125", ""},
		{"timestamp before 1970", ts, "1969-12-31 23:59:59", nil, "before the TIMESTAMP range"},
		{"time", tm, "-838:59:59", "-838:59:59", ""},
		{"time bad", tm, "25h", nil, "not a time"},
		{"year", yr, 2026, int64(2026), ""},
		{"year out of range", yr, 1800, nil, "out of range 1901 to 2155"},
		{"enum member", enum, "WON", "won", ""},
		{"enum quote", enum, "it's", "it's", ""},
		{"enum not member", enum, "closed", nil, `not one of ["open", "won", "it's"]`},
		{"set members", set, "b,A", "b,a", ""},
		{"set bad member", set, "a,c", nil, `member "c" is not one of`},
		{"json text", js, `{"id":1}`, `{"id":1}`, ""},
		{"json bad text", js, `id=1`, nil, "not a JSON document"},
		{"json value", js, []any{1, "a"}, `[1,"a"]`, ""},
		{"binary", bin, "abcd", []byte("abcd"), ""},
		{"binary too long", bin, "abcde", nil, "5 bytes, longer than the column's 4"},
		{"bit", bit, 7, int64(7), ""},
		{"bit too big", bit, 8, nil, "out of range 0 to 7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.col.convert("db.t", tt.in)
			if tt.reason != "" {
				var ce *ConversionError
				if !errors.As(err, &ce) {
					t.Fatalf("convert(%v) = %v, %v; want ConversionError %q", tt.in, got, err, tt.reason)
				}
				if !strings.Contains(ce.Reason, tt.reason) || ce.Table != "db.t" || ce.Column != "c" || ce.Type != tt.col.ColumnType {
					t.Errorf("ConversionError = %+v, want reason %q", ce, tt.reason)
				}
				if !IsPermanent(err) {
					t.Errorf("ConversionError not permanent")
				}
				return
			}
			if err != nil {
				t.Fatalf("convert(%v): %v", tt.in, err)
			}
			if fmt.Sprintf("%#v", got) != fmt.Sprintf("%#v", tt.want) {
				t.Errorf("convert(%v) = %#v, want %#v", tt.in, got, tt.want)
			}
		})
	}
}

func TestConversionError_Error(t *testing.T) {
	e := &ConversionError{Table: "vtiger.vtiger_potentialscf", Column: "cf_erp_id", Value: strings.Repeat("x", 200), Type: "varchar(20)", Reason: "200 characters, longer than the column's 20"}
	got := e.Error()
	if !strings.HasPrefix(got, `writeback: vtiger.vtiger_potentialscf.cf_erp_id varchar(20): value "xxx`) || !strings.Contains(got, "…: 200 characters") {
		t.Errorf("Error() = %s", got)
	}
	if len(got) > 200 {
		t.Errorf("Error() not shortened: %d bytes", len(got))
	}
}
