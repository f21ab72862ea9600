// Package dispatchtest holds hand-written fakes for dispatch's interfaces.
package dispatchtest

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/rowhook/rowhook/dispatch"
	"github.com/rowhook/rowhook/dispatch/send"
	"github.com/rowhook/rowhook/rules"
)

// Clock is a manual dispatch.Clock: time moves only with Advance or Set,
// and After channels fire when it passes their deadline.
type Clock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []waiter
}

type waiter struct {
	at time.Time
	ch chan time.Time
}

var _ dispatch.Clock = (*Clock)(nil)

// NewClock returns a Clock at t.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// After returns a channel that receives once the clock reaches now+d.
func (c *Clock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	at := c.now.Add(d)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, waiter{at, ch})
	return ch
}

// Advance moves the clock forward by d, firing due After channels.
func (c *Clock) Advance(d time.Duration) { c.Set(c.Now().Add(d)) }

// Set moves the clock to t, firing due After channels.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	keep := c.waiters[:0]
	var fire []waiter
	for _, w := range c.waiters {
		if !w.at.After(t) {
			fire = append(fire, w)
		} else {
			keep = append(keep, w)
		}
	}
	c.waiters = keep
	c.mu.Unlock()
	sort.Slice(fire, func(i, j int) bool { return fire[i].at.Before(fire[j].at) })
	for _, w := range fire {
		w.ch <- t
	}
}

// Waiters returns how many After channels are waiting.
func (c *Clock) Waiters() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.waiters)
}

// Writebacker is a dispatch.Writebacker whose behaviour is set by function
// fields; nil fields need nothing and succeed.
type Writebacker struct {
	NeedsFunc func(rule string) bool
	ApplyFunc func(ctx context.Context, deliveryID string, ev dispatch.StoredEvent, resp dispatch.Response) error
}

var _ dispatch.Writebacker = (*Writebacker)(nil)

// Needs calls NeedsFunc.
func (w *Writebacker) Needs(rule string) bool {
	if w.NeedsFunc == nil {
		return false
	}
	return w.NeedsFunc(rule)
}

// Apply calls ApplyFunc.
func (w *Writebacker) Apply(ctx context.Context, id string, ev dispatch.StoredEvent, resp dispatch.Response) error {
	if w.ApplyFunc == nil {
		return nil
	}
	return w.ApplyFunc(ctx, id, ev, resp)
}

// Sender is a dispatch.Sender whose behaviour is set by function fields: a
// nil BuildFunc returns rawURL and an empty payload, a nil SendFunc
// answers 200.
type Sender struct {
	BuildFunc func(ev *rules.Event, rawURL string) (string, send.Payload, error)
	SendFunc  func(ctx context.Context, r send.Request) (send.Result, error)
}

var _ dispatch.Sender = (*Sender)(nil)

// Build calls BuildFunc.
func (s *Sender) Build(ev *rules.Event, rawURL string) (string, send.Payload, error) {
	if s.BuildFunc == nil {
		return rawURL, send.Payload{}, nil
	}
	return s.BuildFunc(ev, rawURL)
}

// Send calls SendFunc.
func (s *Sender) Send(ctx context.Context, r send.Request) (send.Result, error) {
	if s.SendFunc == nil {
		return send.Result{Status: 200}, nil
	}
	return s.SendFunc(ctx, r)
}
