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

// TestRedactor_Values: a secret value is scrubbed as it is and query-
// escaped, from strings and bytes; bytes without one come back as they
// are (not copied); a header with no values keeps an empty list.
func TestRedactor_Values(t *testing.T) {
	r := newRedactor(Config{Auth: AuthConfig{Type: "bearer", Token: "tok/en+1"}})
	for _, s := range []string{"a tok/en+1 b", "a tok%2Fen%2B1 b"} {
		if got := r.scrub(s); got != "a "+Redacted+" b" {
			t.Errorf("scrub(%q) = %q", s, got)
		}
		if got := r.scrubBytes([]byte(s)); string(got) != "a "+Redacted+" b" {
			t.Errorf("scrubBytes(%q) = %q", s, got)
		}
	}
	clean := []byte("nothing secret")
	if got := r.scrubBytes(clean); &got[0] != &clean[0] {
		t.Error("scrubBytes copied bytes without a secret")
	}
	h := r.header(http.Header{"X-Empty": {}, "X-Nil": nil, "X-Two": {"1", "tok/en+1"}, "Authorization": {"Bearer tok/en+1"}})
	if v, ok := h["X-Empty"]; !ok || v == nil || len(v) != 0 {
		t.Errorf("X-Empty = %#v", v)
	}
	if v, ok := h["X-Nil"]; !ok || v == nil || len(v) != 0 {
		t.Errorf("X-Nil = %#v (it was an empty list before)", v)
	}
	if v := h["X-Two"]; len(v) != 2 || v[0] != "1" || v[1] != Redacted || cap(v) != 2 {
		t.Errorf("X-Two = %#v", v)
	}
	if v := h["Authorization"]; len(v) != 1 || v[0] != Redacted {
		t.Errorf("Authorization = %#v", v)
	}
}
