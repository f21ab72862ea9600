package soap

import (
	"errors"
	"net/http"
	"testing"
)

// FuzzParseWSDL: any document, loaded as Loader.Load loads a file, gives a
// Service or an error, never a panic;
// a Service's operations list parameters and build (or refuse) requests.
// Seeds: testdata/fuzz/FuzzParseWSDL.
func FuzzParseWSDL(f *testing.F) {
	f.Add([]byte(`<definitions xmlns="http://schemas.xmlsoap.org/wsdl/"/>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		svc, err := parseWSDL(t, "fuzz.wsdl", data)
		if err != nil {
			if svc != nil {
				t.Fatal("service and error")
			}
			return
		}
		for _, o := range svc.Operations() {
			op, err := svc.Operation(o.Name, o.Version)
			if err != nil {
				t.Fatalf("listed operation %s/%s not found: %v", o.Name, o.Version, err)
			}
			params, err := op.Params()
			if err != nil {
				if !errors.Is(err, ErrBadWSDL) {
					t.Fatalf("params error %v does not wrap ErrBadWSDL", err)
				}
				continue
			}
			_, _ = op.OutputParams()
			values := map[string]any{}
			for _, p := range params {
				values[p.Name] = sample(p, 0)
			}
			if req, err := op.BuildRequest(values); err == nil {
				if _, err := parseXML("request", req.Body); err != nil {
					t.Fatalf("built request is not XML: %v\n%s", err, req.Body)
				}
			}
		}
	})
}

// sample invents a value for p.
func sample(p *Param, depth int) any {
	if depth > 8 {
		return nil
	}
	if p.Complex {
		m := map[string]any{}
		for _, c := range p.Children {
			m[c.Name] = sample(c, depth+1)
		}
		return m
	}
	if len(p.Enum) > 0 {
		return p.Enum[0]
	}
	return "1"
}

// FuzzParseResponse: any body gives a tree, a *Fault or an error, never a
// panic. Seeds: testdata/fuzz/FuzzParseResponse.
func FuzzParseResponse(f *testing.F) {
	f.Add([]byte(`<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><r><a>1</a></r></s:Body></s:Envelope>`), 200)
	orders, err := parseWSDL(f, "orders.wsdl", []byte(ordersInline))
	if err != nil {
		f.Fatal(err)
	}
	op, err := orders.Operation("CreateOrder", "")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte, status int) {
		tree, err := ParseResponse(data)
		if err == nil && tree == nil {
			t.Fatal("nil tree without error")
		}
		var fault *Fault
		if errors.As(err, &fault) {
			_ = fault.Error()
			_ = fault.Permanent()
		}
		if _, err := op.ParseResponse(data); err == nil && tree == nil {
			t.Fatal("typed parse succeeded where the untyped one failed")
		}
		_, _ = CheckResponse(op, status, http.Header{"Content-Type": {"text/xml"}}, data)
	})
}

// ordersInline is orders.wsdl with its schema embedded, so that it loads
// on its own.
const ordersInline = `<definitions xmlns="http://schemas.xmlsoap.org/wsdl/" xmlns:soap12="http://schemas.xmlsoap.org/wsdl/soap12/"
 xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:o="urn:example:orders" targetNamespace="urn:example:orders">
<types><xs:schema targetNamespace="urn:example:orders" elementFormDefault="qualified">
<xs:element name="CreateOrder"><xs:complexType><xs:sequence><xs:element name="n" type="xs:int"/></xs:sequence></xs:complexType></xs:element>
<xs:element name="CreateOrderResponse"><xs:complexType><xs:sequence>
<xs:element name="orderId" type="xs:long"/><xs:element name="accepted" type="xs:boolean"/>
<xs:element name="warning" type="xs:string" minOccurs="0" maxOccurs="unbounded"/>
<xs:element name="detail" minOccurs="0"><xs:complexType><xs:sequence><xs:element name="x" type="xs:double" maxOccurs="3"/></xs:sequence></xs:complexType></xs:element>
</xs:sequence></xs:complexType></xs:element>
</xs:schema></types>
<message name="in"><part name="parameters" element="o:CreateOrder"/></message>
<message name="out"><part name="parameters" element="o:CreateOrderResponse"/></message>
<portType name="P"><operation name="CreateOrder"><input message="o:in"/><output message="o:out"/></operation></portType>
<binding name="B" type="o:P"><soap12:binding style="document"/><operation name="CreateOrder"><soap12:operation soapAction="urn:co"/>
<input><soap12:body use="literal"/></input><output><soap12:body use="literal"/></output></operation></binding>
<service name="S"><port name="P" binding="o:B"><soap12:address location="http://localhost/orders"/></port></service>
</definitions>`
