package dispatch_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rowhook/rowhook/dispatch"
)

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
