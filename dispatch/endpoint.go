package dispatch

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"golang.org/x/time/rate"

	"github.com/rowhook/rowhook/dispatch/send"
	"github.com/rowhook/rowhook/rules"
)

// Sender builds and sends the requests of one webhook (or of all
// subscriptions); *send.Endpoint is the implementation.
type Sender interface {
	// Build renders ev into what every attempt sends: the URL (from the
	// webhook's template, or rawURL for subscriptions) and the encoded
	// payload. An error says what failed; the parts that worked are
	// returned with it.
	Build(ev *rules.Event, rawURL string) (string, send.Payload, error)
	// Send sends r once. nil: a response came (Result.Status; the
	// dispatcher judges it). *send.RejectedError: the content type
	// rejected the response (a SOAP fault). *send.RequestError: r cannot
	// be sent. Any other error: no response came (network, timeout,
	// credentials). Error texts and the Result's log fields are redacted.
	Send(ctx context.Context, r send.Request) (send.Result, error)
}

var _ Sender = (*send.Endpoint)(nil)

// EncoderFactory builds the Codec of one webhook from its configuration;
// Deps.Encoders maps a content_type to its factory, so that transports such
// as SOAP plug in from their own package.
type EncoderFactory func(webhook string, cfg WebhookConfig) (send.Codec, error)

// endpoint is one webhook's queue-side settings (or the subscriptions'):
// its configuration, rate limiter and schedule, and the Sender that builds
// and sends its requests.
type endpoint struct {
	name    string
	cfg     WebhookConfig
	sender  Sender
	limiter *rate.Limiter
	sched   Schedule
}

// attempt sends d once. It returns the log entry (redacted), the response
// when one came, and nil, an *AttemptError, or another error (network,
// timeout, credentials: retryable).
func (d *Dispatcher) attempt(ctx context.Context, e *endpoint, dl *Delivery, n int) (Attempt, *Response, error) {
	res, err := e.sender.Send(ctx, send.Request{ID: dl.ID, Event: dl.Event, Method: dl.Method, URL: dl.URL,
		ContentType: dl.ContentType, Headers: dl.Headers, Body: dl.Body})
	a := Attempt{DeliveryID: dl.ID, N: n, Kind: KindAttempt, At: res.Start, Method: dl.Method, URL: res.URL,
		Duration: res.Duration, RequestHeaders: res.RequestHeaders, RequestBody: res.RequestBody}
	var reqErr *send.RequestError
	var rejected *send.RejectedError
	switch {
	case errors.As(err, &reqErr):
		a.Error = err.Error()
		return a, nil, &AttemptError{Err: err}
	case errors.As(err, &rejected):
	case err != nil:
		a.Error = err.Error()
		return a, nil, err
	}
	now := d.clock.Now()
	a.Status, a.ResponseHeaders, a.ResponseBody = res.Status, res.ResponseHeaders, res.ResponseBody
	r := &Response{Status: res.Status, Headers: res.Header, Body: res.Body}
	if rejected != nil {
		ae := &AttemptError{Status: res.Status, Err: rejected.Err}
		var p interface{ Permanent() bool }
		if errors.As(rejected.Err, &p) {
			ae.Retryable = !p.Permanent()
		} else if cerr := classify(res.Status, res.Header, now); cerr != nil {
			ae.Retryable = cerr.(*AttemptError).Retryable
		} else {
			ae.Retryable = true
		}
		ae.Gone = res.Status == http.StatusGone
		ae.RetryAfter = parseRetryAfter(res.Header.Get("Retry-After"), now)
		a.Error = ae.Error()
		return a, r, ae
	}
	if cerr := classify(res.Status, res.Header, now); cerr != nil {
		if res.Location != "" {
			cerr.(*AttemptError).Err = fmt.Errorf("redirect to %s not followed: configure the final URL", res.Location)
		}
		a.Error = cerr.Error()
		return a, r, cerr
	}
	if res.ReadErr != "" {
		// The endpoint said 2xx: the delivery succeeded even if the body
		// was cut off.
		a.Error = "read response: " + res.ReadErr
	}
	return a, r, nil
}
