package dispatch

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/rowhook/rowhook/rules"
)

// PreviewRequest is the request a webhook would be sent for an event,
// rendered by the code that renders real deliveries, with every secret
// masked: what the rule studio shows. Nothing is sent or stored.
type PreviewRequest struct {
	Webhook string              `json:"webhook"`
	Method  string              `json:"method"`
	URL     string              `json:"url"`
	Headers map[string][]string `json:"headers,omitempty"`
	Body    string              `json:"body,omitempty"`
	// Error says why the request cannot be built (URL template, encoding,
	// unknown webhook); the delivery would be stored as failed.
	Error string `json:"error,omitempty"`
}

// Preview renders the request webhook name (configured as w) would get for
// ev: URL template, encoder (encoders as in Deps.Encoders), configured
// headers, authentication and signature, as endpoint.attempt builds them,
// then masked by the webhook's redactor. OAuth2 tokens are not fetched:
// their header shows as redacted. Nothing leaves the process.
func Preview(name string, w WebhookConfig, delivery DeliveryConfig, encoders map[string]EncoderFactory, ev *rules.Event) PreviewRequest {
	w = w.withDefaults(delivery)
	out := PreviewRequest{Webhook: name, Method: w.Method}
	d := &Dispatcher{log: slog.New(slog.DiscardHandler)}
	ep, err := d.newEndpoint(name, w, defaultTransport(), encoders, "rowhook")
	if err != nil {
		out.Error = fmt.Sprintf("webhook %s: %v", name, err)
		return out
	}
	nd := d.newDelivery(ev, ep, name, "", "", time.Now(), nil)
	if nd.Error != "" {
		out.Error = ep.red.scrub(nd.Error)
	}
	out.URL = ep.red.url(nd.URL)
	out.Body = string(ep.red.scrubBytes(nd.Body))
	req, err := http.NewRequest(nd.Method, "http://preview.invalid/", bytes.NewReader(nd.Body))
	if err != nil {
		return out
	}
	for k, v := range w.Headers {
		req.Header.Set(k, v)
	}
	for k, v := range nd.Headers {
		req.Header.Set(k, v)
	}
	if nd.ContentType != "" {
		req.Header.Set("Content-Type", nd.ContentType)
	}
	req.Header.Set("User-Agent", ep.userAgent)
	req.Header.Set(HeaderWebhookID, nd.ID)
	req.Header.Set(HeaderEvent, nd.Event)
	switch w.Auth.Type {
	case "oauth2_client_credentials":
		req.Header.Set("Authorization", Redacted)
	default:
		// basic, bearer and api_key set headers or query values only.
		_ = ep.auth.apply(context.Background(), req)
		if q := req.URL.RawQuery; q != "" && nd.URL != "" {
			u := nd.URL
			if bytes.IndexByte([]byte(u), '?') >= 0 {
				u += "&" + q
			} else {
				u += "?" + q
			}
			out.URL = ep.red.url(u)
		}
	}
	if ep.key != nil {
		signRequest(req.Header, ep.key, nd.ID, time.Now(), nd.Body)
	}
	out.Headers = ep.red.header(req.Header)
	return out
}
