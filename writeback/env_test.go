package writeback

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/expr-lang/expr"
)

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

func TestNearMatches(t *testing.T) {
	got := nearMatches("cf_erp_idd", []string{"potentialid", "cf_erp_id", "cf_856", "cf_erp_status"})
	if len(got) == 0 || got[0] != "cf_erp_id" {
		t.Errorf("nearMatches = %v", got)
	}
	if got := nearMatches("zzz", []string{"potentialid"}); len(got) != 0 {
		t.Errorf("nearMatches(zzz) = %v", got)
	}
}
