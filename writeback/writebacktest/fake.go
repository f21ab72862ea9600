// Package writebacktest provides a hand-written fake of writeback's Writer
// for the tests of its callers (the dispatcher).
package writebacktest

import (
	"context"
	"sync"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/writeback"
)

// Call is one recorded Apply.
type Call struct {
	DeliveryID string
	Rule       string
	Change     *cdc.Change
	Response   writeback.Response
}

// Writer has the methods of *writeback.Writer that callers use; each
// delegates to its function field when set. It records every Apply and is
// safe for concurrent use.
type Writer struct {
	// ApplyFunc answers Apply; nil succeeds.
	ApplyFunc func(ctx context.Context, deliveryID, rule string, change *cdc.Change, resp writeback.Response) error
	// HasFunc answers Has; nil reports true for every rule.
	HasFunc func(rule string) bool

	mu    sync.Mutex
	calls []Call
}

// Apply records the call and returns ApplyFunc's answer (nil without one).
func (w *Writer) Apply(ctx context.Context, deliveryID, rule string, change *cdc.Change, resp writeback.Response) error {
	w.mu.Lock()
	w.calls = append(w.calls, Call{DeliveryID: deliveryID, Rule: rule, Change: change, Response: resp})
	w.mu.Unlock()
	if w.ApplyFunc != nil {
		return w.ApplyFunc(ctx, deliveryID, rule, change, resp)
	}
	return nil
}

// Has returns HasFunc's answer, true without one.
func (w *Writer) Has(rule string) bool {
	if w.HasFunc != nil {
		return w.HasFunc(rule)
	}
	return true
}

// Calls returns the Apply calls so far, in order.
func (w *Writer) Calls() []Call {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Call(nil), w.calls...)
}
