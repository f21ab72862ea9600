package send

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/rules"
)

// Payload is an encoded request body, fixed when the delivery is enqueued so
// that every attempt sends the same bytes.
type Payload struct {
	// ContentType is the Content-Type header; empty when there is no body.
	ContentType string
	// Body is the request body.
	Body []byte
	// Query holds fields sent as query parameters (GET).
	Query url.Values
	// Headers are extra request headers the encoding needs (SOAPAction).
	Headers map[string]string
}

// Encoder turns an event into a request payload for one webhook.
// Implementations must be safe for concurrent use and deterministic: the
// same event gives the same bytes.
type Encoder interface {
	Encode(ev *rules.Event) (Payload, error)
}

// Codec is a content type's whole part in a delivery: Encode builds the
// request stored when the event is enqueued, the other methods act on every
// attempt. Built-in content types use Plain, whose attempt methods do
// nothing; SOAP implements all four (WS-Security nonces, fault parsing), so
// a codec cannot lack one without a compile error.
type Codec interface {
	Encoder
	// Authorize adds per-attempt credentials to the request (HTTP Basic, a
	// WS-Security header with a fresh nonce). It runs after the webhook's
	// own auth, before signing.
	Authorize(ctx context.Context, req *http.Request) error
	// CheckResponse judges a response the content type understands better
	// than its HTTP status (a SOAP Fault in a 500, or in a 200). A non-nil
	// error fails the attempt; when it has a Permanent() bool method, that
	// decides whether the attempt is retried. nil leaves the verdict to
	// the HTTP status.
	CheckResponse(status int, header http.Header, body []byte) error
	// Secrets names values (passwords) to redact from the delivery log.
	Secrets() []string
}

// Plain makes a Codec of an Encoder that needs nothing per attempt.
func Plain(e Encoder) Codec { return plain{e} }

type plain struct{ Encoder }

func (plain) Authorize(context.Context, *http.Request) error { return nil }
func (plain) CheckResponse(int, http.Header, []byte) error   { return nil }
func (plain) Secrets() []string                              { return nil }

var _ Codec = plain{}

// EncoderFunc adapts a function to Encoder.
type EncoderFunc func(ev *rules.Event) (Payload, error)

// Encode calls f.
func (f EncoderFunc) Encode(ev *rules.Event) (Payload, error) { return f(ev) }

var _ Encoder = EncoderFunc(nil)

// Builtin returns the encoder of content type contentType (json, form,
// xml, text) for a webhook sending with method (GET sends the fields as
// query parameters); xmlRoot names the root element of xml bodies. false:
// no built-in encoder for contentType.
func Builtin(method, contentType, xmlRoot string) (Encoder, bool) {
	if method == "GET" {
		return EncoderFunc(func(ev *rules.Event) (Payload, error) {
			q, err := formValues(ev.Body)
			return Payload{Query: q}, err
		}), true
	}
	switch contentType {
	case ContentJSON:
		return EncoderFunc(func(ev *rules.Event) (Payload, error) {
			b, err := ev.Body.MarshalJSON()
			return Payload{ContentType: "application/json", Body: b}, err
		}), true
	case ContentForm:
		return EncoderFunc(func(ev *rules.Event) (Payload, error) {
			q, err := formValues(ev.Body)
			if err != nil {
				return Payload{}, err
			}
			return Payload{ContentType: "application/x-www-form-urlencoded", Body: []byte(encodeOrdered(ev.Body, q))}, nil
		}), true
	case ContentXML:
		root := xmlRoot
		return EncoderFunc(func(ev *rules.Event) (Payload, error) {
			b, err := encodeXML(root, ev.Body)
			return Payload{ContentType: "application/xml; charset=utf-8", Body: b}, err
		}), true
	case ContentText:
		return EncoderFunc(func(ev *rules.Event) (Payload, error) {
			b, err := encodeText(ev.Body)
			return Payload{ContentType: "text/plain; charset=utf-8", Body: b}, err
		}), true
	}
	return nil, false
}

// scalarString renders a body value as form, query, XML or text content:
// scalars as text, binary as base64 (as in JSON), nested values as JSON.
func scalarString(v any) (string, error) {
	switch x := v.(type) {
	case nil:
		return "", nil
	case string:
		return x, nil
	case cdc.Decimal:
		return string(x), nil
	case cdc.JSON:
		return string(x), nil
	case cdc.Bytes:
		return base64.StdEncoding.EncodeToString(x), nil
	case []byte:
		return base64.StdEncoding.EncodeToString(x), nil
	case bool:
		return strconv.FormatBool(x), nil
	case int:
		return strconv.Itoa(x), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case int32:
		return strconv.FormatInt(int64(x), 10), nil
	case uint64:
		return strconv.FormatUint(x, 10), nil
	case uint32:
		return strconv.FormatUint(uint64(x), 10), nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case float32:
		return strconv.FormatFloat(float64(x), 'f', -1, 32), nil
	case fmt.Stringer:
		return x.String(), nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("encode value %T: %w", v, err)
	}
	return string(b), nil
}

func formValues(body rules.Body) (url.Values, error) {
	q := url.Values{}
	for _, f := range body {
		s, err := scalarString(f.Value)
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", f.Name, err)
		}
		q.Add(f.Name, s)
	}
	return q, nil
}

// encodeOrdered url-encodes the fields in body order (url.Values.Encode
// sorts keys, which receivers that log raw bodies find surprising).
func encodeOrdered(body rules.Body, q url.Values) string {
	var b strings.Builder
	seen := map[string]int{}
	for _, f := range body {
		vals := q[f.Name]
		i := seen[f.Name]
		seen[f.Name]++
		if i >= len(vals) {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(f.Name))
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(vals[i]))
	}
	return b.String()
}

// appendQuery adds q to rawURL's query, keeping parameters already there.
func appendQuery(rawURL string, body rules.Body, q url.Values) (string, error) {
	if len(q) == 0 {
		return rawURL, nil
	}
	enc := encodeOrdered(body, q)
	if strings.Contains(rawURL, "?") {
		if strings.HasSuffix(rawURL, "?") || strings.HasSuffix(rawURL, "&") {
			return rawURL + enc, nil
		}
		return rawURL + "&" + enc, nil
	}
	return rawURL + "?" + enc, nil
}

func encodeXML(root string, body rules.Body) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(xml.Header)
	if err := xmlElement(&b, root, body); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func xmlElement(b *bytes.Buffer, name string, v any) error {
	name = xmlName(name)
	b.WriteString("<" + name + ">")
	switch x := v.(type) {
	case rules.Body:
		for _, f := range x {
			if err := xmlElement(b, f.Name, f.Value); err != nil {
				return err
			}
		}
	case []any:
		for _, item := range x {
			if err := xmlElement(b, "item", item); err != nil {
				return err
			}
		}
	case map[string]any:
		keys := sortedKeys(x)
		for _, k := range keys {
			if err := xmlElement(b, k, x[k]); err != nil {
				return err
			}
		}
	default:
		s, err := scalarString(v)
		if err != nil {
			return fmt.Errorf("field %s: %w", name, err)
		}
		if err := xml.EscapeText(b, []byte(s)); err != nil {
			return err
		}
	}
	b.WriteString("</" + name + ">")
	return nil
}

// xmlName makes a field name a valid XML element name: invalid characters
// become '_', and a name that cannot start an element gets a '_' prefix.
func xmlName(s string) string {
	if s == "" {
		return "_"
	}
	var b strings.Builder
	for i, r := range s {
		ok := unicode.IsLetter(r) || r == '_' || (i > 0 && (unicode.IsDigit(r) || r == '-' || r == '.'))
		if !ok {
			if i == 0 && (unicode.IsDigit(r) || r == '-' || r == '.') {
				b.WriteByte('_')
				b.WriteRune(r)
				continue
			}
			b.WriteByte('_')
			continue
		}
		b.WriteRune(r)
	}
	out := b.String()
	if strings.HasPrefix(strings.ToLower(out), "xml") {
		out = "_" + out
	}
	return out
}

// ValidXMLName reports whether s can name an XML element as it is.
func ValidXMLName(s string) bool { return s != "" && xmlName(s) == s }

// encodeText sends a one-field body as its bare value, and any other body as
// "name: value" lines.
func encodeText(body rules.Body) ([]byte, error) {
	if len(body) == 1 {
		s, err := scalarString(body[0].Value)
		return []byte(s), err
	}
	var b bytes.Buffer
	for _, f := range body {
		s, err := scalarString(f.Value)
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", f.Name, err)
		}
		b.WriteString(f.Name)
		b.WriteString(": ")
		b.WriteString(strings.ReplaceAll(s, "\n", "\n  "))
		b.WriteByte('\n')
	}
	return b.Bytes(), nil
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}
