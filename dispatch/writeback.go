package dispatch

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/rowhook/rowhook/cdc"
)

// Response is what an endpoint answered to a successful delivery.
type Response struct {
	Status  int         `json:"status"`
	Headers http.Header `json:"headers,omitempty"`
	// Body is read up to delivery.max_response_bytes.
	Body []byte `json:"body,omitempty"`
}

// StoredEvent is the event of a delivery as the store keeps it, for
// writeback: the body as sent and the row change that fired the rule.
type StoredEvent struct {
	ID        string
	Rule      string
	Name      string
	Key       string
	Webhook   string
	Timestamp time.Time
	// Change is the row change decoded from the store: integers come back as
	// int64 (uint64 above MaxInt64), other numbers as float64, DECIMAL and
	// text as string, binary as base64 strings, NULL as nil.
	Change *cdc.Change
}

// Writebacker applies a successful response to the CRM (package writeback).
type Writebacker interface {
	// Needs reports whether rule writes response values back; deliveries of
	// such rules keep their row change and response.
	Needs(rule string) bool
	// Apply writes back the response of delivery deliveryID. It must be
	// idempotent: after a crash it may run again for the same delivery.
	// An error is retried with backoff (delivery.writeback) and then recorded;
	// the HTTP request is never sent again because of it.
	Apply(ctx context.Context, deliveryID string, ev StoredEvent, resp Response) error
}

// storedEvent rebuilds the event of d.
func storedEvent(d *Delivery) (StoredEvent, error) {
	ev := StoredEvent{ID: d.EventID, Rule: d.Rule, Name: d.Event, Key: d.Key, Webhook: d.Webhook, Timestamp: d.EventTime}
	if len(d.Change) > 0 {
		c, err := cdc.UnmarshalChange(d.Change)
		if err != nil {
			return ev, fmt.Errorf("decode stored change of %s: %w", d.ID, err)
		}
		ev.Change = c
	}
	return ev, nil
}
