// Package send builds and sends the HTTP requests of webhook deliveries:
// URL templates and body encoders (at enqueue), then per attempt the
// credentials (OAuth token cache included), the Standard Webhooks
// signature, the request itself over a shared transport (the SSRF guard
// dials for subscriptions), and the redacted record of the exchange the
// delivery log keeps. It knows nothing of queues, retries or stores: the
// dispatcher decides what a result means.
package send

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rowhook/rowhook/rules"
)

// Request is one delivery's stored request, sent as it is on every attempt.
type Request struct {
	// ID is the delivery id: the webhook-id header and the signed id.
	ID string
	// Event is the event name (X-Rowhook-Event).
	Event string
	// Method and URL are where to send; an empty URL fails the attempt
	// with a *RequestError.
	Method, URL string
	// ContentType is the Content-Type header, empty for none.
	ContentType string
	// Headers are the encoder's extra headers (SOAPAction).
	Headers map[string]string
	// Body is the request body.
	Body []byte
}

// Result is what one attempt did. The log fields are redacted; Status,
// Header and Body are the response as received (writeback reads them).
type Result struct {
	// Start is when the attempt began; Duration how long it took.
	Start    time.Time
	Duration time.Duration
	// URL is the redacted URL sent to ("" when there was none).
	URL string
	// RequestHeaders and ResponseHeaders are redacted copies.
	RequestHeaders, ResponseHeaders map[string][]string
	// RequestBody is the redacted request body, nil when redaction left
	// it unchanged (the delivery stores it once); ResponseBody the
	// redacted, truncated response body.
	RequestBody, ResponseBody []byte
	// Status is the HTTP status, 0 when no response came.
	Status int
	// Header and Body are the response's, Body read up to
	// MaxResponseBytes.
	Header http.Header
	Body   []byte
	// Location is the redacted Location header of a 3xx (never followed).
	Location string
	// ReadErr is the redacted error that cut the response body short.
	ReadErr string
}

// RequestError: the request could not be built (no URL, a malformed one).
// Sending it again cannot help.
type RequestError struct{ Err error }

func (e *RequestError) Error() string { return e.Err.Error() }
func (e *RequestError) Unwrap() error { return e.Err }

// RejectedError: a response came, and the Codec's CheckResponse rejected
// it (a SOAP fault). Result holds the response.
type RejectedError struct{ Err error }

func (e *RejectedError) Error() string { return e.Err.Error() }
func (e *RejectedError) Unwrap() error { return e.Err }

// redactedError keeps err for errors.As and errors.Is but says msg, err's
// text with the endpoint's secrets replaced.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// Endpoint builds and sends the requests of one webhook (or of all
// subscriptions): it owns the webhook's HTTP client, credentials, signing
// key, codec and redaction rules. Safe for concurrent use.
type Endpoint struct {
	cfg    Config
	tmpl   *urlTemplate // nil with PerDeliveryURL
	codec  Codec
	client *http.Client
	auth   authenticator
	key    []byte
	red    *redactor
	now    func() time.Time
	// headers are cfg.Headers with canonical names.
	headers [][2]string
	// macs holds keyed HMAC-SHA256 states for signing (hash.Hash).
	macs sync.Pool
	// lastURL is the last request URL parsed (newRequest).
	lastURL atomic.Pointer[parsedURL]
}

// New builds the Endpoint of cfg sending codec's payloads. codec is
// required (use Plain(Builtin(...)) for the built-in content types).
func New(cfg Config, codec Codec) (*Endpoint, error) {
	if codec == nil {
		return nil, errors.New("send: no codec")
	}
	e := &Endpoint{cfg: cfg, codec: codec, red: newRedactor(cfg), now: cfg.Now}
	if e.now == nil {
		e.now = time.Now
	}
	for k, v := range cfg.Headers {
		e.headers = append(e.headers, [2]string{http.CanonicalHeaderKey(k), v})
	}
	var err error
	if !cfg.PerDeliveryURL {
		if e.tmpl, err = parseURLTemplate(cfg.URL); err != nil {
			return nil, fmt.Errorf("url: %w", err)
		}
	}
	for _, v := range codec.Secrets() {
		if len(v) >= 4 {
			e.red.add(v)
		}
	}
	tr := cfg.Transport
	if tr == nil {
		tr = DefaultTransport()
	}
	tc, err := cfg.TLS.tlsConfig()
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	if tc != nil {
		tr = tr.Clone()
		tr.TLSClientConfig = tc
	}
	e.client = &http.Client{Transport: tr, CheckRedirect: noRedirect}
	tokenClient := &http.Client{Transport: tr, Timeout: cfg.Timeout}
	if e.auth, err = newAuthenticator(cfg.Auth, tokenClient); err != nil {
		return nil, err
	}
	if cfg.Signing.Secret != "" {
		if e.key, err = DecodeSecret(cfg.Signing.Secret); err != nil {
			return nil, fmt.Errorf("signing: %w", err)
		}
	}
	return e, nil
}

// DefaultTransport is a keep-alive transport honouring HTTP(S)_PROXY, for
// all webhooks to share.
func DefaultTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          512,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// RedactURL returns raw with any password and secret-looking query
// parameters replaced, for logs.
func RedactURL(raw string) string { return newRedactor(Config{}).url(raw) }

// Build renders ev into what every attempt sends: the URL from the
// webhook's template (rawURL with PerDeliveryURL), with GET fields added
// as query parameters, and the encoded payload. An error says what failed
// (the template, the encoding, or both); the parts that worked are
// returned with it.
func (e *Endpoint) Build(ev *rules.Event, rawURL string) (string, Payload, error) {
	var errs []error
	u := rawURL
	if e.tmpl != nil {
		var err error
		if u, err = e.tmpl.render(ev); err != nil {
			errs = append(errs, err)
		}
	}
	p, err := e.codec.Encode(ev)
	if err != nil {
		errs = append(errs, fmt.Errorf("encode body: %w", err))
	}
	if u != "" && len(p.Query) > 0 {
		u, _ = appendQuery(u, ev.Body, p.Query)
	}
	return u, p, errors.Join(errs...)
}

// Send sends r once. It returns the Result and nil when a response came
// that the codec did not reject (the caller judges the status); a
// *RejectedError when the codec rejected the response; a *RequestError
// when r cannot be sent; any other error when no response came (network,
// timeout, credentials). Every error's text is redacted.
func (e *Endpoint) Send(ctx context.Context, r Request) (Result, error) {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
	defer cancel()
	start := e.now()
	res := Result{Start: start}
	fail := func(err error) (Result, error) {
		res.Duration = e.now().Sub(start)
		return res, &redactedError{msg: e.red.scrub(err.Error()), err: err}
	}
	req, err := e.request(ctx, r, &res, false)
	if err != nil {
		return fail(err)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			ue.URL = res.URL
		}
		return fail(err)
	}
	var body []byte
	var readErr error
	if resp.ContentLength == 0 {
		// No body (http.NoBody): what io.ReadAll returns for one.
		body = []byte{}
	} else {
		body, readErr = io.ReadAll(io.LimitReader(resp.Body, int64(e.cfg.MaxResponseBytes)))
		// Drain a little more so the connection can be reused.
		_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
	}
	resp.Body.Close()
	res.Duration = e.now().Sub(start)
	res.Status, res.Header, res.Body = resp.StatusCode, resp.Header, body
	res.ResponseHeaders = e.red.header(resp.Header)
	res.ResponseBody = e.red.scrubBytes(truncate(body, e.cfg.BodyLimit))
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		if loc := resp.Header.Get("Location"); loc != "" {
			res.Location = e.red.url(loc)
		}
	}
	if readErr != nil {
		res.ReadErr = e.red.scrub(readErr.Error())
	}
	if terr := e.codec.CheckResponse(resp.StatusCode, resp.Header, body); terr != nil {
		return res, &RejectedError{Err: &redactedError{msg: e.red.scrub(terr.Error()), err: terr}}
	}
	return res, nil
}

// request builds the HTTP request Send sends for r, with the configured
// and codec headers, the authentication and the signature, and fills the
// Result's log fields (redacted). preview leaves the network alone: an
// OAuth2 token is not fetched (its header shows as redacted).
func (e *Endpoint) request(ctx context.Context, r Request, res *Result, preview bool) (*http.Request, error) {
	if r.URL == "" {
		return nil, &RequestError{Err: errors.New("delivery has no URL (its URL template failed at enqueue: see the first log entry)")}
	}
	req, u, err := e.newRequest(ctx, r)
	if err != nil {
		res.URL = e.red.url(r.URL)
		return nil, &RequestError{Err: fmt.Errorf("build request: %w", err)}
	}
	if len(r.Body) == 0 {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	// The headers as Header.Set would leave them, set in the same order
	// (a later one replaces an earlier of the same name), with names
	// canonicalized once (New) and the values in one backing array.
	n := len(e.headers) + len(r.Headers) + 6
	if e.key != nil {
		n += 2
	}
	h := make(http.Header, n)
	vals := make([]string, 0, n)
	set := func(k, v string) {
		vals = append(vals, v)
		h[k] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	for _, kv := range e.headers {
		set(kv[0], kv[1])
	}
	for k, v := range r.Headers {
		set(http.CanonicalHeaderKey(k), v)
	}
	if r.ContentType != "" {
		set("Content-Type", r.ContentType)
	}
	set("User-Agent", e.cfg.UserAgent)
	set(canonWebhookID, r.ID)
	set(canonEvent, r.Event)
	req.Header = h
	var authErr error
	if preview && e.cfg.Auth.Type == "oauth2_client_credentials" {
		req.Header.Set("Authorization", Redacted)
	} else {
		authErr = e.auth.apply(ctx, req)
	}
	if authErr == nil {
		authErr = e.codec.Authorize(ctx, req)
	}
	if e.key != nil {
		now := e.now()
		set(canonWebhookTimestamp, strconv.FormatInt(now.Unix(), 10))
		set(canonWebhookSignature, e.sign(r.ID, now, r.Body))
	}
	if u != nil && *req.URL == u.u {
		// Neither the credentials nor the codec changed the URL.
		res.URL = u.redacted
	} else {
		res.URL = e.red.url(req.URL.String())
	}
	res.RequestHeaders = e.red.header(req.Header)
	// The request body is the delivery's own body, stored once with the
	// delivery; the log keeps a copy only when redaction changed it.
	if body := truncate(r.Body, e.cfg.BodyLimit); len(body) > 0 {
		if rb := e.red.scrubBytes(body); !bytes.Equal(rb, body) {
			res.RequestBody = rb
		}
	}
	return req, authErr
}

// parsedURL is a request URL as http.NewRequest parsed it, and its
// redacted text for the log.
type parsedURL struct {
	raw      string
	u        url.URL
	host     string
	redacted string
}

// newRequest is http.NewRequestWithContext for r, without parsing again
// the URL of the endpoint's last request (a webhook without URL
// templates sends every delivery to the same one). It also returns that
// parsed URL, nil when r's had to be parsed.
func (e *Endpoint) newRequest(ctx context.Context, r Request) (*http.Request, *parsedURL, error) {
	body := bytes.NewReader(r.Body)
	p := e.lastURL.Load()
	if p == nil || p.raw != r.URL {
		req, err := http.NewRequestWithContext(ctx, r.Method, r.URL, body)
		if err != nil {
			return nil, nil, err
		}
		p = &parsedURL{raw: r.URL, u: *req.URL, host: req.Host, redacted: e.red.url(req.URL.String())}
		e.lastURL.Store(p)
		return req, nil, nil
	}
	// The same URL: an empty one parses without error (the method and
	// body are handled as for any other).
	req, err := http.NewRequestWithContext(ctx, r.Method, "", body)
	if err != nil {
		return nil, nil, err
	}
	u := p.u
	req.URL, req.Host = &u, p.host
	return req, p, nil
}

// Preview is what Send would send for r, built by the same code with
// every secret masked, and not sent: Result's URL, RequestHeaders and the
// redacted body in RequestBody. Nothing leaves the process (an OAuth2
// token is not fetched). The rule studio shows it.
func (e *Endpoint) Preview(ctx context.Context, r Request) (Result, error) {
	res := Result{Start: e.now()}
	_, err := e.request(ctx, r, &res, true)
	if res.RequestBody == nil {
		res.RequestBody = e.red.scrubBytes(r.Body)
	}
	if err != nil {
		return res, &redactedError{msg: e.red.scrub(err.Error()), err: err}
	}
	return res, nil
}

func truncate(b []byte, n int) []byte {
	if n >= 0 && len(b) > n {
		return b[:n]
	}
	return b
}

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
