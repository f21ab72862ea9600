package dispatch

import (
	"fmt"

	"github.com/rowhook/rowhook/rules"
)

// Render builds the request of event ev for webhook (or, with webhook
// SubscriptionWebhook, for the subscription whose target is subURL) with
// the dispatcher's configuration, as a new delivery's request is built
// (rowhook redeliver --rerender). It fails when the webhook is not
// configured (ErrUnknownWebhook), subscriptions are off, or the request
// cannot be built (a URL template without a value, a body that does not
// encode), where a new delivery would be stored as failed.
func (d *Dispatcher) Render(ev *rules.Event, webhook, subURL string) (RenderedRequest, error) {
	ep := d.endpoints[webhook]
	if webhook == SubscriptionWebhook {
		if ep = d.subEndpoint; ep == nil {
			return RenderedRequest{}, ErrSubscriptionsDisabled
		}
	}
	if ep == nil {
		return RenderedRequest{}, fmt.Errorf("%w %q", ErrUnknownWebhook, webhook)
	}
	req, err := ep.build(ev, subURL)
	if err != nil {
		return RenderedRequest{}, fmt.Errorf("build the request for %s: %w", webhook, err)
	}
	return req, nil
}

// build is the request of ev to ep (subURL: a subscription's target), for
// a new delivery and a re-render alike.
func (ep *endpoint) build(ev *rules.Event, subURL string) (RenderedRequest, error) {
	u, p, err := ep.sender.Build(ev, subURL)
	return RenderedRequest{Method: ep.cfg.Method, URL: u, ContentType: p.ContentType, Headers: p.Headers, Body: p.Body}, err
}
