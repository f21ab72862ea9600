package soap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
)

// DefaultMaxResponseBytes caps how much of a response Caller reads.
const DefaultMaxResponseBytes = 4 << 20

// HTTPError is a non-2xx response that carries no SOAP Fault.
type HTTPError struct {
	// Status is the HTTP status code.
	Status int
	// Snippet is the start of the body, whitespace-collapsed.
	Snippet string
}

func (e *HTTPError) Error() string {
	msg := fmt.Sprintf("soap call: HTTP %d %s", e.Status, http.StatusText(e.Status))
	if e.Snippet != "" {
		msg += ": " + e.Snippet
	}
	return msg
}

// Permanent reports whether the status means a retry cannot help: 4xx
// other than 408 (timeout) and 429 (too many requests).
func (e *HTTPError) Permanent() bool {
	return e.Status >= 400 && e.Status < 500 && e.Status != http.StatusRequestTimeout && e.Status != http.StatusTooManyRequests
}

// CheckResponse classifies a response to op: a Fault (in any status) is a
// *Fault; another non-2xx status is an *HTTPError; a 2xx body is parsed
// into the result tree (an empty body gives an empty tree, as one-way
// operations answer). A 2xx body that is not SOAP is an error wrapping
// ErrNotSOAP; the call itself succeeded.
func CheckResponse(op *Operation, status int, header http.Header, body []byte) (map[string]any, error) {
	var l *layout
	if op != nil && op.outErr == nil {
		l = op.outLayout
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) > 0 && looksXML(header, trimmed) {
		tree, err := parseResponse(body, l, status)
		var f *Fault
		if errors.As(err, &f) {
			return nil, f
		}
		if err == nil && status >= 200 && status < 300 {
			return tree, nil
		}
		if status >= 200 && status < 300 {
			return nil, err
		}
	}
	if status < 200 || status >= 300 {
		return nil, &HTTPError{Status: status, Snippet: snippet(trimmed)}
	}
	if len(trimmed) == 0 {
		return map[string]any{}, nil
	}
	return nil, fmt.Errorf("%w: content type %q", ErrNotSOAP, header.Get("Content-Type"))
}

func looksXML(h http.Header, body []byte) bool {
	if mt, _, err := mime.ParseMediaType(h.Get("Content-Type")); err == nil && strings.Contains(mt, "xml") {
		return true
	}
	return body[0] == '<'
}

func snippet(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if r := []rune(s); len(r) > 200 {
		s = string(r[:200]) + "…"
	}
	return s
}

// Caller performs SOAP calls.
type Caller struct {
	// Client sends the requests (default http.DefaultClient).
	Client *http.Client
	// Endpoint overrides the operation's soap:address.
	Endpoint string
	// Authorize, when set, adds credentials (HTTP Basic) to each request.
	Authorize func(*http.Request)
	// Security, when set, adds a WS-Security UsernameToken per call.
	Security *Security
	// Header holds extra request headers.
	Header http.Header
	// MaxResponseBytes caps the response read (default
	// DefaultMaxResponseBytes).
	MaxResponseBytes int64
}

// Result is the outcome of one call.
type Result struct {
	// Request is what was built (its Body without the WS-Security header).
	Request *Request
	// Status, Header and Body are the HTTP response (Body size-limited).
	Status int
	Header http.Header
	Body   []byte
	// Tree is the parsed result (see Operation.ParseResponse); nil on error.
	Tree map[string]any
}

// Call builds op's request from values, sends it, and classifies the
// answer with CheckResponse. The Result is returned whenever a response
// came, also with a *Fault or *HTTPError.
func (c *Caller) Call(ctx context.Context, op *Operation, values map[string]any) (*Result, error) {
	req, err := op.BuildRequest(values)
	if err != nil {
		return nil, fmt.Errorf("soap call %s: %w", op.Name, err)
	}
	return c.Send(ctx, op, req)
}

// Send sends a built request for op.
func (c *Caller) Send(ctx context.Context, op *Operation, r *Request) (*Result, error) {
	endpoint := c.Endpoint
	if endpoint == "" {
		endpoint = op.Endpoint
	}
	if endpoint == "" {
		return nil, fmt.Errorf("soap call %s: no endpoint: the WSDL has no soap:address for binding %s; set endpoint", op.Name, op.Binding)
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(r.Body))
	if err != nil {
		return nil, fmt.Errorf("soap call %s: %w", op.Name, err)
	}
	for k, vs := range c.Header {
		for _, v := range vs {
			hreq.Header.Add(k, v)
		}
	}
	hreq.Header.Set("Content-Type", r.ContentType)
	for k, v := range r.Headers {
		hreq.Header.Set(k, v)
	}
	if c.Authorize != nil {
		c.Authorize(hreq)
	}
	if c.Security != nil {
		if err := c.Security.ApplyRequest(hreq); err != nil {
			return nil, fmt.Errorf("soap call %s: %w", op.Name, err)
		}
	}
	client := c.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(hreq)
	if err != nil {
		return nil, fmt.Errorf("soap call %s: %w", op.Name, err)
	}
	defer resp.Body.Close()
	limit := c.MaxResponseBytes
	if limit <= 0 {
		limit = DefaultMaxResponseBytes
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	res := &Result{Request: r, Status: resp.StatusCode, Header: resp.Header, Body: body}
	if err != nil {
		return res, fmt.Errorf("soap call %s: read response: %w", op.Name, err)
	}
	tree, err := CheckResponse(op, resp.StatusCode, resp.Header, body)
	if err != nil {
		return res, err
	}
	res.Tree = tree
	return res, nil
}
