package soap

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/dispatch"
	"github.com/rowhook/rowhook/dispatch/sqlitestore"
	"github.com/rowhook/rowhook/rules"
)

func soapNode(t *testing.T, src string) yaml.Node {
	t.Helper()
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(src), &n); err != nil {
		t.Fatal(err)
	}
	return *n.Content[0]
}

// TestRegistry_Dispatcher sends a row change through a real dispatcher
// with the SOAP encoder plugged in, to the test SOAP server, and reads the
// result back from the delivery log.
func TestRegistry_Dispatcher(t *testing.T) {
	srv := newSOAPServer(t)
	cfg := dispatch.Config{Webhooks: map[string]dispatch.WebhookConfig{
		"calc": {
			URL: srv.URL + "/calculator.asmx", ContentType: dispatch.ContentSOAP,
			Retry: dispatch.RetryConfig{MaxAttempts: 2, InitialInterval: 10 * time.Millisecond, MaxInterval: 10 * time.Millisecond},
			SOAP:  soapNode(t, "wsdl: "+srv.URL+"/wsdl/calc.wsdl\noperation: Add\nsoap_version: \"1.2\"\nparams:\n  intA: row.a\n  intB: body.b\n"),
		},
	}}
	store, err := sqlitestore.Open(filepath.Join(t.TempDir(), "state.db"), sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	reg := NewRegistry(Deps{Client: srv.Client(), Logger: slog.New(slog.DiscardHandler)})
	ctx, cancel := context.WithCancel(t.Context())
	d, err := dispatch.New(cfg, store, dispatch.Deps{
		Encoders:     map[string]dispatch.EncoderFactory{dispatch.ContentSOAP: reg.Factory(ctx)},
		PollInterval: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if reg.Webhook("calc") == nil || reg.Webhook("calc").Operation().Version != V12 {
		t.Fatal("registry did not build the calc webhook in SOAP 1.2")
	}
	done := make(chan error, 2)
	go func() { done <- d.Run(ctx) }()
	go func() { done <- reg.Run(ctx) }()
	defer func() {
		cancel()
		for i := 0; i < 2; i++ {
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}
	}()
	ev := rules.Event{
		ID: "0-1-9:0:calc", Rule: "calc", Name: "Sum", Webhooks: []string{"calc"}, Key: "crm.t:1",
		Timestamp: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC),
		Body:      rules.Body{{Name: "b", Value: int64(40)}},
		Change:    &cdc.Change{Schema: "crm", Table: "t", Op: cdc.OpInsert, After: cdc.Row{"a": int64(2)}},
	}
	if err := d.Enqueue(t.Context(), cdc.Checkpoint{Flavor: "mariadb", File: "bin.000001", Pos: 4}, []rules.Event{ev}); err != nil {
		t.Fatal(err)
	}
	if err := d.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	id := dispatch.DeliveryID(ev.Timestamp, ev.ID, "calc", "")
	var del dispatch.Delivery
	var log []dispatch.Attempt
	for i := 0; ; i++ {
		del, log, err = store.Get(t.Context(), id)
		if err == nil && del.Status != dispatch.StatusPending {
			break
		}
		if i > 1000 {
			t.Fatalf("delivery still pending: %+v %v", del, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if del.Status != dispatch.StatusOK || len(log) == 0 {
		t.Fatalf("delivery = %+v, log %+v", del, log)
	}
	a := log[len(log)-1]
	if !strings.Contains(string(del.Body), "<ns1:intA>2</ns1:intA><ns1:intB>40</ns1:intB>") {
		t.Errorf("stored request body = %s", del.Body)
	}
	if got := srv.last().Header.Get("Content-Type"); got != `application/soap+xml; charset=utf-8; action="http://tempuri.org/Add"` {
		t.Errorf("content type = %q", got)
	}
	enc := &Encoder{w: reg.Webhook("calc")}
	tree, err := enc.ResponseTree(a.Status, a.ResponseHeaders, a.ResponseBody)
	if err != nil || tree["AddResult"] != int64(42) {
		t.Errorf("response.soap = %v, %v (body %s)", tree, err, a.ResponseBody)
	}
}

func TestValidateConfig(t *testing.T) {
	cfg := dispatch.Config{Webhooks: map[string]dispatch.WebhookConfig{
		"json": {URL: "http://x", ContentType: "json"},
		"erp":  {URL: "http://x", ContentType: "soap", SOAP: soapNode(t, "wsdl: testdata/wsdl/calc.wsdl\noperation: Add\nparams: {intA: '1', intC: '2'}\n")},
		"bad":  {URL: "http://x", ContentType: "soap", SOAP: soapNode(t, "operation: Add\nsoap_version: 3\n")},
	}}
	got := pathErrors(ValidateConfig(cfg))
	want := []string{"webhooks.bad.soap.wsdl: missing", `webhooks.bad.soap.soap_version: must be 1.1 or 1.2, got "3"`}
	if len(got) != 2 || !strings.HasPrefix(got[0], want[0]) || !strings.HasPrefix(got[1], want[1]) {
		t.Fatalf("ValidateConfig = %q", got)
	}
	delete(cfg.Webhooks, "bad")
	got = pathErrors(CheckConfig(t.Context(), cfg, Deps{}))
	if len(got) != 1 || !strings.HasPrefix(got[0], `webhooks.erp.soap.params.intC: operation Add: soap: unknown parameter "intC" (the operation has intA, intB)`) {
		t.Fatalf("CheckConfig = %q", got)
	}
}
