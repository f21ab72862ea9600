package send

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/rowhook/rowhook/internal/redact"
)

// Redacted replaces secret values in the delivery log.
const Redacted = "[redacted]"

// redactor knows which headers, query parameters and values of one webhook
// are secret.
type redactor struct {
	headers map[string]bool // canonical names
	query   map[string]bool
	values  []string
}

func newRedactor(cfg Config) *redactor {
	r := &redactor{headers: map[string]bool{}, query: map[string]bool{}}
	for _, h := range []string{"Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie", HeaderWebhookSignature, "X-Api-Key", "Api-Key"} {
		r.headers[http.CanonicalHeaderKey(h)] = true
	}
	for _, h := range cfg.SecretHeaders {
		r.headers[http.CanonicalHeaderKey(h)] = true
	}
	if cfg.Auth.Type == "api_key" {
		if cfg.Auth.In == "query" {
			r.query[cfg.Auth.Name] = true
		} else {
			r.headers[http.CanonicalHeaderKey(cfg.Auth.Name)] = true
		}
	}
	for _, q := range []string{"api_key", "apikey", "access_token", "token", "key", "secret", "password", "signature", "sig"} {
		r.query[q] = true
	}
	r.values = cfg.Auth.secrets()
	if len(cfg.Signing.Secret) >= 4 {
		r.values = append(r.values, cfg.Signing.Secret, strings.TrimPrefix(cfg.Signing.Secret, "whsec_"))
	}
	for h, v := range cfg.Headers {
		if r.headers[http.CanonicalHeaderKey(h)] && len(v) >= 4 {
			r.values = append(r.values, v)
		}
	}
	return r
}

// header returns a copy of h with secret values replaced.
func (r *redactor) header(h http.Header) map[string][]string {
	if len(h) == 0 {
		return nil
	}
	out := make(map[string][]string, len(h))
	for k, vs := range h {
		if r.headers[http.CanonicalHeaderKey(k)] {
			out[k] = []string{Redacted}
			continue
		}
		cp := make([]string, len(vs))
		for i, v := range vs {
			cp[i] = r.scrub(v)
		}
		out[k] = cp
	}
	return out
}

// url returns raw without user information and with the values of secret
// query parameters replaced.
func (r *redactor) url(raw string) string {
	return r.scrub(redact.URLParams(raw, func(k string) bool { return r.query[strings.ToLower(k)] || r.query[k] }))
}

// scrub replaces known secret values inside s (error messages, bodies).
func (r *redactor) scrub(s string) string {
	for _, v := range r.values {
		if v != "" && strings.Contains(s, v) {
			s = strings.ReplaceAll(s, v, Redacted)
		}
		if e := url.QueryEscape(v); e != v && strings.Contains(s, e) {
			s = strings.ReplaceAll(s, e, Redacted)
		}
	}
	return s
}

func (r *redactor) scrubBytes(b []byte) []byte {
	if len(r.values) == 0 {
		return b
	}
	return []byte(r.scrub(string(b)))
}
