package soap

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func loadTestWSDL(t *testing.T, srv *soapServer, name string) *Service {
	t.Helper()
	svc, err := (&Loader{Client: srv.Client()}).Load(context.Background(), srv.URL+"/wsdl/"+name)
	if err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
	return svc
}

func mustOp(t *testing.T, svc *Service, name, version string) *Operation {
	t.Helper()
	op, err := svc.Operation(name, version)
	if err != nil {
		t.Fatal(err)
	}
	return op
}

func TestLoader_Load(t *testing.T) {
	srv := newSOAPServer(t)
	type opWant struct{ name, version, action, style, use, endpoint string }
	tests := []struct {
		file string
		docs int
		ops  []opWant
	}{
		{"calc.wsdl", 1, []opWant{
			{"Add", V11, "http://tempuri.org/Add", "document", "literal", "/calculator.asmx"},
			{"Add", V12, "http://tempuri.org/Add", "document", "literal", "/calculator.asmx"},
			{"Divide", V11, "http://tempuri.org/Divide", "document", "literal", "/calculator.asmx"},
			{"Divide", V12, "http://tempuri.org/Divide", "document", "literal", "/calculator.asmx"},
		}},
		{"orders.wsdl", 3, []opWant{
			{"CreateOrder", V12, "urn:example:orders:CreateOrder", "document", "literal", "/orders"},
		}},
		{"quotes.wsdl", 1, []opWant{
			{"getQuote", V11, "", "rpc", "literal", "/quotes"},
			{"tag", V11, "urn:example:quotes#tag", "rpc", "encoded", "/quotes"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			svc := loadTestWSDL(t, srv, tt.file)
			if len(svc.Documents) != tt.docs {
				t.Errorf("documents = %v, want %d", svc.Documents, tt.docs)
			}
			ops := svc.Operations()
			if len(ops) != len(tt.ops) {
				t.Fatalf("got %d operations %+v, want %d", len(ops), ops, len(tt.ops))
			}
			for i, w := range tt.ops {
				o := ops[i]
				got := opWant{o.Name, o.Version, o.Action, o.Style, o.Use, strings.TrimPrefix(o.Endpoint, srv.URL)}
				if got != w {
					t.Errorf("operation %d = %+v, want %+v", i, got, w)
				}
				if _, err := o.Params(); err != nil {
					t.Errorf("%s params: %v", o.Name, err)
				}
			}
		})
	}
}

func TestLoader_LoadFile(t *testing.T) {
	// A file WSDL whose XSD import is a relative path.
	svc, err := (&Loader{}).Load(context.Background(), filepath.Join("testdata", "wsdl", "orders.wsdl"))
	if err != nil {
		t.Fatal(err)
	}
	params, err := svc.Params("CreateOrder")
	if err != nil {
		t.Fatal(err)
	}
	if p, err := ParamAt(params, "order.customer.email"); err != nil || !p.Choice {
		t.Fatalf("order.customer.email = %+v, %v", p, err)
	}
}

func TestService_Params(t *testing.T) {
	srv := newSOAPServer(t)
	svc := loadTestWSDL(t, srv, "orders.wsdl")
	params, err := svc.Params("CreateOrder")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range params {
		names = append(names, p.Name)
	}
	if strings.Join(names, ",") != "order,source" {
		t.Fatalf("top-level params = %v, want order,source (wrapper CreateOrder unwrapped)", names)
	}
	order := params[0]
	var kids []string
	for _, c := range order.Children {
		kids = append(kids, c.Name)
	}
	// Extension: the base type's sequence, its attribute, then the
	// extension's own element.
	if got := strings.Join(kids, ","); got != "number,amount,closingDate,customer,line,tag,channel,priority" {
		t.Errorf("order children = %s", got)
	}
	tests := []struct {
		path, typ, base, ns string
		min, max            int
		attr, choice, cplx  bool
		enum                string
	}{
		{"order", "PriorityOrder", "", "urn:example:orders", 1, 1, false, false, true, ""},
		{"order.amount", "Money", "xsd:decimal", "urn:example:orders", 1, 1, false, false, false, ""},
		{"order.line", "OrderLine", "", "urn:example:orders", 0, -1, false, false, true, ""},
		{"order.tag", "xsd:string", "xsd:string", "urn:example:orders", 0, 5, false, false, false, ""},
		{"order.channel", "Channel", "xsd:token", "", 0, 1, true, false, false, "web,crm"},
		{"order.priority", "Priority", "xsd:string", "urn:example:orders", 1, 1, false, false, false, "low,normal,high"},
		{"order.customer.phone", "xsd:string", "xsd:string", "urn:example:orders", 1, 1, false, true, false, ""},
		{"source", "xsd:string", "xsd:string", "urn:example:orders", 0, 1, false, false, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			p, err := ParamAt(params, tt.path)
			if err != nil {
				t.Fatal(err)
			}
			if p.Type != tt.typ || p.Base != tt.base || p.Namespace != tt.ns || p.MinOccurs != tt.min || p.MaxOccurs != tt.max ||
				p.Attribute != tt.attr || p.Choice != tt.choice || p.Complex != tt.cplx || strings.Join(p.Enum, ",") != tt.enum {
				t.Errorf("got %+v", p)
			}
		})
	}
	line, _ := ParamAt(params, "order.line")
	if sku := line.Child("sku"); sku == nil || sku.Facets["maxLength"] != "12" {
		t.Errorf("line.sku = %+v, want maxLength 12", sku)
	}
	if _, err := ParamAt(params, "order.line.sku"); err == nil || !strings.Contains(err.Error(), "is an array") {
		t.Errorf("path through an array: err = %v", err)
	}
	_, err = ParamAt(params, "order.custmer.name")
	if !errors.Is(err, ErrUnknownParam) || !strings.Contains(err.Error(), "number, amount, closingDate, customer") {
		t.Errorf("unknown param error = %v", err)
	}
}

func TestService_Operation(t *testing.T) {
	srv := newSOAPServer(t)
	calc := loadTestWSDL(t, srv, "calc.wsdl")
	if op := mustOp(t, calc, "Add", ""); op.Version != V11 {
		t.Errorf("default version = %s, want 1.1 (first port)", op.Version)
	}
	if op := mustOp(t, calc, "Add", V12); op.Binding != "CalculatorSoap12" {
		t.Errorf("1.2 binding = %s", op.Binding)
	}
	_, err := calc.Operation("Substract", "")
	if !errors.Is(err, ErrUnknownOperation) || !strings.Contains(err.Error(), "operations: Add, Divide") {
		t.Errorf("unknown operation error = %v", err)
	}
	orders := loadTestWSDL(t, srv, "orders.wsdl")
	_, err = orders.Operation("CreateOrder", V11)
	if !errors.Is(err, ErrUnknownOperation) || !strings.Contains(err.Error(), "SOAP 1.2 only") {
		t.Errorf("version error = %v", err)
	}
}

func TestLoader_LoadErrors(t *testing.T) {
	srv := newSOAPServer(t)
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	missingType := write("missing.wsdl", `<definitions xmlns="http://schemas.xmlsoap.org/wsdl/" xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/" xmlns:tns="urn:t" xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:t">
<types><xs:schema targetNamespace="urn:t"><xs:element name="Op"><xs:complexType><xs:sequence><xs:element name="a" type="tns:Nope"/></xs:sequence></xs:complexType></xs:element></xs:schema></types>
<message name="in"><part name="p" element="tns:Op"/></message>
<portType name="PT"><operation name="Op"><input message="tns:in"/></operation></portType>
<binding name="B" type="tns:PT"><soap:binding style="document"/><operation name="Op"><input><soap:body use="literal"/></input></operation></binding>
</definitions>`)
	tests := []struct {
		name, loc, want string
	}{
		{"not found", srv.URL + "/wsdl/nope.wsdl", "HTTP 404"},
		{"import 404", write("imp.wsdl", `<definitions xmlns="http://schemas.xmlsoap.org/wsdl/"><types><xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"><xs:import namespace="urn:x" schemaLocation="`+srv.URL+`/wsdl/types/gone.xsd"/></xs:schema></types></definitions>`), "gone.xsd: HTTP 404"},
		{"xsd as wsdl", filepath.Join("testdata", "wsdl", "types", "orders.xsd"), "is an XML Schema, not a WSDL"},
		{"wsdl 2.0", write("w2.wsdl", `<description xmlns="http://www.w3.org/ns/wsdl"/>`), "WSDL 2.0"},
		{"not xml", write("bad.wsdl", `<definitions`), "bad WSDL"},
		{"no soap binding", write("nob.wsdl", `<definitions xmlns="http://schemas.xmlsoap.org/wsdl/"/>`), "no SOAP 1.1 or 1.2 binding"},
		{"no file", filepath.Join(dir, "absent.wsdl"), "no such file"},
		{"scheme", "ftp://example.com/x.wsdl", "unsupported URL scheme"},
		{"remote imports file", srv.URL + "/wsdl/evil.wsdl", "may not import the local file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := (&Loader{Client: srv.Client()}).Load(context.Background(), tt.loc)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
	t.Run("missing type", func(t *testing.T) {
		svc, err := (&Loader{}).Load(context.Background(), missingType)
		if err != nil {
			t.Fatal(err)
		}
		_, err = svc.Params("Op")
		if !errors.Is(err, ErrBadWSDL) || !strings.Contains(err.Error(), "type {urn:t}Nope (of a) is not defined") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestResolve(t *testing.T) {
	tests := []struct{ base, ref, want, err string }{
		{"http://h/a/b.wsdl", "c.xsd", "http://h/a/c.xsd", ""},
		{"http://h/a/b.wsdl", "../c.xsd", "http://h/c.xsd", ""},
		{"http://h/a/b.wsdl", "https://o/c.xsd", "https://o/c.xsd", ""},
		{"http://h/a/b.wsdl", "file:///etc/passwd", "", "may not import the local file"},
		{"/srv/w/b.wsdl", "types/c.xsd", "/srv/w/types/c.xsd", ""},
		{"/srv/w/b.wsdl", "http://h/c.xsd", "http://h/c.xsd", ""},
	}
	for _, tt := range tests {
		got, err := resolve(tt.base, tt.ref)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("resolve(%q, %q) err = %v, want %q", tt.base, tt.ref, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("resolve(%q, %q) = %q, %v; want %q", tt.base, tt.ref, got, err, tt.want)
		}
	}
}

func TestLoader_Authorize(t *testing.T) {
	srv := newSOAPServer(t)
	l := &Loader{Client: srv.Client()}
	if _, err := l.Load(context.Background(), srv.URL+"/wsdl/secure/calc.wsdl"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("without credentials: err = %v", err)
	}
	l.Authorize = func(r *http.Request) { r.SetBasicAuth(testUser, testPass) }
	if _, err := l.Load(context.Background(), srv.URL+"/wsdl/secure/calc.wsdl"); err != nil {
		t.Fatal(err)
	}
}

// dagWSDL declares types T0..Tn where each has two elements of the next:
// 2^n parameters if expanded naively.
func dagWSDL(n int) string {
	var b strings.Builder
	b.WriteString(`<definitions xmlns="http://schemas.xmlsoap.org/wsdl/" xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:t="urn:t" targetNamespace="urn:t"><types><xs:schema targetNamespace="urn:t">`)
	for i := 0; i < n; i++ {
		b.WriteString(`<xs:complexType name="T` + strconv.Itoa(i) + `"><xs:sequence><xs:element name="a" type="t:T` + strconv.Itoa(i+1) + `"/><xs:element name="b" type="t:T` + strconv.Itoa(i+1) + `"/></xs:sequence></xs:complexType>`)
	}
	b.WriteString(`<xs:complexType name="T` + strconv.Itoa(n) + `"><xs:sequence><xs:element name="v" type="xs:string"/></xs:sequence></xs:complexType>`)
	b.WriteString(`<xs:element name="Op" type="t:T0"/></xs:schema></types><message name="m"><part name="p" element="t:Op"/></message><portType name="P"><operation name="Op"><input message="t:m"/></operation></portType><binding name="B" type="t:P"><soap:binding style="document"/><operation name="Op"><input><soap:body use="literal"/></input></operation></binding></definitions>`)
	return b.String()
}

func TestService_ParamsBudget(t *testing.T) {
	svc, err := parseWSDL(t, "dag.wsdl", []byte(dagWSDL(40)))
	if err != nil {
		t.Fatal(err)
	}
	_, err = svc.Params("Op")
	if !errors.Is(err, ErrBadWSDL) || !strings.Contains(err.Error(), "more than 5000 parameters") {
		t.Fatalf("err = %v", err)
	}
	// A reused type that stays within the budget expands fully.
	svc, err = parseWSDL(t, "dag.wsdl", []byte(dagWSDL(6)))
	if err != nil {
		t.Fatal(err)
	}
	params, err := svc.Params("Op")
	if err != nil {
		t.Fatal(err)
	}
	if p, err := ParamAt(params, "a.b.a.b.a.b.v"); err != nil || p.Base != "xsd:string" {
		t.Errorf("a.b.a.b.a.b.v = %+v, %v", p, err)
	}
}

// TestLoader_LoadErrorsHideCredentials: a WSDL URL's password and query
// values (api keys travel there) stay out of every error, whether the
// server answers or cannot be reached.
func TestLoader_LoadErrorsHideCredentials(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	for _, base := range []string{srv.URL, closed.URL} {
		loc := strings.Replace(base, "http://", "http://user:pa55word@", 1) + "/svc?wsdl&apikey=K3Y"
		_, err := (&Loader{}).Load(context.Background(), loc)
		if err == nil {
			t.Fatalf("Load(%s) succeeded", loc)
		}
		if strings.Contains(err.Error(), "pa55word") || strings.Contains(err.Error(), "K3Y") {
			t.Errorf("error shows a credential: %v", err)
		}
	}
}

// parseWSDL loads one WSDL document given in memory the way rowhook loads
// any WSDL (Loader.Load on a file), with HTTP refused so that an import
// never goes out to the network.
func parseWSDL(t testing.TB, name string, data []byte) (*Service, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	refuse := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return nil, fmt.Errorf("no network in this test: %s", r.URL)
	})}
	return (&Loader{Client: refuse}).Load(context.Background(), path)
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
