package soap

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/internal/yamlconf"
	"github.com/rowhook/rowhook/rules"
)

// pathErrors flattens a Validate error into "path: message" lines.
func pathErrors(err error) []string {
	var out []string
	var visit func(error)
	visit = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, c := range j.Unwrap() {
				visit(c)
			}
			return
		}
		var pe *yamlconf.PathError
		if errors.As(e, &pe) {
			out = append(out, pe.Path+": "+pe.Err.Error())
			return
		}
		out = append(out, e.Error())
	}
	if err != nil {
		visit(err)
	}
	return out
}

func TestConfig_Validate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string
	}{
		{"ok", Config{WSDL: "x.wsdl", Operation: "Add", Params: map[string]string{"intA": "row.a"}}, nil},
		{"missing", Config{}, []string{"s.wsdl: missing", "s.operation: missing"}},
		{"version", Config{WSDL: "x", Operation: "A", SOAPVersion: "1.3"}, []string{`s.soap_version: must be 1.1 or 1.2, got "1.3"`}},
		{"endpoint", Config{WSDL: "x", Operation: "A", Endpoint: "ftp://u:pw@h/x"}, []string{`s.endpoint: not an http(s) URL: "ftp://h/x"`}},
		{"expr", Config{WSDL: "x", Operation: "A", Params: map[string]string{"a": "row.a +", "b": "rwo.b", "c.": "1", "d": " "}},
			[]string{"s.params.a: unexpected token EOF", "s.params.b: unknown name rwo", `s.params.c.: bad parameter path "c."`, "s.params.d: empty expression"}},
		{"auth", Config{WSDL: "x", Operation: "A", Auth: AuthConfig{Basic: &BasicAuth{}, WSSecurity: &WSSecurityConfig{PasswordType: "Plain"}}},
			[]string{"s.auth.basic.username: missing", "s.auth.ws_security.username: missing", "s.auth.ws_security.password: missing", "s.auth.ws_security.password_type: must be PasswordDigest or PasswordText"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := pathErrors(tt.cfg.Validate("s"))
			if len(got) != len(tt.want) {
				t.Fatalf("errors = %q, want %q", got, tt.want)
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tt.want[i]) {
					t.Errorf("error %d = %q, want prefix %q", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestDecodeConfig(t *testing.T) {
	var n yaml.Node
	src := "wsdl: calc.wsdl\noperation: Add\nwsdl_refresh: 10m\nparams: {intA: row.a}\nauth:\n  ws_security: {username: u, password: p, pasword_type: x}\nbogus: 1\n"
	if err := yaml.Unmarshal([]byte(src), &n); err != nil {
		t.Fatal(err)
	}
	_, err := DecodeConfig(n.Content[0], "webhooks.erp.soap")
	got := pathErrors(err)
	want := []string{`webhooks.erp.soap.auth.ws_security.pasword_type: unknown key (did you mean password_type?)`, `webhooks.erp.soap.bogus: unknown key (known: `}
	if len(got) != 2 || !strings.HasPrefix(got[0], want[0]) || !strings.HasPrefix(got[1], want[1]) {
		t.Fatalf("errors = %q", got)
	}
	if err := yaml.Unmarshal([]byte(strings.Replace(strings.Replace(src, "bogus: 1\n", "", 1), "pasword_type: x", "password_type: PasswordText", 1)), &n); err != nil {
		t.Fatal(err)
	}
	c, err := DecodeConfig(n.Content[0], "s")
	if err != nil {
		t.Fatal(err)
	}
	if c.WSDLRefresh != 10*time.Minute || c.Params["intA"] != "row.a" || c.Auth.WSSecurity.PasswordType != PasswordText {
		t.Errorf("config = %+v", c)
	}
}

func TestConfig_CheckService(t *testing.T) {
	orders := fileService(t, "orders.wsdl")
	calc := fileService(t, "calc.wsdl")
	base := map[string]string{"order.number": "1", "order.amount": "1", "order.priority": "'low'", "order.customer.name": "'a'"}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for k, v := range extra {
			if v == "" {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		return m
	}
	tests := []struct {
		name string
		svc  *Service
		cfg  Config
		want string
	}{
		{"ok", orders, Config{Operation: "CreateOrder", Params: base}, ""},
		{"whole object", orders, Config{Operation: "CreateOrder", Params: map[string]string{"order": "body.order"}}, ""},
		{"unknown operation", calc, Config{Operation: "Sub"}, `s.operation: soap: unknown operation "Sub" in testdata/wsdl/calc.wsdl (operations: Add, Divide)`},
		{"version", orders, Config{Operation: "CreateOrder", SOAPVersion: V11, Params: base}, "s.soap_version: soap: unknown operation \"CreateOrder\" in SOAP 1.1: the WSDL offers it in SOAP 1.2 only"},
		{"unknown param", orders, Config{Operation: "CreateOrder", Params: with(map[string]string{"order.custmer.name": "1"})},
			`s.params.order.custmer.name: operation CreateOrder: soap: unknown parameter "order.custmer.name" (order has number, amount, closingDate, customer, line, tag, channel, priority)`},
		{"required unmapped", orders, Config{Operation: "CreateOrder", Params: with(map[string]string{"order.number": "", "order.customer.name": ""})},
			"s.params: operation CreateOrder: required parameters not mapped: order.customer.name, order.number"},
		{"no endpoint", fileServiceNoAddress(t), Config{Operation: "Add", Params: map[string]string{"intA": "1", "intB": "2"}}, "s.endpoint: operation Add: the WSDL gives no soap:address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := pathErrors(tt.cfg.CheckService(tt.svc, "s"))
			if tt.want == "" {
				if len(got) > 0 {
					t.Fatalf("errors = %q", got)
				}
				return
			}
			if len(got) != 1 || !strings.HasPrefix(got[0], tt.want) {
				t.Fatalf("errors = %q\nwant %q", got, tt.want)
			}
		})
	}
}

func fileServiceNoAddress(t *testing.T) *Service {
	t.Helper()
	svc, err := parseWSDL(t, "inline.wsdl", []byte(`<definitions xmlns="http://schemas.xmlsoap.org/wsdl/" xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:tns="urn:c" targetNamespace="urn:c">
<message name="in"><part name="intA" type="xs:int"/><part name="intB" type="xs:int"/></message>
<portType name="P"><operation name="Add"><input message="tns:in"/></operation></portType>
<binding name="B" type="tns:P"><soap:binding style="rpc"/><operation name="Add"><input><soap:body use="literal" namespace="urn:c"/></input></operation></binding>
</definitions>`))
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func testEvent() *rules.Event {
	return &rules.Event{
		ID: "0-1-5:1:new-opp", Rule: "new-opp", Name: "NewOpportunity", Key: "vtiger.vtiger_potential:12",
		Timestamp: time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC),
		Change: &cdc.Change{Op: cdc.OpUpdate,
			Before: cdc.Row{"potentialid": int64(12), "amount": cdc.Decimal("10.00")},
			After:  cdc.Row{"potentialid": int64(12), "amount": cdc.Decimal("1250.50"), "potentialname": "Big <deal> & co"}},
		Body: rules.Body{{Name: "lines", Value: []any{map[string]any{"sku": "ABC", "quantity": int64(2)}}}, {Name: "customer", Value: rules.Body{{Name: "name", Value: "Ann"}}}},
	}
}

func TestWebhook_Encode(t *testing.T) {
	srv := newSOAPServer(t)
	cfg := Config{
		WSDL: srv.URL + "/wsdl/orders.wsdl", Operation: "CreateOrder",
		Params: map[string]string{
			"order.number":         `"POT" + string(row.potentialid)`,
			"order.amount":         "row.amount",
			"order.priority":       `float(row.amount) > 1000 ? "high" : "low"`,
			"order.customer.name":  "body.customer.name + ' / ' + row.potentialname",
			"order.customer.email": "'x@example.com'",
			"order.line":           "body.lines",
			"order.tag":            "[event.name, string(old.amount)]",
		},
		Auth: AuthConfig{WSSecurity: &WSSecurityConfig{Username: testWSUser, Password: testWSPass}},
	}
	w, err := New(t.Context(), cfg, Deps{Client: srv.Client(), Path: "webhooks.erp.soap"})
	if err != nil {
		t.Fatal(err)
	}
	req, err := w.Encode(testEvent())
	if err != nil {
		t.Fatal(err)
	}
	body := string(req.Body)
	for _, want := range []string{
		"<ns1:number>POT12</ns1:number>", "<ns1:amount>1250.50</ns1:amount>", "<ns1:priority>high</ns1:priority>",
		"<ns1:name>Ann / Big &lt;deal&gt; &amp; co</ns1:name>", "<ns1:line><ns1:sku>ABC</ns1:sku><ns1:quantity>2</ns1:quantity></ns1:line>",
		"<ns1:tag>NewOpportunity</ns1:tag><ns1:tag>10.00</ns1:tag>",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("body lacks %s:\n%s", want, body)
		}
	}
	if strings.Contains(body, testWSPass) || strings.Contains(body, "Security") {
		t.Error("encoded (stored) body carries credentials")
	}
	if w.Endpoint() != srv.URL+"/orders" {
		t.Errorf("endpoint = %s", w.Endpoint())
	}
	// One attempt, as the dispatcher makes it.
	hreq, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, w.Endpoint(), strings.NewReader(string(req.Body)))
	hreq.Header.Set("Content-Type", req.ContentType)
	if err := w.Authorize(hreq); err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(hreq)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw := make([]byte, 1<<16)
	n, _ := resp.Body.Read(raw)
	tree, err := w.CheckResponse(resp.StatusCode, resp.Header, raw[:n])
	if err != nil {
		t.Fatalf("check: %v (%s)", err, raw[:n])
	}
	if tree["orderId"] != int64(9000000001) || tree["total"] != "1250.50" {
		t.Errorf("tree = %v", tree)
	}
}

func TestWebhook_EncodeErrors(t *testing.T) {
	cfg := Config{WSDL: "testdata/wsdl/calc.wsdl", Operation: "Add", Endpoint: "http://127.0.0.1:1/x",
		Params: map[string]string{"intA": "row.nope", "intB": "row.amount"}}
	w, err := New(t.Context(), cfg, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.Encode(testEvent())
	if err == nil || !strings.Contains(err.Error(), "parameter intA is required and not nillable, but the value is null") {
		t.Errorf("err = %v", err)
	}
	cfg.Params = map[string]string{"intA": "1", "intB": "row.amount"}
	w, _ = New(t.Context(), cfg, Deps{})
	if _, err = w.Encode(testEvent()); err == nil || !strings.Contains(err.Error(), `"1250.50" is not an integer`) {
		t.Errorf("err = %v", err)
	}
	cfg.Params = map[string]string{"intA": "1", "intB": "int(row.potentialname)"}
	w, _ = New(t.Context(), cfg, Deps{})
	if _, err = w.Encode(testEvent()); err == nil || !strings.Contains(err.Error(), "parameter intB:") {
		t.Errorf("err = %v", err)
	}
}

func TestNew_Errors(t *testing.T) {
	srv := newSOAPServer(t)
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"wsdl unreachable", Config{WSDL: srv.URL + "/wsdl/absent.wsdl", Operation: "Add"}, "s.wsdl: load wsdl"},
		{"unknown operation", Config{WSDL: srv.URL + "/wsdl/calc.wsdl", Operation: "Mul"}, "s.operation: soap: unknown operation \"Mul\""},
		{"unknown param", Config{WSDL: srv.URL + "/wsdl/calc.wsdl", Operation: "Add", Params: map[string]string{"intA": "1", "intB": "1", "intX": "1"}}, "s.params.intX: operation Add: soap: unknown parameter \"intX\" (the operation has intA, intB)"},
		{"credentials in url", Config{WSDL: strings.Replace(srv.URL, "http://", "http://user:"+testPass+"@", 1) + "/wsdl/absent.wsdl", Operation: "Add", Auth: AuthConfig{Basic: &BasicAuth{Username: "user", Password: testPass}}}, "s.wsdl: load wsdl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(t.Context(), tt.cfg, Deps{Client: srv.Client(), Path: "s"})
			got := pathErrors(err)
			if len(got) != 1 || !strings.HasPrefix(got[0], tt.want) {
				t.Fatalf("errors = %q, want %q", got, tt.want)
			}
			if strings.Contains(got[0], testPass) {
				t.Errorf("error %q contains the password", got[0])
			}
		})
	}
}

func TestWebhook_Refresh(t *testing.T) {
	srv := newSOAPServer(t)
	cfg := Config{WSDL: srv.URL + "/wsdl/calc.wsdl", Operation: "Add", Params: map[string]string{"intA": "1", "intB": "2"}}
	w, err := New(t.Context(), cfg, Deps{Client: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	first := w.Service()
	srv.mu.Lock()
	srv.wsdlDown = true
	srv.mu.Unlock()
	err = w.Refresh(t.Context())
	if err == nil || !strings.Contains(err.Error(), "HTTP 503") {
		t.Fatalf("refresh with the WSDL down: err = %v", err)
	}
	if w.Service() != first {
		t.Error("failed refresh replaced the service")
	}
	if _, last := w.LastRefresh(); last == nil {
		t.Error("LastRefresh lost the error")
	}
	if _, err := w.Encode(testEvent()); err != nil {
		t.Errorf("encode with the last good WSDL: %v", err)
	}
	srv.mu.Lock()
	srv.wsdlDown = false
	srv.mu.Unlock()
	if err := w.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if w.Service() == first {
		t.Error("successful refresh kept the old service")
	}
	if _, last := w.LastRefresh(); last != nil {
		t.Errorf("LastRefresh = %v after success", last)
	}
}

func TestWebhook_Run(t *testing.T) {
	srv := newSOAPServer(t)
	cfg := Config{WSDL: srv.URL + "/wsdl/calc.wsdl", Operation: "Add", WSDLRefresh: 10 * time.Millisecond,
		Params: map[string]string{"intA": "1", "intB": "2"}}
	w, err := New(t.Context(), cfg, Deps{Client: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	runCtx, stop := context.WithCancel(t.Context())
	go func() { done <- w.Run(runCtx) }()
	// Wait for at least two refresh fetches, then stop.
	for i := 0; ; i++ {
		srv.mu.Lock()
		n := srv.wsdlFetches
		srv.mu.Unlock()
		if n >= 3 {
			break
		}
		if i > 5000 {
			t.Fatal("Run did not refresh")
		}
		time.Sleep(time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		t.Errorf("Run = %v, want nil on cancel", err)
	}
}
