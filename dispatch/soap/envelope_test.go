package soap

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rowhook/rowhook/cdc"
)

var update = flag.Bool("update", false, "rewrite golden files")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs:\n got: %s\nwant: %s", name, got, want)
	}
}

// fileService loads a testdata WSDL from disk (endpoints stay {{BASE}}).
func fileService(t *testing.T, name string) *Service {
	t.Helper()
	svc, err := (&Loader{}).Load(t.Context(), filepath.Join("testdata", "wsdl", name))
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func TestOperation_BuildRequest(t *testing.T) {
	calc := fileService(t, "calc.wsdl")
	orders := fileService(t, "orders.wsdl")
	quotes := fileService(t, "quotes.wsdl")
	tests := []struct {
		golden      string
		svc         *Service
		op, version string
		values      map[string]any
		contentType string
		soapAction  string
	}{
		{"calc_add_11.xml", calc, "Add", V11, map[string]any{"intA": int64(2), "intB": "40"},
			"text/xml; charset=utf-8", `"http://tempuri.org/Add"`},
		{"calc_add_12.xml", calc, "Add", V12, map[string]any{"intA": 2.0, "intB": cdc.Decimal("40.00")},
			`application/soap+xml; charset=utf-8; action="http://tempuri.org/Add"`, ""},
		{"calc_divide_escaped.xml", calc, "Divide", V11, map[string]any{"dividend": cdc.Decimal("10.50"), "divisor": 4.0, "note": `<b>"Tom & Jerry's"</b>` + "\n"},
			"text/xml; charset=utf-8", `"http://tempuri.org/Divide"`},
		{"orders_create.xml", orders, "CreateOrder", "", map[string]any{
			"order": map[string]any{
				"number":      "POT12",
				"amount":      cdc.Decimal("1250.00"),
				"closingDate": "2026-11-30 00:00:00",
				"customer":    map[string]any{"name": "Müller GmbH", "email": "buy@mueller.example", "vip": int64(1)},
				"line": []any{
					map[string]any{"sku": "SKU-1", "quantity": int64(3), "price": "100.00"},
					map[string]any{"quantity": 0, "sku": "SKU-2"},
				},
				"tag":      []string{"crm", "q4"},
				"channel":  "crm",
				"priority": "high",
			},
			"source": "vtiger",
		}, `application/soap+xml; charset=utf-8; action="urn:example:orders:CreateOrder"`, ""},
		{"quotes_getquote_rpc_literal.xml", quotes, "getQuote", "", map[string]any{"symbol": "ACME", "count": uint64(2)},
			"text/xml; charset=utf-8", `""`},
		{"quotes_tag_rpc_encoded.xml", quotes, "tag", "", map[string]any{"symbol": "ACME", "tags": []any{"a", "b&c"}},
			"text/xml; charset=utf-8", `"urn:example:quotes#tag"`},
		{"calc_divide_nil_note.xml", calc, "Divide", V11, map[string]any{"dividend": 1, "divisor": 2, "note": nil},
			"text/xml; charset=utf-8", `"http://tempuri.org/Divide"`},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			op := mustOp(t, tt.svc, tt.op, tt.version)
			req, err := op.BuildRequest(tt.values)
			if err != nil {
				t.Fatal(err)
			}
			if req.ContentType != tt.contentType {
				t.Errorf("content type = %q, want %q", req.ContentType, tt.contentType)
			}
			if got := req.Headers["SOAPAction"]; got != tt.soapAction {
				t.Errorf("SOAPAction = %q, want %q", got, tt.soapAction)
			}
			golden(t, tt.golden, req.Body)
		})
	}
}

func TestOperation_BuildRequestErrors(t *testing.T) {
	calc := fileService(t, "calc.wsdl")
	orders := fileService(t, "orders.wsdl")
	order := func(mod func(o map[string]any)) map[string]any {
		o := map[string]any{
			"number": "N1", "amount": "1.00", "priority": "low",
			"customer": map[string]any{"name": "x", "email": "e"},
		}
		mod(o)
		return map[string]any{"order": o}
	}
	tests := []struct {
		name   string
		svc    *Service
		op     string
		values map[string]any
		want   string
		is     error
	}{
		{"unknown top", calc, "Add", map[string]any{"intA": 1, "intB": 2, "intC": 3}, "unknown parameter intC (the operation has intA, intB)", ErrUnknownParam},
		{"not an int", calc, "Add", map[string]any{"intA": "two", "intB": 2}, `parameter intA (xsd:int): "two" is not an integer`, nil},
		{"int range", calc, "Add", map[string]any{"intA": int64(1) << 40, "intB": 2}, "more than the type's maximum 2147483647", nil},
		{"fraction", calc, "Add", map[string]any{"intA": 1.5, "intB": 2}, "1.5 is not an integer", nil},
		{"required missing", calc, "Add", map[string]any{"intA": 1}, "parameter intB is required (minOccurs 1) but not mapped", nil},
		{"required null", calc, "Add", map[string]any{"intA": 1, "intB": nil}, "parameter intB is required and not nillable, but the value is null", nil},
		{"list for single", calc, "Add", map[string]any{"intA": []any{1, 2}, "intB": 2}, "got a list of 2, but it occurs at most once", nil},
		{"enum", orders, "CreateOrder", order(func(o map[string]any) { o["priority"] = "urgent" }), `parameter order.priority (Priority (xsd:string)): value "urgent" is not one of low, normal, high`, nil},
		{"maxLength", orders, "CreateOrder", order(func(o map[string]any) { o["line"] = []any{map[string]any{"sku": "ABCDEFGHIJKLMN", "quantity": 1}} }), "order.line[0].sku", nil},
		{"too many", orders, "CreateOrder", order(func(o map[string]any) { o["tag"] = []any{1, 2, 3, 4, 5, 6} }), "got 6 items, more than maxOccurs 5", nil},
		{"scalar for complex", orders, "CreateOrder", order(func(o map[string]any) { o["customer"] = "x" }), "order.customer is a complex type (Customer): map it to an object with keys name, email, phone, vip", nil},
		{"unknown nested", orders, "CreateOrder", order(func(o map[string]any) { o["customer"].(map[string]any)["fax"] = 1 }), "unknown parameter order.customer.fax (order.customer has name, email, phone, vip)", ErrUnknownParam},
		{"bad date", orders, "CreateOrder", order(func(o map[string]any) { o["closingDate"] = "soon" }), `"soon" is not a date`, nil},
		{"attribute enum", orders, "CreateOrder", order(func(o map[string]any) { o["channel"] = "fax" }), `attribute order.channel (Channel (xsd:token)): value "fax" is not one of web, crm`, nil},
		{"minInclusive", orders, "CreateOrder", order(func(o map[string]any) { o["amount"] = "-0.01" }), "value -0.01 is less than minInclusive 0", nil},
		{"fractionDigits", orders, "CreateOrder", order(func(o map[string]any) { o["amount"] = 1.005 }), "value 1.005 has 3 fraction digits, more than fractionDigits 2", nil},
		{"boolean", orders, "CreateOrder", order(func(o map[string]any) { o["customer"].(map[string]any)["vip"] = int64(7) }), "7 is not a boolean", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := mustOp(t, tt.svc, tt.op, "").BuildRequest(tt.values)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("err = %v, want errors.Is %v", err, tt.is)
			}
		})
	}
}

func TestSetPath(t *testing.T) {
	v := map[string]any{}
	for _, kv := range []struct {
		path string
		val  any
	}{
		{"order.number", "N1"},
		{"order.customer.name", "Ann"},
		{"order.amount", "12.50"},
		{"order.amount.currency", "EUR"},
		{"source", "crm"},
	} {
		if err := SetPath(v, kv.path, kv.val); err != nil {
			t.Fatal(err)
		}
	}
	o := v["order"].(map[string]any)
	if o["number"] != "N1" || o["customer"].(map[string]any)["name"] != "Ann" || v["source"] != "crm" {
		t.Errorf("tree = %v", v)
	}
	if a := o["amount"].(map[string]any); a[TextKey] != "12.50" || a["currency"] != "EUR" {
		t.Errorf("amount = %v, want text under %s and the attribute", a, TextKey)
	}
	if err := SetPath(map[string]any{"l": []any{1}}, "l.x", 1); err == nil || !strings.Contains(err.Error(), "is a list") {
		t.Errorf("path through a list: err = %v", err)
	}
}
