package soap

import (
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// Servers answer in the other SOAP version's fault dialect: node-soap puts
// a 1.2-style Code/Reason fault into a 1.1 envelope for every handler
// exception (with an undeclared SOAP-ENV prefix), and some stacks do the
// reverse. The code and the text are read whatever the envelope's version.
func TestParseResponse_FaultDialects(t *testing.T) {
	tests := []struct {
		name      string
		body      []byte
		version   string
		code      string
		subcodes  []string
		str       string
		permanent bool
		msg       string
	}{
		{"node-soap handler exception: 1.2 fault in 1.1 envelope",
			[]byte(`<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:tns="urn:x"><soap:Body><soap:Fault><soap:Code><soap:Value>SOAP-ENV:Server</soap:Value><soap:Subcode><soap:Value>InternalServerError</soap:Value></soap:Subcode></soap:Code><soap:Reason><soap:Text>Error: ledger locked</soap:Text></soap:Reason></soap:Fault></soap:Body></soap:Envelope>`),
			V11, "Server", []string{"InternalServerError"}, "Error: ledger locked", false, "soap fault Server/InternalServerError: Error: ledger locked"},
		{"soap:Sender in 1.1 envelope",
			envelope(env11, `<s:Fault><s:Code><s:Value>s:Sender</s:Value></s:Code><s:Reason><s:Text xml:lang="en">amount must be positive</s:Text></s:Reason></s:Fault>`),
			V11, "Sender", nil, "amount must be positive", true, "soap fault Sender: amount must be positive"},
		{"bare Sender in 1.1 envelope",
			envelope(env11, `<s:Fault><Code><Value>Sender</Value></Code><Reason><Text>no such account</Text></Reason></s:Fault>`),
			V11, "Sender", nil, "no such account", true, "soap fault Sender: no such account"},
		{"Client in 1.2 style in 1.1 envelope",
			envelope(env11, `<s:Fault><s:Code><s:Value>SOAP-ENV:Client</s:Value></s:Code><s:Reason><s:Text>bad input</s:Text></s:Reason></s:Fault>`),
			V11, "Client", nil, "bad input", true, "soap fault Client: bad input"},
		{"1.2 fault namespace inside 1.1 envelope",
			envelope(env11, `<e:Fault xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Code><e:Value>e:Sender</e:Value></e:Code><e:Reason><e:Text xml:lang="en">rejected</e:Text></e:Reason></e:Fault>`),
			V11, "Sender", nil, "rejected", true, "soap fault Sender: rejected"},
		{"1.1 fault in 1.2 envelope",
			envelope(env12, `<env:Fault><faultcode>env:Client</faultcode><faultstring>missing name</faultstring></env:Fault>`),
			V12, "Client", nil, "missing name", true, "soap fault Client: missing name"},
		{"1.1 server fault in 1.2 envelope",
			envelope(env12, `<env:Fault><env:faultcode>env:Server</env:faultcode><env:faultstring>try later</env:faultstring></env:Fault>`),
			V12, "Server", nil, "try later", false, "soap fault Server: try later"},
		{"1.1 faultstring only in 1.2 envelope",
			envelope(env12, `<env:Fault><faultstring>went wrong</faultstring></env:Fault>`),
			V12, "Server", nil, "went wrong", false, "soap fault Server: went wrong"},
		{"Reason only in 1.1 envelope",
			envelope(env11, `<s:Fault><s:Reason><s:Text>went wrong</s:Text></s:Reason></s:Fault>`),
			V11, "Receiver", nil, "went wrong", false, "soap fault Receiver: went wrong"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := CheckResponse(nil, 500, http.Header{"Content-Type": {"text/xml"}}, tt.body)
			var f *Fault
			if !errors.As(err, &f) {
				t.Fatalf("err = %v, want *Fault", err)
			}
			if f.Version != tt.version || f.Code != tt.code || !reflect.DeepEqual(f.Subcodes, tt.subcodes) || f.String != tt.str {
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

// A 2xx answer whose Body holds a Fault in the other version's namespace is
// a fault, not a result for writeback.
func TestCheckResponse_FaultInOtherNamespaceIn200(t *testing.T) {
	body := envelope(env11, `<e:Fault xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Code><e:Value>e:Receiver</e:Value></e:Code><e:Reason><e:Text>busy</e:Text></e:Reason></e:Fault>`)
	tree, err := CheckResponse(nil, 200, http.Header{"Content-Type": {"text/xml"}}, body)
	var f *Fault
	if !errors.As(err, &f) || !strings.Contains(err.Error(), "busy") {
		t.Fatalf("got %v, %v; want a *Fault with the Reason", tree, err)
	}
}
