package soap

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestLookupHandler(t *testing.T) {
	srv := newSOAPServer(t)
	api := httptest.NewServer(LookupHandler(&Loader{Client: srv.Client()}))
	defer api.Close()
	get := func(q url.Values) (int, map[string]any) {
		t.Helper()
		resp, err := http.Get(api.URL + "/?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, out
	}
	status, out := get(url.Values{"wsdl": {srv.URL + "/wsdl/orders.wsdl"}})
	ops, _ := out["operations"].([]any)
	if status != 200 || out["service"] != "OrdersService" || len(ops) != 1 || ops[0].(map[string]any)["soap_action"] != "urn:example:orders:CreateOrder" {
		t.Fatalf("operations: %d %v", status, out)
	}
	status, out = get(url.Values{"wsdl": {srv.URL + "/wsdl/orders.wsdl"}, "operation": {"CreateOrder"}})
	params, _ := out["params"].([]any)
	if status != 200 || out["wrapper"] != "{urn:example:orders}CreateOrder" || len(params) != 2 || params[0].(map[string]any)["name"] != "order" {
		t.Fatalf("params: %d %v", status, out)
	}
	tests := []struct {
		q      url.Values
		status int
		err    string
	}{
		{url.Values{}, 400, "wsdl must be an http(s) URL"},
		{url.Values{"wsdl": {"/etc/passwd"}}, 400, "wsdl must be an http(s) URL"},
		{url.Values{"wsdl": {srv.URL + "/wsdl/calc.wsdl"}, "operation": {"Mul"}}, 400, `unknown operation "Mul"`},
		{url.Values{"wsdl": {srv.URL + "/wsdl/calc.wsdl"}, "operation": {"Add"}, "soap_version": {"9"}}, 400, "soap_version must be 1.1 or 1.2"},
		{url.Values{"wsdl": {srv.URL + "/wsdl/none.wsdl"}}, 502, "HTTP 404"},
	}
	for _, tt := range tests {
		status, out := get(tt.q)
		if msg, _ := out["error"].(string); status != tt.status || !strings.Contains(msg, tt.err) {
			t.Errorf("%v: %d %v, want %d %q", tt.q, status, out, tt.status, tt.err)
		}
	}
}
