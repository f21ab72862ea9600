package send

import (
	"net/http"
	"strings"
	"testing"
)

func TestRedactor(t *testing.T) {
	cfg := Config{
		Auth:          AuthConfig{Type: "api_key", Name: "apikey", Value: "s3cr3t-key", In: "query"},
		SecretHeaders: []string{"X-Erp-Session"},
		Headers:       map[string]string{"X-Erp-Session": "sess-12345"},
		Signing:       SigningConfig{Secret: testSecret},
	}
	r := newRedactor(cfg)
	u := r.url("https://user:pw@erp/x?apikey=s3cr3t-key&id=7")
	if strings.Contains(u, "s3cr3t") || strings.Contains(u, ":pw@") || !strings.Contains(u, "id=7") {
		t.Errorf("url = %s", u)
	}
	h := r.header(http.Header{"X-Erp-Session": {"sess-12345"}, "Authorization": {"Bearer t"}, "Webhook-Signature": {"v1,x"}, "X-Other": {"contains s3cr3t-key"}})
	for _, k := range []string{"X-Erp-Session", "Authorization", "Webhook-Signature"} {
		if h[k][0] != Redacted {
			t.Errorf("%s = %v", k, h[k])
		}
	}
	if h["X-Other"][0] != "contains "+Redacted {
		t.Errorf("X-Other = %v", h["X-Other"])
	}
}
