// Package redact hides the credentials URLs carry (user information, api
// keys and tokens in query values) before a URL reaches a log line, an
// error message, the admin page or the delivery log. It is the one URL
// redactor: MySQL DSNs have theirs in internal/mysqldsn, header and body
// secrets of a webhook are the dispatcher's.
package redact

import (
	"net/url"
	"regexp"
	"strings"
)

// Mask replaces a hidden query value.
const Mask = "redacted"

// URL returns raw for display: without user information or fragment, and
// with every query value replaced by Mask (a parameter without a value,
// such as ?wsdl, stays as it is). A URL that does not parse (a template,
// say) is cut before its query and fragment and loses its user
// information.
func URL(raw string) string { return URLParams(raw, nil) }

// URLParams is URL masking only the values of the query parameters that
// secret reports (every value when secret is nil); the others are kept, in
// their order and encoding.
func URLParams(raw string, secret func(name string) bool) string {
	u, err := url.Parse(raw)
	if err != nil {
		return cut(raw)
	}
	u.User = nil
	u.Fragment, u.RawFragment = "", ""
	u.RawQuery = maskQuery(u.RawQuery, secret)
	return u.String()
}

// maskQuery replaces the values of the secret parameters of a raw query,
// leaving the rest byte for byte.
func maskQuery(raw string, secret func(string) bool) string {
	if raw == "" {
		return raw
	}
	parts := strings.Split(raw, "&")
	for i, p := range parts {
		k, v, ok := strings.Cut(p, "=")
		if !ok || v == "" {
			continue
		}
		if secret != nil {
			name, err := url.QueryUnescape(k)
			if err != nil {
				name = k
			}
			if !secret(name) {
				continue
			}
		}
		parts[i] = k + "=" + Mask
	}
	return strings.Join(parts, "&")
}

// cut keeps what comes before the query and fragment of a URL that does
// not parse, without its user information.
func cut(raw string) string {
	s := raw
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		s = s[:i]
	}
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return s
	}
	host := rest
	if i := strings.Index(rest, "/"); i >= 0 {
		host = rest[:i]
	}
	if at := strings.LastIndex(host, "@"); at >= 0 {
		rest = rest[at+1:]
	}
	return scheme + "://" + rest
}

// urlInText finds URLs in free text: a scheme, ://, and everything up to
// white space, a quote or an angle bracket.
var urlInText = regexp.MustCompile("[a-zA-Z][a-zA-Z0-9+.-]*://[^\\s\"'<>`]+")

// Text returns s with every URL in it redacted as URL does. Punctuation
// that ends a sentence or a clause after a URL stays outside it.
func Text(s string) string {
	return urlInText.ReplaceAllStringFunc(s, func(m string) string {
		trimmed := strings.TrimRight(m, ".,;:!?)]}")
		return URL(trimmed) + m[len(trimmed):]
	})
}

// Error returns err with the URLs in its message redacted as Text does;
// errors.Is and errors.As still see err. An error without a URL to hide is
// returned as it is.
func Error(err error) error {
	if err == nil {
		return nil
	}
	msg := Text(err.Error())
	if msg == err.Error() {
		return err
	}
	return &redactedError{err: err, msg: msg}
}

type redactedError struct {
	err error
	msg string
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
