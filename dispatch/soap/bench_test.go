package soap

import (
	"path/filepath"
	"testing"

	"github.com/rowhook/rowhook/cdc"
)

// Benchmarks of the per-event work (envelope, response) and of a WSDL load
// with an imported XSD. Run: go test -run '^$' -bench . ./dispatch/soap/

func BenchmarkLoader_Load(b *testing.B) {
	loc := filepath.Join("testdata", "wsdl", "orders.wsdl")
	for b.Loop() {
		if _, err := (&Loader{}).Load(b.Context(), loc); err != nil {
			b.Fatal(err)
		}
	}
}

func benchOrderValues() map[string]any {
	lines := make([]any, 10)
	for i := range lines {
		lines[i] = map[string]any{"sku": "SKU-" + string(rune('A'+i)), "quantity": int64(i + 1), "price": cdc.Decimal("19.90")}
	}
	return map[string]any{"order": map[string]any{
		"number": "POT123", "amount": cdc.Decimal("1250.00"), "closingDate": "2026-11-30",
		"customer": map[string]any{"name": "Müller & Söhne <GmbH>", "email": "a@b.example"},
		"line":     lines, "priority": "high", "channel": "crm",
	}}
}

func BenchmarkOperation_BuildRequest(b *testing.B) {
	svc, err := (&Loader{}).Load(b.Context(), filepath.Join("testdata", "wsdl", "orders.wsdl"))
	if err != nil {
		b.Fatal(err)
	}
	op, _ := svc.Operation("CreateOrder", "")
	values := benchOrderValues()
	req, err := op.BuildRequest(values)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(req.Body)))
	for b.Loop() {
		if _, err := op.BuildRequest(values); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOperation_ParseResponse(b *testing.B) {
	svc, err := (&Loader{}).Load(b.Context(), filepath.Join("testdata", "wsdl", "orders.wsdl"))
	if err != nil {
		b.Fatal(err)
	}
	op, _ := svc.Operation("CreateOrder", "")
	body := envelope(env12, `<o:CreateOrderResponse xmlns:o="urn:example:orders"><o:orderId>9000000001</o:orderId><o:status>NEW</o:status><o:accepted>true</o:accepted><o:warning>a</o:warning><o:warning>b</o:warning><o:total>10.50</o:total></o:CreateOrderResponse>`)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := op.ParseResponse(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSecurity_Apply(b *testing.B) {
	s := &Security{Username: "u", Password: "p", Type: PasswordDigest, TTL: 300e9}
	env := []byte(`<?xml version="1.0"?><soap:Envelope xmlns:soap="` + NSSOAP11 + `"><soap:Body><a>1</a></soap:Body></soap:Envelope>`)
	for b.Loop() {
		if _, err := s.Apply(env); err != nil {
			b.Fatal(err)
		}
	}
}
