package writeback

import (
	"net/http"
	"testing"

	"github.com/expr-lang/expr"
)

// FuzzResponseMapping feeds arbitrary mapping expressions and response
// bodies through what a writeback does with them: compile, evaluate against
// the response, convert to a column type. Errors are fine; panics and
// values that pass conversion but do not fit the column are not.
func FuzzResponseMapping(f *testing.F) {
	seeds := []struct {
		src, body string
		status    int
	}{
		{"response.json.id", `{"id": 42}`, 201},
		{"response.json.data.items[0].ref", `{"data": {"items": [{"ref": "ERP-1"}]}}`, 200},
		{"response.status", ``, 204},
		{"response.body", `<xml>not json</xml>`, 200},
		{`response.headers["X-Erp-Id"]`, `{}`, 200},
		{`jsonPath(response.body, "a.b")`, `{"a": {"b": 18446744073709551615}}`, 200},
		{`jsonRaw(response.body, "a")`, `{"a": [1, 2, {"c": null}]}`, 200},
		{`toJSON(response.json)`, `{"x": 1e400}`, 200},
		{`string(response.soap.dealId)`, ``, 200},
		{`row.potentialid * 2`, `{}`, 200},
		{`response.json.amount / 0`, `{"amount": 5}`, 200},
		{`response.json[0]`, `[[[[[[[[[]]]]]]]]]`, 200},
		{`len(response.body) > 3 ? "long" : nil`, `abcd`, 200},
	}
	for _, s := range seeds {
		f.Add(s.src, []byte(s.body), s.status)
	}
	cols := []*column{
		{Name: "v", DataType: "varchar", ColumnType: "varchar(8)", CharMax: 8, OctetMax: 32, Charset: "utf8mb4", Nullable: true},
		{Name: "i", DataType: "int", ColumnType: "int(11)"},
		{Name: "u", DataType: "bigint", ColumnType: "bigint(20) unsigned", Unsigned: true},
		{Name: "d", DataType: "decimal", ColumnType: "decimal(10,2)", Precision: 10, Scale: 2, Nullable: true},
		{Name: "f", DataType: "double", ColumnType: "double"},
		{Name: "t", DataType: "datetime", ColumnType: "datetime(6)", DTPrec: 6, Nullable: true},
		{Name: "e", DataType: "enum", ColumnType: "enum('a','b')", Labels: []string{"a", "b"}},
		{Name: "j", DataType: "longtext", ColumnType: "longtext", OctetMax: 1 << 32, Charset: "utf8mb4", Nullable: true},
	}
	f.Fuzz(func(t *testing.T, src string, body []byte, status int) {
		if len(src) > 512 || len(body) > 1<<16 {
			return
		}
		prog, err := compileExpr("rules[0].writeback.set.c", src, false)
		if err != nil {
			return
		}
		env := NewEnv(Response{Status: status, Header: http.Header{"X-Erp-Id": {"7"}}, Body: body},
			map[string]any{"potentialid": int64(12)}, nil)
		v, err := expr.Run(prog, env)
		if err != nil {
			return
		}
		for _, c := range cols {
			out, err := c.convert("crm.t", v)
			if err != nil {
				continue
			}
			if s, ok := out.(string); ok && c.CharMax > 0 && int64(len([]rune(s))) > c.CharMax {
				t.Fatalf("%s: %q passed conversion but is longer than %d characters", c.ColumnType, s, c.CharMax)
			}
		}
	})
}
