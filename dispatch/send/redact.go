package send

import (
	"bytes"
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
	// escaped[i] is url.QueryEscape(values[i]) when it differs, else ""
	// (computed once: scrub runs on every header value of every attempt).
	escaped []string
}

// add makes v a secret value to scrub.
func (r *redactor) add(v string) {
	r.values = append(r.values, v)
	e := url.QueryEscape(v)
	if e == v {
		e = ""
	}
	r.escaped = append(r.escaped, e)
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
	for _, v := range cfg.Auth.secrets() {
		r.add(v)
	}
	if len(cfg.Signing.Secret) >= 4 {
		r.add(cfg.Signing.Secret)
		r.add(strings.TrimPrefix(cfg.Signing.Secret, "whsec_"))
	}
	for h, v := range cfg.Headers {
		if r.headers[http.CanonicalHeaderKey(h)] && len(v) >= 4 {
			r.add(v)
		}
	}
	return r
}

// header returns a copy of h with secret values replaced. Its lists share
// one backing array (each capped at its length, so an append copies).
func (r *redactor) header(h http.Header) map[string][]string {
	if len(h) == 0 {
		return nil
	}
	n := 0
	for _, vs := range h {
		n += len(vs)
	}
	out := make(map[string][]string, len(h))
	all := make([]string, 0, n+len(h))
	for k, vs := range h {
		at := len(all)
		if r.headers[http.CanonicalHeaderKey(k)] {
			all = append(all, Redacted)
		} else {
			for _, v := range vs {
				all = append(all, r.scrub(v))
			}
		}
		// Never nil (an empty list stays []): all has room for one
		// more per key.
		out[k] = all[at:len(all):len(all)]
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
	for i, v := range r.values {
		if v != "" && strings.Contains(s, v) {
			s = strings.ReplaceAll(s, v, Redacted)
		}
		if e := r.escaped[i]; e != "" && strings.Contains(s, e) {
			s = strings.ReplaceAll(s, e, Redacted)
		}
	}
	return s
}

// scrubBytes is scrub for b: b itself when it holds no secret value, else
// a scrubbed copy.
func (r *redactor) scrubBytes(b []byte) []byte {
	for i, v := range r.values {
		if (v != "" && bytes.Contains(b, []byte(v))) || (r.escaped[i] != "" && bytes.Contains(b, []byte(r.escaped[i]))) {
			return []byte(r.scrub(string(b)))
		}
	}
	return b
}
