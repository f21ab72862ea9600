package writeback

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/expr-lang/expr"
	"github.com/go-sql-driver/mysql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/internal/yamlconf"
)

func TestConfig_Validate(t *testing.T) {
	ok := DefaultConfig()
	ok.DSN = "crm:secret@tcp(primary:3306)/vtiger"
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string // "" = valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"url dsn", func(c *Config) { c.DSN = "mysql://crm:secret@primary:3306/vtiger" }, ""},
		{"empty dsn is allowed", func(c *Config) { c.DSN = "" }, ""},
		{"bad dsn", func(c *Config) { c.DSN = "crm:secret@primary/vtiger" }, "writeback.dsn: bad DSN"},
		{"bad scheme", func(c *Config) { c.DSN = "postgres://crm:secret@primary/vtiger" }, "writeback.dsn: URL scheme must be mysql://"},
		{"bad mode", func(c *Config) { c.Mode = "tag" }, `writeback.mode: must be auto, annotate or marker, not "tag"`},
		{"bad marker table", func(c *Config) { c.MarkerTable = "a.b.c" }, "writeback.marker_table: must be table or schema.table"},
		{"negative timeout", func(c *Config) { c.Timeout = -time.Second }, "writeback.timeout: must not be negative"},
		{"sub-second lock wait", func(c *Config) { c.LockWaitTimeout = 500 * time.Millisecond }, "writeback.lock_wait_timeout: must be at least 1s"},
		{"backoff above max", func(c *Config) { c.Backoff = time.Hour }, "writeback.backoff: must not exceed writeback.max_backoff"},
		{"negative attempts", func(c *Config) { c.MaxAttempts = -1 }, "writeback.max_attempts: must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.mutate(&c)
			err := c.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want %q", err, tt.want)
			}
			var pe *yamlconf.PathError
			if !errors.As(err, &pe) {
				t.Errorf("error %v is not a *yamlconf.PathError", err)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error leaks the password: %v", err)
			}
		})
	}
}

func TestConfig_RequireDSN(t *testing.T) {
	if err := (Config{}).RequireDSN(nil); err != nil {
		t.Errorf("no rules: %v", err)
	}
	err := (Config{}).RequireDSN([]string{"b", "a"})
	if err == nil || !strings.Contains(err.Error(), "writeback.dsn: is required: rules a, b write back") {
		t.Errorf("RequireDSN = %v", err)
	}
}

func TestConfig_RetryDelay(t *testing.T) {
	c := Config{Backoff: time.Second, MaxBackoff: 10 * time.Second}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
	for i, w := range want {
		if got := c.RetryDelay(i + 1); got != w {
			t.Errorf("RetryDelay(%d) = %s, want %s", i+1, got, w)
		}
	}
	if got := c.RetryDelay(200); got != 10*time.Second {
		t.Errorf("RetryDelay(200) = %s (overflow?)", got)
	}
}

func TestMapping_Validate(t *testing.T) {
	tests := []struct {
		name string
		m    Mapping
		want []string // substrings; none = valid
	}{
		{"valid", Mapping{Table: "vtiger.vtiger_potentialscf", Key: map[string]string{"potentialid": "row.potentialid"},
			Set: map[string]string{"cf_erp_id": "response.json.id"}, When: "response.status == 201"}, nil},
		{"missing everything", Mapping{}, []string{"rules[3].writeback.table: is required", "rules[3].writeback.key: is required", "rules[3].writeback.set: is required"}},
		{"unknown name", Mapping{Table: "t", Key: map[string]string{"id": "row.id"}, Set: map[string]string{"c": "respons.body"}},
			[]string{`rules[3].writeback.set.c: unknown name respons (did you mean response?)`}},
		{"when not bool", Mapping{Table: "t", Key: map[string]string{"id": "row.id"}, Set: map[string]string{"c": "1"}, When: "response.status"},
			[]string{"rules[3].writeback.when: expected bool, but got int"}},
		{"key also set", Mapping{Table: "t", Key: map[string]string{"id": "row.id"}, Set: map[string]string{"id": "1"}},
			[]string{"rules[3].writeback.set.id: column id is also a key column"}},
		{"bad table", Mapping{Table: "a.b.c", Key: map[string]string{"id": "row.id"}, Set: map[string]string{"c": "1"}},
			[]string{"rules[3].writeback.table: bad table"}},
		{"bad column name", Mapping{Table: "t", Key: map[string]string{"id": "row.id"}, Set: map[string]string{"a`b": "1"}},
			[]string{"contains a backquote"}},
		{"syntax error", Mapping{Table: "t", Key: map[string]string{"id": "row.id"}, Set: map[string]string{"c": "response.json.id +"}},
			[]string{"rules[3].writeback.set.c: unexpected token EOF"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := tt.m
			err := m.Validate("rules[3].writeback")
			if m.Path != "rules[3].writeback" {
				t.Errorf("Path = %q", m.Path)
			}
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate = %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate = nil, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate = %v\nwant it to contain %q", err, w)
				}
			}
		})
	}
}

func TestMapping_Validate_offset(t *testing.T) {
	m := Mapping{Table: "t", Key: map[string]string{"id": "row.id"}, Set: map[string]string{"c": "response.status + nope"}}
	err := m.Validate("rules[0].writeback")
	var pe *yamlconf.PathError
	if !errors.As(err, &pe) {
		t.Fatalf("err %v has no PathError", err)
	}
	if pe.Path != "rules[0].writeback.set.c" || pe.Offset != strings.Index("response.status + nope", "nope") {
		t.Errorf("path %q offset %d", pe.Path, pe.Offset)
	}
}

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

func TestNewEnv(t *testing.T) {
	resp := Response{
		Status: 201,
		Header: http.Header{"X-Erp-Id": {"E-1"}, "Set-Cookie": {"a", "b"}},
		Body:   []byte(`{"id": 9007199254740993, "big": 123456789012345678901234, "amount": 12.5, "data": {"items": [{"id": "first"}]}}`),
		SOAP:   map[string]any{"CreateResult": map[string]any{"Id": "S-1"}},
	}
	env := NewEnv(resp, map[string]any{"potentialid": int64(7)}, nil)
	tests := []struct {
		src  string
		want any
	}{
		{"response.status", 201},
		{`response.headers["x-erp-id"]`, "E-1"},
		{`response.headers["X-Erp-Id"]`, "E-1"},
		{`response.headers?.Get("X-Erp-Id")`, "E-1"},
		{`response.headers.Get("X-ERP-ID")`, "E-1"},
		{`response.headers.Get("set-cookie")`, "a, b"},
		{`response.headers.Get("missing")`, ""},
		{"response.json.id", 9007199254740993},
		{"response.json.big", "123456789012345678901234"},
		{"response.json.amount", 12.5},
		{"response.json.data.items[0].id", "first"},
		{`jsonPath(response.body, "data.items.0.id")`, "first"},
		{`jsonPath(response.body, "id")`, 9007199254740993},
		{`jsonPath(response.body, "nope")`, nil},
		{`jsonRaw(response.body, "amount")`, "12.5"},
		{`jsonRaw(response.body, "data.items.0")`, `{"id": "first"}`},
		{"response.soap.CreateResult.Id", "S-1"},
		{"row.potentialid", int64(7)},
		{"old.potentialid", nil},
		{`toJSON(response.json.data)`, `{"items":[{"id":"first"}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			prog, err := compileExpr("x", tt.src, false)
			if err != nil {
				t.Fatal(err)
			}
			got, err := expr.Run(prog, env)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprintf("%#v", got) != fmt.Sprintf("%#v", tt.want) {
				t.Errorf("%s = %#v, want %#v", tt.src, got, tt.want)
			}
		})
	}
	xml := NewEnv(Response{Body: []byte("<xml/>")}, nil, nil)
	if xml.Response.JSON != nil {
		t.Error("non-JSON body parsed")
	}
	prog, err := compileExpr("x", "response.json?.id", false)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := expr.Run(prog, xml); err != nil || got != nil {
		t.Errorf("response.json?.id on a non-JSON body = %v, %v; want nil", got, err)
	}
}

func TestIsOwnChange(t *testing.T) {
	tests := []struct {
		annotation string
		want       bool
	}{
		{"/* rowhook writeback d-1:2 */ UPDATE `vtiger`.`vtiger_potentialscf` SET `cf_erp_id` = 'E-1' WHERE `potentialid` = 3", true},
		{"  /* rowhook writeback x */ UPDATE t SET a=1", true},
		{"UPDATE t SET note='/* rowhook writeback x */' WHERE id=1", false},
		{"UPDATE vtiger_potential SET sales_stage='Closed Won'", false},
		{"", false},
	}
	for _, tt := range tests {
		t.Run(tt.annotation, func(t *testing.T) {
			if got := IsOwnChange(&cdc.Change{Annotation: tt.annotation}); got != tt.want {
				t.Errorf("IsOwnChange = %v, want %v", got, tt.want)
			}
		})
	}
	if IsOwnChange(nil) {
		t.Error("IsOwnChange(nil)")
	}
}

func TestIsOwnTransaction(t *testing.T) {
	own := &cdc.Transaction{Changes: []cdc.Change{
		{Schema: "vtiger", Table: "rowhook_writeback_marker"},
		{Schema: "vtiger", Table: "vtiger_potentialscf"},
	}}
	other := &cdc.Transaction{Changes: []cdc.Change{{Schema: "vtiger", Table: "vtiger_potentialscf"}}}
	tests := []struct {
		name   string
		tx     *cdc.Transaction
		marker string
		want   bool
	}{
		{"own, qualified", own, "vtiger.rowhook_writeback_marker", true},
		{"own, any schema", own, "rowhook_writeback_marker", true},
		{"own, other schema", own, "crm.rowhook_writeback_marker", false},
		{"other", other, "vtiger.rowhook_writeback_marker", false},
		{"nil", nil, "rowhook_writeback_marker", false},
		{"no marker", own, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsOwnTransaction(tt.tx, tt.marker); got != tt.want {
				t.Errorf("IsOwnTransaction = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestIsPermanent(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"conversion", fmt.Errorf("x: %w", &ConversionError{}), true},
		{"expr", &ExprError{Path: "p", Err: errors.New("boom")}, true},
		{"not found", &RowNotFoundError{Table: "t"}, true},
		{"no mapping", fmt.Errorf("apply: %w", ErrNoMapping), true},
		{"deadlock", classify("update", "t", &mysql.MySQLError{Number: 1213}), false},
		{"lock wait", classify("update", "t", &mysql.MySQLError{Number: 1205}), false},
		{"read only", classify("update", "t", &mysql.MySQLError{Number: 1290}), false},
		{"fk", classify("update", "t", &mysql.MySQLError{Number: 1452}), true},
		{"data too long", classify("update", "t", &mysql.MySQLError{Number: 1406}), true},
		{"denied", classify("update", "t", &mysql.MySQLError{Number: 1142}), true},
		{"bad conn", classify("update", "t", mysql.ErrInvalidConn), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsPermanent(tt.err); got != tt.want {
				t.Errorf("IsPermanent(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestTagFor(t *testing.T) {
	tests := []struct{ id, want string }{
		{"0-1-42:3:new-opportunity:erp", "/* rowhook writeback 0-1-42:3:new-opportunity:erp */ "},
		{"x */ DROP TABLE t; /*", "/* rowhook writeback x____DROP_TABLE_t____ */ "},
		{"", "/* rowhook writeback - */ "},
	}
	for _, tt := range tests {
		if got := tagFor(tt.id); got != tt.want {
			t.Errorf("tagFor(%q) = %q, want %q", tt.id, got, tt.want)
		}
	}
	if got := tagFor(strings.Repeat("a", 500)); len(got) > len(Tag)+140 {
		t.Errorf("tag not bounded: %d", len(got))
	}
}

func TestNearMatches(t *testing.T) {
	got := nearMatches("cf_erp_idd", []string{"potentialid", "cf_erp_id", "cf_856", "cf_erp_status"})
	if len(got) == 0 || got[0] != "cf_erp_id" {
		t.Errorf("nearMatches = %v", got)
	}
	if got := nearMatches("zzz", []string{"potentialid"}); len(got) != 0 {
		t.Errorf("nearMatches(zzz) = %v", got)
	}
}

func TestNewMetrics_twice(t *testing.T) {
	reg := prometheus.NewRegistry()
	a, err := newMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := newMetrics(reg)
	if err != nil {
		t.Fatalf("second registration: %v", err)
	}
	a.observe("db.t", "ok", time.Millisecond)
	b.observe("db.t", "ok", time.Millisecond)
	if got := testutil.ToFloat64(a.total.WithLabelValues("db.t", "ok")); got != 2 {
		t.Errorf("shared counter = %v, want 2", got)
	}
	var none *metrics
	none.observe("db.t", "ok", time.Millisecond) // nil records nothing, no panic
}
