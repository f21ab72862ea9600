package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

// soapWSDLDir holds the SOAP package's test WSDLs (calc: document/literal
// 1.1+1.2; orders: SOAP 1.2 with an imported XSD; quotes: rpc).
var soapWSDLDir = filepath.Join("..", "..", "dispatch", "soap", "testdata", "wsdl")

func runCapture(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(t.Context(), args, stdio{in: strings.NewReader(""), out: &out, err: &errOut})
	return out.String(), errOut.String(), err
}

func TestSOAP_Operations(t *testing.T) {
	srv := httptest.NewServer(http.StripPrefix("/wsdl/", http.FileServer(http.Dir(soapWSDLDir))))
	defer srv.Close()
	out, _, err := runCapture(t, "soap", "operations", "--wsdl", filepath.Join(soapWSDLDir, "calc.wsdl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Calculator (" + filepath.Join(soapWSDLDir, "calc.wsdl") + "): 4 operations",
		"OPERATION  SOAP  STYLE             SOAP ACTION                INPUT         OUTPUT         ENDPOINT",
		"Add        1.1   document/literal  http://tempuri.org/Add     AddSoapIn     AddSoapOut     {{BASE}}/calculator.asmx",
		"Divide     1.2   document/literal  http://tempuri.org/Divide  DivideSoapIn  DivideSoapOut  {{BASE}}/calculator.asmx",
		"\nAdd: Adds two integers.\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "HttpGet") {
		t.Errorf("HTTP GET binding listed:\n%s", out)
	}

	// Over HTTP, with the XSD import fetched relative to the WSDL's URL.
	out, _, err = runCapture(t, "soap", "operations", "--wsdl", srv.URL+"/wsdl/orders.wsdl", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		WSDL       string `json:"wsdl"`
		Service    string `json:"service"`
		Operations []struct {
			Name, Style, Use, Input, Output string
			Action                          string `json:"soap_action"`
			Version                         string `json:"soap_version"`
			Doc                             string `json:"documentation"`
		} `json:"operations"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if got.Service != "OrdersService" || len(got.Operations) != 1 {
		t.Fatalf("json = %s", out)
	}
	op := got.Operations[0]
	if op.Name != "CreateOrder" || op.Version != "1.2" || op.Action != "urn:example:orders:CreateOrder" || op.Style != "document" ||
		op.Input != "CreateOrderRequest" || op.Doc != "Creates an order for a CRM opportunity." {
		t.Errorf("operation = %+v", op)
	}
}

func TestSOAP_Params(t *testing.T) {
	srv := httptest.NewServer(http.StripPrefix("/wsdl/", http.FileServer(http.Dir(soapWSDLDir))))
	defer srv.Close()
	out, _, err := runCapture(t, "soap", "params", "--wsdl", filepath.Join(soapWSDLDir, "calc.wsdl"), "--operation", "Add", "--soap-version", "1.2")
	if err != nil {
		t.Fatal(err)
	}
	want := `Add (SOAP 1.2, document/literal, request element {http://tempuri.org/}Add)

PATH  TYPE     OCCURS  NOTES
intA  xsd:int  1       "The first addend."
intB  xsd:int  1       

Map a complex parameter field by field (order.customer.name) or whole, to an object; map an array ([]) to a list.
`
	if out != want {
		t.Errorf("output:\n%s\nwant:\n%s", out, want)
	}

	out, _, err = runCapture(t, "soap", "params", "--wsdl", srv.URL+"/wsdl/orders.wsdl", "--operation", "CreateOrder")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"order.customer.email   xsd:string             1       choice",
		"order.line             OrderLine              0..*    array",
		"order.line[].sku       Sku (xsd:string)       1       maxLength=12; minLength=3",
		"order.channel          Channel (xsd:token)    0..1    attribute; one of: web, crm",
		"order.priority         Priority (xsd:string)  1       one of: low, normal, high",
	} {
		if !strings.Contains(out, line) {
			t.Errorf("output lacks %q:\n%s", line, out)
		}
	}

	out, _, err = runCapture(t, "soap", "params", "--wsdl", filepath.Join(soapWSDLDir, "quotes.wsdl"), "--operation", "getQuote", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Operation, Style, Use, Wrapper string
		Params                         []struct {
			Name, Type, Namespace string
			MinOccurs             int `json:"min_occurs"`
		}
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if got.Style != "rpc" || got.Use != "literal" || got.Wrapper != "{urn:example:quotes}getQuote" || len(got.Params) != 2 ||
		got.Params[0].Name != "symbol" || got.Params[1].Type != "xsd:int" || got.Params[0].Namespace != "" || got.Params[1].MinOccurs != 1 {
		t.Errorf("json = %s", out)
	}
}

func TestSOAP_Errors(t *testing.T) {
	calc := filepath.Join(soapWSDLDir, "calc.wsdl")
	tests := []struct {
		args  []string
		want  string
		usage bool
	}{
		{[]string{"soap"}, "missing subcommand", true},
		{[]string{"soap", "call"}, `unknown subcommand "call"`, true},
		{[]string{"soap", "operations"}, "--wsdl is required", true},
		{[]string{"soap", "params", "--wsdl", calc}, "--operation is required", true},
		{[]string{"soap", "params", "--wsdl", calc, "--operation", "Add", "--soap-version", "2"}, "--soap-version must be 1.1 or 1.2", true},
		{[]string{"soap", "params", "--wsdl", calc, "--operation", "Mul"}, `unknown operation "Mul" in ` + calc + " (operations: Add, Divide)", false},
		{[]string{"soap", "operations", "--wsdl", filepath.Join(soapWSDLDir, "missing.wsdl")}, "no such file", false},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, _, err := runCapture(t, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			var ue *usageError
			if errors.As(err, &ue) != tt.usage {
				t.Errorf("usage error = %v, want %v", !tt.usage, tt.usage)
			}
		})
	}
}
