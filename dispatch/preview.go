package dispatch

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/rowhook/rowhook/dispatch/send"
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
	d := &Dispatcher{log: slog.New(slog.DiscardHandler), clock: realClock{},
		newSender: func(_ string, cfg send.Config, codec send.Codec) (Sender, error) { return send.New(cfg, codec) }}
	ep, err := d.newEndpoint(name, w, send.DefaultTransport(), encoders, "rowhook")
	if err != nil {
		out.Error = fmt.Sprintf("webhook %s: %v", name, err)
		return out
	}
	sender, ok := ep.sender.(*send.Endpoint)
	if !ok {
		out.Error = fmt.Sprintf("webhook %s: its sender cannot preview", name)
		return out
	}
	nd := d.newDelivery(ev, ep, name, "", "", time.Now(), nil)
	res, err := sender.Preview(context.Background(), send.Request{
		ID: nd.ID, Event: nd.Event, Method: nd.Method, URL: nd.URL,
		ContentType: nd.ContentType, Headers: nd.Headers, Body: nd.Body,
	})
	out.URL, out.Headers, out.Body = res.URL, res.RequestHeaders, string(res.RequestBody)
	switch {
	case nd.Error != "":
		// Build's error (URL template, encoding): the delivery would be
		// stored as failed.
		out.Error = nd.Error
	case err != nil:
		out.Error = err.Error()
	}
	return out
}
