package dispatch_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/dispatch"
	"github.com/rowhook/rowhook/dispatch/sqlitestore"
)

// gaugeValue reads a sample of a metric with one label from h's registry.
func gaugeValue(h *harness, name, label string) float64 {
	mfs, _ := h.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == label {
				return m.GetGauge().GetValue()
			}
		}
	}
	return -1
}

func TestDispatcher_Metrics(t *testing.T) {
	rc := newReceiver(t, func(n int, _ *http.Request, _ []byte) (int, http.Header, string) {
		if n == 1 {
			return 500, nil, ""
		}
		return 200, nil, ""
	})
	h := start(t, dispatch.Config{Webhooks: map[string]dispatch.WebhookConfig{"erp": hook(rc.URL)}}, dispatch.Deps{})
	ev := event("E", "erp")
	h.enqueue(ev)
	h.waitStatus(ev, "erp", dispatch.StatusOK)
	expected := `
# HELP rowhook_deliveries_total Delivery attempts by webhook and outcome (ok, retry, failed, dead, gone).
# TYPE rowhook_deliveries_total counter
rowhook_deliveries_total{outcome="dead",webhook="erp"} 0
rowhook_deliveries_total{outcome="failed",webhook="erp"} 0
rowhook_deliveries_total{outcome="gone",webhook="erp"} 0
rowhook_deliveries_total{outcome="ok",webhook="erp"} 1
rowhook_deliveries_total{outcome="retry",webhook="erp"} 1
# HELP rowhook_delivery_retries_total Failed attempts scheduled for another try.
# TYPE rowhook_delivery_retries_total counter
rowhook_delivery_retries_total{webhook="erp"} 1
# HELP rowhook_deliveries_enqueued_total Deliveries written to the outbox (duplicates from replays not counted).
# TYPE rowhook_deliveries_enqueued_total counter
rowhook_deliveries_enqueued_total 1
`
	if err := testutil.GatherAndCompare(h.reg, strings.NewReader(expected), "rowhook_deliveries_total", "rowhook_delivery_retries_total", "rowhook_deliveries_enqueued_total"); err != nil {
		t.Error(err)
	}
	// Queue gauges come from the store at scrape time.
	h.stop()
	ev2 := event("E", "erp")
	st := h.store
	now := time.Now().UTC()
	if _, err := st.Commit(context.Background(), cdc.Checkpoint{File: "b", Pos: 9}, []dispatch.NewDelivery{{
		ID: dispatch.DeliveryID(ev2.ID, "erp", ""), EventID: ev2.ID, Rule: "rule", Event: "E", Webhook: "erp", Key: "k",
		Method: "POST", URL: rc.URL, CreatedAt: now.Add(-90 * time.Second), NextAt: now, EventTime: now}}); err != nil {
		t.Fatal(err)
	}
	// pending 1, failed and dead at 0 (a known webhook), the oldest age.
	n, err := testutil.GatherAndCount(h.reg, "rowhook_queue_depth", "rowhook_oldest_pending_age_seconds")
	if err != nil || n != 4 {
		t.Fatalf("queue gauges: %d samples (%v)", n, err)
	}
	mfs, _ := h.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == "rowhook_oldest_pending_age_seconds" {
			if age := mf.GetMetric()[0].GetGauge().GetValue(); age < 90 || age > 600 {
				t.Errorf("oldest pending age %v, want about 90s", age)
			}
		}
		if mf.GetName() == "rowhook_queue_depth" {
			for _, m := range mf.GetMetric() {
				want := 0.0
				if m.GetLabel()[0].GetValue() == "pending" {
					want = 1
				}
				if m.GetGauge().GetValue() != want {
					t.Errorf("queue depth %v, want %v", m, want)
				}
			}
		}
	}
}

func TestDispatcher_StoreFailureIsSticky(t *testing.T) {
	st, err := sqlitestore.Open(filepath.Join(t.TempDir(), "state.db"), sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d, err := dispatch.New(dispatch.Config{Webhooks: map[string]dispatch.WebhookConfig{"erp": hook("http://127.0.0.1:1/")}}, st, dispatch.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := d.Enqueue(ctx, cdc.Checkpoint{File: "b", Pos: 1}, nil); err != nil {
		t.Fatal(err)
	}
	if err := d.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	st.Close() // the store breaks
	d.Enqueue(ctx, cdc.Checkpoint{File: "b", Pos: 2}, []rulesEvent{event("E", "erp")})
	if err := d.Flush(ctx); err == nil {
		t.Fatal("Flush succeeded on a closed store")
	}
	if err := d.Enqueue(ctx, cdc.Checkpoint{File: "b", Pos: 3}, nil); err == nil {
		t.Error("Enqueue after a failed commit succeeded: the reader would skip the lost transaction")
	}
}

func TestDispatcher_TLS(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.TLS.PeerCertificates) == 0 {
			w.WriteHeader(401)
			return
		}
		w.WriteHeader(200)
	}))
	srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	writePEM(t, ca, "CERTIFICATE", srv.Certificate().Raw)
	// The test server's own certificate and key serve as the client pair.
	cert, key := filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem")
	writePEM(t, cert, "CERTIFICATE", srv.TLS.Certificates[0].Certificate[0])
	der, err := x509.MarshalPKCS8PrivateKey(srv.TLS.Certificates[0].PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, key, "PRIVATE KEY", der)

	untrusted := hook(srv.URL)
	untrusted.Retry.MaxAttempts = 1
	trusted := hook(srv.URL)
	trusted.TLS = dispatch.TLSConfig{CAFile: ca, ClientCertFile: cert, ClientKeyFile: key}
	noClientCert := hook(srv.URL)
	noClientCert.TLS = dispatch.TLSConfig{InsecureSkipVerify: true}
	noClientCert.Retry.MaxAttempts = 1
	h := start(t, dispatch.Config{Webhooks: map[string]dispatch.WebhookConfig{"untrusted": untrusted, "trusted": trusted, "insecure": noClientCert}}, dispatch.Deps{})
	ev := event("E", "untrusted", "trusted", "insecure")
	h.enqueue(ev)
	h.waitStatus(ev, "trusted", dispatch.StatusOK)
	d := h.waitStatus(ev, "untrusted", dispatch.StatusDead)
	if !strings.Contains(d.LastError, "certificate") {
		t.Errorf("untrusted server error %q", d.LastError)
	}
	d = h.waitStatus(ev, "insecure", dispatch.StatusFailed)
	if d.LastStatus != 401 {
		t.Errorf("without client certificate: %d", d.LastStatus)
	}
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
