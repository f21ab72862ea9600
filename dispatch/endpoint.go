package dispatch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"golang.org/x/time/rate"
)

// endpoint sends the deliveries of one webhook (or of all subscriptions):
// it owns the webhook's HTTP client, credentials, signing key, rate limiter
// and redaction rules.
type endpoint struct {
	name      string
	cfg       WebhookConfig
	tmpl      *urlTemplate // nil for subscriptions: their URL is fixed
	enc       Encoder
	client    *http.Client
	auth      authenticator
	key       []byte
	limiter   *rate.Limiter
	sched     Schedule
	red       *redactor
	maxResp   int
	bodyLimit int
	userAgent string
}

// attempt sends d once. It returns the log entry (redacted), the response
// when one came, and nil, an *AttemptError, or another error (network,
// timeout, credentials: retryable).
func (e *endpoint) attempt(ctx context.Context, d *Delivery, n int, clock Clock) (Attempt, *Response, error) {
	start := clock.Now()
	a := Attempt{DeliveryID: d.ID, N: n, Kind: KindAttempt, At: start, Method: d.Method}
	fail := func(err error) (Attempt, *Response, error) {
		a.Duration = clock.Now().Sub(start)
		a.Error = e.red.scrub(err.Error())
		return a, nil, err
	}
	if d.URL == "" {
		a.URL = ""
		return fail(&AttemptError{Err: errors.New("delivery has no URL (its URL template failed at enqueue: see the first log entry)")})
	}
	ctx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, d.Method, d.URL, bytes.NewReader(d.Body))
	if err != nil {
		a.URL = e.red.url(d.URL)
		return fail(&AttemptError{Err: fmt.Errorf("build request: %w", err)})
	}
	if len(d.Body) == 0 {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	for k, v := range e.cfg.Headers {
		req.Header.Set(k, v)
	}
	for k, v := range d.Headers {
		req.Header.Set(k, v)
	}
	if d.ContentType != "" {
		req.Header.Set("Content-Type", d.ContentType)
	}
	req.Header.Set("User-Agent", e.userAgent)
	req.Header.Set(HeaderWebhookID, d.ID)
	req.Header.Set(HeaderEvent, d.Event)
	authErr := e.auth.apply(ctx, req)
	if az, ok := e.enc.(requestAuthorizer); ok && authErr == nil {
		authErr = az.Authorize(ctx, req)
	}
	if e.key != nil {
		signRequest(req.Header, e.key, d.ID, clock.Now(), d.Body)
	}
	a.URL = e.red.url(req.URL.String())
	a.RequestHeaders = e.red.header(req.Header)
	// The request body is the delivery's own body, stored once with the
	// delivery; the log keeps a copy only when redaction changed it.
	if rb := e.red.scrubBytes(truncate(d.Body, e.bodyLimit)); !bytes.Equal(rb, truncate(d.Body, e.bodyLimit)) {
		a.RequestBody = rb
	}
	if authErr != nil {
		return fail(authErr)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			ue.URL = a.URL
		}
		return fail(err)
	}
	body, readErr := io.ReadAll(io.LimitReader(resp.Body, int64(e.maxResp)))
	// Drain a little more so the connection can be reused.
	_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
	resp.Body.Close()
	a.Duration = clock.Now().Sub(start)
	a.Status = resp.StatusCode
	a.ResponseHeaders = e.red.header(resp.Header)
	a.ResponseBody = e.red.scrubBytes(truncate(body, e.bodyLimit))
	r := &Response{Status: resp.StatusCode, Headers: resp.Header, Body: body}
	if rc, ok := e.enc.(responseChecker); ok {
		if terr := rc.CheckResponse(resp.StatusCode, resp.Header, body); terr != nil {
			ae := &AttemptError{Status: resp.StatusCode, Err: terr}
			var p interface{ Permanent() bool }
			if errors.As(terr, &p) {
				ae.Retryable = !p.Permanent()
			} else if cerr := classify(resp.StatusCode, resp.Header, clock.Now()); cerr != nil {
				ae.Retryable = cerr.(*AttemptError).Retryable
			} else {
				ae.Retryable = true
			}
			ae.Gone = resp.StatusCode == http.StatusGone
			ae.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), clock.Now())
			a.Error = e.red.scrub(ae.Error())
			return a, r, ae
		}
	}
	if cerr := classify(resp.StatusCode, resp.Header, clock.Now()); cerr != nil {
		if loc := resp.Header.Get("Location"); resp.StatusCode >= 300 && resp.StatusCode < 400 && loc != "" {
			cerr.(*AttemptError).Err = fmt.Errorf("redirect to %s not followed: configure the final URL", e.red.url(loc))
		}
		a.Error = e.red.scrub(cerr.Error())
		return a, r, cerr
	}
	if readErr != nil {
		// The endpoint said 2xx: the delivery succeeded even if the body
		// was cut off.
		a.Error = e.red.scrub("read response: " + readErr.Error())
	}
	return a, r, nil
}

func truncate(b []byte, n int) []byte {
	if n >= 0 && len(b) > n {
		return b[:n]
	}
	return b
}

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
