package soap

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
)

func TestCaller_Call(t *testing.T) {
	srv := newSOAPServer(t)
	calc := loadTestWSDL(t, srv, "calc.wsdl")
	orders := loadTestWSDL(t, srv, "orders.wsdl")
	quotes := loadTestWSDL(t, srv, "quotes.wsdl")
	sec := &Security{Username: testWSUser, Password: testWSPass, Type: PasswordDigest, TTL: 5 * time.Minute}
	tests := []struct {
		name    string
		svc     *Service
		op, ver string
		sec     *Security
		values  map[string]any
		want    map[string]any
		ctype   string
	}{
		{"document/literal 1.1", calc, "Add", V11, nil, map[string]any{"intA": 2, "intB": 40},
			map[string]any{"AddResult": int64(42)}, "text/xml; charset=utf-8"},
		{"document/literal 1.2", calc, "Add", V12, nil, map[string]any{"intA": -2, "intB": 40},
			map[string]any{"AddResult": int64(38)}, `application/soap+xml; charset=utf-8; action="http://tempuri.org/Add"`},
		{"nil element", calc, "Divide", V12, nil, map[string]any{"dividend": "10", "divisor": "4"},
			map[string]any{"DivideResult": 2.5, "Remark": nil}, ""},
		{"complex, imported XSD, WS-Security digest", orders, "CreateOrder", "", sec, map[string]any{
			"order": map[string]any{"number": "N1", "amount": "99.90", "priority": "normal",
				"customer": map[string]any{"name": "Ann", "phone": "+49 1"},
				"line":     []any{map[string]any{"sku": "ABC", "quantity": 0}, map[string]any{"sku": "DEF", "quantity": 2}}},
		}, map[string]any{"orderId": int64(9000000001), "status": "NEW", "accepted": true, "warning": []any{"line ABC has no quantity"}, "total": "99.90"}, ""},
		{"rpc/literal", quotes, "getQuote", "", nil, map[string]any{"symbol": "ACME", "count": 1},
			map[string]any{"quote": map[string]any{"symbol": "ACME", "price": 101.25, "currency": "EUR"}}, ""},
		{"rpc/encoded multiRef", quotes, "tag", "", nil, map[string]any{"symbol": "XYZ", "tags": []any{"a", "b", "c"}},
			map[string]any{"count": int64(3), "quote": map[string]any{"symbol": "XYZ", "price": 7.5, "currency": "USD"}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Caller{Client: srv.Client(), Security: tt.sec}
			res, err := c.Call(t.Context(), mustOp(t, tt.svc, tt.op, tt.ver), tt.values)
			if err != nil {
				t.Fatalf("call: %v (response %s)", err, resBody(res))
			}
			if !reflect.DeepEqual(res.Tree, tt.want) {
				t.Errorf("tree = %#v\nwant %#v", res.Tree, tt.want)
			}
			if tt.ctype != "" && srv.last().Header.Get("Content-Type") != tt.ctype {
				t.Errorf("content type sent = %q", srv.last().Header.Get("Content-Type"))
			}
			if tt.sec != nil && bytes.Contains(res.Request.Body, []byte("Security")) {
				t.Error("the built request (stored, logged) carries the WS-Security header")
			}
		})
	}
}

func resBody(r *Result) string {
	if r == nil {
		return "none"
	}
	return string(r.Body)
}

func TestCaller_CallFaults(t *testing.T) {
	srv := newSOAPServer(t)
	calc := loadTestWSDL(t, srv, "calc.wsdl")
	orders := loadTestWSDL(t, srv, "orders.wsdl")
	tests := []struct {
		name      string
		op        *Operation
		sec       *Security
		values    map[string]any
		code, str string
		permanent bool
	}{
		{"client fault 1.1", mustOp(t, calc, "Divide", V11), nil, map[string]any{"dividend": 1, "divisor": 0}, "Client", "Division by zero", true},
		{"server fault 1.1", mustOp(t, calc, "Divide", V11), nil, map[string]any{"dividend": 1, "divisor": 1, "note": "crash"}, "Server", "database unavailable", false},
		{"sender fault 1.2", mustOp(t, calc, "Divide", V12), nil, map[string]any{"dividend": 1, "divisor": 0}, "Sender", "Division by zero", true},
		{"receiver fault 1.2", mustOp(t, calc, "Divide", V12), nil, map[string]any{"dividend": 1, "divisor": 1, "note": "crash"}, "Receiver", "database unavailable", false},
		{"wrong ws-security password", mustOp(t, orders, "CreateOrder", ""), &Security{Username: testWSUser, Password: "wrong"},
			map[string]any{"order": map[string]any{"number": "N", "amount": 1, "priority": "low", "customer": map[string]any{"name": "a", "email": "e"}}}, "Sender", "authentication failed", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := (&Caller{Client: srv.Client(), Security: tt.sec}).Call(t.Context(), tt.op, tt.values)
			var f *Fault
			if !errors.As(err, &f) {
				t.Fatalf("err = %v, want *Fault", err)
			}
			if f.Code != tt.code || f.String != tt.str || f.Permanent() != tt.permanent || f.Status != 500 {
				t.Errorf("fault = %+v (permanent %v)", f, f.Permanent())
			}
			if res == nil || res.Status != 500 || len(res.Body) == 0 {
				t.Errorf("result = %+v, want the 500 response", res)
			}
			if tt.sec != nil && strings.Contains(err.Error(), tt.sec.Password) {
				t.Errorf("error %q contains the password", err)
			}
		})
	}
}

func TestCaller_Endpoint(t *testing.T) {
	srv := newSOAPServer(t)
	calc := fileService(t, "calc.wsdl") // soap:address is {{BASE}}: unusable
	c := &Caller{Client: srv.Client(), Endpoint: srv.URL + "/calculator.asmx",
		Authorize: func(r *http.Request) { r.SetBasicAuth(testUser, testPass) }}
	res, err := c.Call(t.Context(), mustOp(t, calc, "Add", V11), map[string]any{"intA": 1, "intB": 1})
	if err != nil {
		t.Fatal(err)
	}
	if res.Tree["AddResult"] != int64(2) {
		t.Errorf("tree = %v", res.Tree)
	}
	if u, p, ok := (&http.Request{Header: srv.last().Header}).BasicAuth(); !ok || u != testUser || p != testPass {
		t.Errorf("basic auth not sent: %v", srv.last().Header)
	}
	if got := srv.last().Header.Get("SOAPAction"); got != `"http://tempuri.org/Add"` {
		t.Errorf("SOAPAction = %q", got)
	}
}

func TestSecurity_Apply(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	nonce := bytes.Repeat([]byte{7}, 16)
	tests := []struct {
		name, typ, envelope string
		version             string
	}{
		{"digest, new header 1.1", PasswordDigest, `<?xml version="1.0"?><soap:Envelope xmlns:soap="` + NSSOAP11 + `"><soap:Body><a/></soap:Body></soap:Envelope>`, V11},
		{"text, existing header 1.2", PasswordText, `<e:Envelope xmlns:e="` + NSSOAP12 + `"><e:Header><x/></e:Header><e:Body><a/></e:Body></e:Envelope>`, V12},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &Security{Username: "u<1>", Password: "p&w", Type: tt.typ, TTL: time.Minute,
				Now: func() time.Time { return now }, Rand: bytes.NewReader(nonce)}
			out, err := s.Apply([]byte(tt.envelope))
			if err != nil {
				t.Fatal(err)
			}
			doc := etree.NewDocument()
			if err := doc.ReadFromBytes(out); err != nil {
				t.Fatalf("result is not XML: %v\n%s", err, out)
			}
			root := doc.Root()
			hdrs := root.SelectElements("Header")
			if len(hdrs) != 1 || root.ChildElements()[0].Tag != "Header" {
				t.Fatalf("want one Header before Body:\n%s", out)
			}
			tok := hdrs[0].FindElement("Security/UsernameToken")
			if tok == nil || text(tok, "Username") != "u<1>" || text(tok, "Created") != "2026-11-23T10:00:00.000Z" {
				t.Fatalf("token = %s", out)
			}
			if text(hdrs[0], "Security/Timestamp/Expires") != "2026-11-23T10:01:00.000Z" {
				t.Errorf("timestamp: %s", out)
			}
			if got := text(tok, "Nonce"); got != base64.StdEncoding.EncodeToString(nonce) {
				t.Errorf("nonce = %s", got)
			}
			mu, _ := attrNS(hdrs[0].FindElement("Security"), space(root), "mustUnderstand")
			if (tt.version == V11 && mu != "1") || (tt.version == V12 && mu != "true") {
				t.Errorf("mustUnderstand = %q", mu)
			}
			pw := text(tok, "Password")
			if tt.typ == PasswordText {
				if pw != "p&w" {
					t.Errorf("password = %q", pw)
				}
				return
			}
			h := sha1.New()
			h.Write(nonce)
			h.Write([]byte("2026-11-23T10:00:00.000Z"))
			h.Write([]byte("p&w"))
			if pw != base64.StdEncoding.EncodeToString(h.Sum(nil)) || strings.Contains(string(out), "p&amp;w") {
				t.Errorf("digest = %q in %s", pw, out)
			}
		})
	}
	if _, err := (&Security{}).Apply([]byte(`<x/>`)); !errors.Is(err, ErrNotSOAP) {
		t.Errorf("no Body: err = %v", err)
	}
}
