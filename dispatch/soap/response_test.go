package soap

import (
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

const env11 = `<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><s:Body>%s</s:Body></s:Envelope>`
const env12 = `<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Header><h:x xmlns:h="urn:h">1</h:x></env:Header><env:Body>%s</env:Body></env:Envelope>`

func envelope(tmpl, body string) []byte { return []byte(strings.Replace(tmpl, "%s", body, 1)) }

func TestParseResponse(t *testing.T) {
	tests := []struct {
		name string
		body []byte
		want map[string]any
	}{
		{"wrapper unwrapped", envelope(env11, `<AddResponse xmlns="http://tempuri.org/"><AddResult>42</AddResult></AddResponse>`),
			map[string]any{"AddResult": "42"}},
		{"nested and repeated", envelope(env12, `<m:R xmlns:m="urn:m"><m:order><m:id>7</m:id><m:line><m:sku>A</m:sku></m:line><m:line><m:sku>B</m:sku></m:line></m:order><m:note xsi:nil="true" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"/></m:R>`),
			map[string]any{"order": map[string]any{"id": "7", "line": []any{map[string]any{"sku": "A"}, map[string]any{"sku": "B"}}}, "note": nil}},
		{"bare simple element", envelope(env11, `<Result>ok</Result>`), map[string]any{"Result": "ok"}},
		{"several elements", envelope(env11, `<a>1</a><b>2</b>`), map[string]any{"a": "1", "b": "2"}},
		{"empty wrapper", envelope(env11, `<PingResponse/>`), map[string]any{}},
		{"multiRef", envelope(env11, `<ns:r xmlns:ns="urn:q"><count>2</count><quote href="#id0"/></ns:r><multiRef id="id0"><symbol>ACME</symbol></multiRef>`),
			map[string]any{"count": "2", "quote": map[string]any{"symbol": "ACME"}}},
		{"encoded array", envelope(env11, `<r><tags xmlns:se="http://schemas.xmlsoap.org/soap/encoding/" se:arrayType="xsd:string[2]"><item>a</item><item>b</item></tags></r>`),
			map[string]any{"tags": []any{"a", "b"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseResponse(tt.body)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

func TestOperation_ParseResponse(t *testing.T) {
	orders := fileService(t, "orders.wsdl")
	op := mustOp(t, orders, "CreateOrder", "")
	body := envelope(env12, `<o:CreateOrderResponse xmlns:o="urn:example:orders"><o:orderId>9000000001</o:orderId><o:status>NEW</o:status><o:accepted>1</o:accepted><o:warning>w1</o:warning><o:total>10.50</o:total></o:CreateOrderResponse>`)
	got, err := op.ParseResponse(body)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"orderId": int64(9000000001), "status": "NEW", "accepted": true, "warning": []any{"w1"}, "total": "10.50"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v\nwant %#v", got, want)
	}
	calc := fileService(t, "calc.wsdl")
	got, err = mustOp(t, calc, "Divide", V11).ParseResponse(envelope(env11, `<DivideResponse xmlns="http://tempuri.org/"><DivideResult>2.5</DivideResult><Remark xsi:nil="true"/></DivideResponse>`))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, map[string]any{"DivideResult": 2.5, "Remark": nil}) {
		t.Errorf("divide = %#v", got)
	}
}

func TestParseResponse_Fault(t *testing.T) {
	tests := []struct {
		name      string
		body      []byte
		code      string
		subcodes  []string
		str       string
		detail    string
		permanent bool
		msg       string
	}{
		{"1.1 client", envelope(env11, `<s:Fault><faultcode>s:Client</faultcode><faultstring>Division by zero</faultstring><detail><e:error xmlns:e="urn:err"><e:field>divisor</e:field></e:error></detail></s:Fault>`),
			"Client", nil, "Division by zero", `<e:error xmlns:e="urn:err"><e:field>divisor</e:field></e:error>`, true, "soap fault Client: Division by zero (detail: divisor)"},
		{"1.1 server", envelope(env11, `<s:Fault><faultcode>s:Server</faultcode><faultstring>db down</faultstring></s:Fault>`),
			"Server", nil, "db down", "", false, "soap fault Server: db down"},
		{"1.1 dotted", envelope(env11, `<s:Fault><faultcode>s:Client.Authentication</faultcode><faultstring>no</faultstring></s:Fault>`),
			"Client.Authentication", nil, "no", "", true, "soap fault Client.Authentication: no"},
		{"1.1 custom code", envelope(env11, `<s:Fault xmlns:app="urn:app"><faultcode>app:Throttled</faultcode><faultstring>slow down</faultstring></s:Fault>`),
			"Throttled", nil, "slow down", "", false, "soap fault Throttled: slow down"},
		{"1.2 sender", envelope(env12, `<env:Fault><env:Code><env:Value>env:Sender</env:Value><env:Subcode><env:Value xmlns:m="urn:m">m:InvalidNumber</env:Value></env:Subcode></env:Code><env:Reason><env:Text xml:lang="fr">Numéro invalide</env:Text><env:Text xml:lang="en-US">Invalid number</env:Text></env:Reason><env:Detail><m:n xmlns:m="urn:m">12a</m:n></env:Detail></env:Fault>`),
			"Sender", []string{"m:InvalidNumber"}, "Invalid number", `<m:n xmlns:m="urn:m">12a</m:n>`, true, "soap fault Sender/m:InvalidNumber: Invalid number (detail: 12a)"},
		{"1.2 receiver", envelope(env12, `<env:Fault><env:Code><env:Value>env:Receiver</env:Value></env:Code><env:Reason><env:Text xml:lang="en">busy</env:Text></env:Reason></env:Fault>`),
			"Receiver", nil, "busy", "", false, "soap fault Receiver: busy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := CheckResponse(nil, 500, http.Header{"Content-Type": {"text/xml"}}, tt.body)
			var f *Fault
			if !errors.As(err, &f) {
				t.Fatalf("err = %v, want *Fault", err)
			}
			if f.Code != tt.code || !reflect.DeepEqual(f.Subcodes, tt.subcodes) || f.String != tt.str || f.Detail != tt.detail || f.Status != 500 {
				t.Errorf("fault = %+v", f)
			}
			if f.Permanent() != tt.permanent {
				t.Errorf("Permanent() = %v, want %v", f.Permanent(), tt.permanent)
			}
			if f.Error() != tt.msg {
				t.Errorf("Error() = %q, want %q", f.Error(), tt.msg)
			}
		})
	}
}

func TestCheckResponse(t *testing.T) {
	xmlH := http.Header{"Content-Type": {"text/xml; charset=utf-8"}}
	tests := []struct {
		name      string
		status    int
		header    http.Header
		body      string
		want      map[string]any
		err       string
		permanent bool
	}{
		{"ok", 200, xmlH, string(envelope(env11, `<r><a>1</a></r>`)), map[string]any{"a": "1"}, "", false},
		{"one-way empty", 202, http.Header{}, "", map[string]any{}, "", false},
		{"html 503", 503, http.Header{"Content-Type": {"text/html"}}, "<html><body>Service   Unavailable</body></html>", nil, "soap call: HTTP 503 Service Unavailable: <html><body>Service Unavailable</body></html>", false},
		{"404 text", 404, http.Header{"Content-Type": {"text/plain"}}, "no such endpoint", nil, "HTTP 404 Not Found: no such endpoint", true},
		{"429", 429, http.Header{}, "", nil, "HTTP 429", false},
		{"200 not soap", 200, http.Header{"Content-Type": {"application/json"}}, `{"ok":true}`, nil, "not a SOAP envelope", false},
		{"200 other xml", 200, xmlH, `<html/>`, nil, "root is <html>, not Envelope", false},
		{"200 bad namespace", 200, xmlH, `<Envelope xmlns="urn:x"><Body/></Envelope>`, nil, "neither SOAP 1.1 nor 1.2", false},
		{"200 no body", 200, xmlH, `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"/>`, nil, "has no Body", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CheckResponse(nil, tt.status, tt.header, []byte(tt.body))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				var he *HTTPError
				if errors.As(err, &he) && he.Permanent() != tt.permanent {
					t.Errorf("Permanent() = %v, want %v", he.Permanent(), tt.permanent)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestParseResponse_ReferenceBomb(t *testing.T) {
	// Each multiRef refers twice to the next: 2^40 values if copied.
	var b strings.Builder
	b.WriteString(`<r><x href="#0"/></r>`)
	for i := 0; i < 40; i++ {
		fmt.Fprintf(&b, `<multiRef id="%d"><a href="#%d"/><b href="#%d"/></multiRef>`, i, i+1, i+1)
	}
	fmt.Fprintf(&b, `<multiRef id="40">leaf</multiRef>`)
	_, err := ParseResponse(envelope(env11, b.String()))
	if !errors.Is(err, ErrNotSOAP) || !strings.Contains(err.Error(), "more than 100000 values") {
		t.Fatalf("err = %v", err)
	}
	// A cycle ends at the depth limit instead of looping.
	if _, err := ParseResponse(envelope(env11, `<r><x href="#1"/></r><multiRef id="1"><y href="#1"/></multiRef>`)); err != nil {
		t.Fatalf("cycle: %v", err)
	}
}
