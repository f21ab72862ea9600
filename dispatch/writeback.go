package dispatch

import (
	"context"
	"encoding/json"
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
		c, err := decodeChange(d.Change)
		if err != nil {
			return ev, fmt.Errorf("decode stored change of %s: %w", d.ID, err)
		}
		ev.Change = c
	}
	return ev, nil
}

// encodeChange stores the parts of a change writeback needs.
func encodeChange(c *cdc.Change) (json.RawMessage, error) {
	if c == nil {
		return nil, nil
	}
	type stored struct {
		*cdc.Change
		Columns   []string `json:"columns,omitempty"`
		PKColumns []string `json:"pk_columns,omitempty"`
	}
	return json.Marshal(stored{Change: c, Columns: c.Columns, PKColumns: c.PKColumns})
}

func decodeChange(raw []byte) (*cdc.Change, error) {
	var s struct {
		cdc.Change
		Before    map[string]json.RawMessage `json:"before"`
		After     map[string]json.RawMessage `json:"after"`
		PK        map[string]json.RawMessage `json:"pk"`
		Columns   []string                   `json:"columns"`
		PKColumns []string                   `json:"pk_columns"`
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, err
	}
	c := s.Change
	c.Columns, c.PKColumns = s.Columns, s.PKColumns
	var err error
	if c.Before, err = decodeRow(s.Before); err != nil {
		return nil, err
	}
	if c.After, err = decodeRow(s.After); err != nil {
		return nil, err
	}
	if c.PK, err = decodeRow(s.PK); err != nil {
		return nil, err
	}
	return &c, nil
}

func decodeRow(m map[string]json.RawMessage) (cdc.Row, error) {
	if m == nil {
		return nil, nil
	}
	row := make(cdc.Row, len(m))
	for k, raw := range m {
		var v any
		dec := json.NewDecoder(bytesReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("column %s: %w", k, err)
		}
		row[k] = normalizeNumber(v)
	}
	return row, nil
}

func normalizeNumber(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		if u, err := parseUint(string(x)); err == nil {
			return u
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = normalizeNumber(e)
		}
	case []any:
		for i, e := range x {
			x[i] = normalizeNumber(e)
		}
	}
	return v
}
