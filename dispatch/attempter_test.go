package dispatch_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/rowhook/rowhook/dispatch"
	"github.com/rowhook/rowhook/rules"
)

// TestDispatcher_AttemptGoroutinesReused: a queue's attempts run on
// goroutines that, once an attempt is done, take the next one instead of
// a new goroutine per attempt (each grew its stack again through
// net/http), starting the next ready row themselves rather than through
// a pump pass. 300 deliveries at 4 connections start far fewer than 300
// goroutines and pump passes. Each delivery's log line still carries its
// own attributes.
func TestDispatcher_AttemptGoroutinesReused(t *testing.T) {
	rc := newReceiver(t, nil)
	h := start(t, dispatch.Config{Webhooks: map[string]dispatch.WebhookConfig{"erp": hook(rc.URL)}}, dispatch.Deps{})
	before, passes := dispatch.AttempterStarts(), dispatch.QueuePasses(h.d, "erp")
	const n = 300
	var evs []rules.Event
	for range n {
		evs = append(evs, event("E", "erp"))
	}
	h.enqueue(evs...)
	for _, ev := range evs {
		h.waitStatus(ev, "erp", dispatch.StatusOK)
	}
	if started := dispatch.AttempterStarts() - before; started <= 0 || started >= n/3 {
		t.Errorf("%d attempt goroutines started for %d deliveries at 4 connections", started, n)
	}
	// The pump ran a pass per delivery when each attempt's end woke it
	// (285 – 288 passes here); the attempt goroutine now starts the next
	// ready row itself.
	if p := dispatch.QueuePasses(h.d, "erp") - passes; p >= n/4 {
		t.Errorf("%d pump passes for %d deliveries", p, n)
	}
	ids := map[string]bool{}
	for _, ev := range evs {
		ids[dispatch.DeliveryID(ev.Timestamp, ev.ID, "erp", "")] = true
	}
	seen := 0
	for _, line := range strings.Split(h.logs.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil || m["msg"] != "delivered" {
			continue
		}
		id, _ := m["delivery_id"].(string)
		if !ids[id] || m["webhook"] != "erp" || m["attempt"] != float64(1) || m["status"] != float64(200) {
			t.Fatalf("log line %s", line)
		}
		if _, ok := m["subscription"]; ok {
			t.Fatalf("log line of a configured webhook with a subscription: %s", line)
		}
		delete(ids, id)
		seen++
	}
	if seen != n {
		t.Errorf("%d delivered lines for %d deliveries", seen, n)
	}
}
