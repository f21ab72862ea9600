package pipeline

import (
	"context"
	"fmt"

	"github.com/rowhook/rowhook/dispatch"
	"github.com/rowhook/rowhook/dispatch/soap"
	"github.com/rowhook/rowhook/writeback"
)

// writebackAdapter lets the dispatcher call the writeback Writer; for SOAP
// webhooks it parses the response into the tree `response.soap` addresses.
type writebackAdapter struct {
	w    *writeback.Writer
	soap *soap.Registry
}

// Needs reports whether rule writes back.
func (a writebackAdapter) Needs(rule string) bool { return a.w.Has(rule) }

// Apply writes a delivery's response back.
func (a writebackAdapter) Apply(ctx context.Context, deliveryID string, ev dispatch.StoredEvent, resp dispatch.Response) error {
	r := writeback.Response{Status: resp.Status, Header: resp.Headers, Body: resp.Body}
	if wh := a.soap.Webhook(ev.Webhook); wh != nil {
		// Typed by the operation's output schema when the WSDL is loaded.
		tree, err := wh.Operation().ParseResponse(resp.Body)
		if err != nil {
			tree, err = soap.ParseResponse(resp.Body)
		}
		if err != nil {
			return fmt.Errorf("parse SOAP response of %s for writeback: %w", deliveryID, err)
		}
		r.SOAP = tree
	}
	return a.w.Apply(ctx, deliveryID, ev.Rule, ev.Change, r)
}

var _ dispatch.Writebacker = writebackAdapter{}

// writebackRetry is the dispatcher's writeback retry policy from the
// writeback: section: max_attempts tries (0 counts as 1), the wait doubling
// from backoff up to max_backoff (writeback.Config.RetryDelay's schedule;
// the dispatcher adds its jitter).
func writebackRetry(c writeback.Config) dispatch.RetryConfig {
	n := max(c.MaxAttempts, 1)
	last := c.MaxBackoff
	if last <= 0 {
		last = c.RetryDelay(min(n, 30)) // no cap: the longest wait used
	}
	return dispatch.RetryConfig{MaxAttempts: n, InitialInterval: c.RetryDelay(1), MaxInterval: max(last, c.RetryDelay(1))}
}
