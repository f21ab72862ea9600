package dispatch_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/rowhook/rowhook/dispatch"
	"github.com/rowhook/rowhook/dispatch/sqlitestore"
	"github.com/rowhook/rowhook/dispatch/storetest"
)

// TestDispatcher_WebhookStatesPending: each webhook's pending count and
// oldest pending time come from the store (so a re-run by another process
// shows), finished deliveries are not counted, and a webhook with nothing
// queued reports 0 and no time; a store that cannot be read says so.
func TestDispatcher_WebhookStatesPending(t *testing.T) {
	store, err := sqlitestore.Open(filepath.Join(t.TempDir(), "state.db"), sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	a, b, c := storetest.ND("e1", "erp"), storetest.ND("e2", "erp"), storetest.ND("e3", "erp")
	b.CreatedAt = storetest.T0.Add(time.Minute)
	c.CreatedAt = storetest.T0.Add(-time.Hour)
	if _, err := store.Commit(context.Background(), storetest.CP(1), []dispatch.NewDelivery{a, b, c}); err != nil {
		t.Fatal(err)
	}
	// c, the oldest, is finished: it no longer counts.
	if err := store.Record(context.Background(), []dispatch.Result{{Attempt: dispatch.Attempt{DeliveryID: c.ID, N: 1, At: storetest.T0, Status: 200},
		Status: dispatch.StatusOK, Attempts: 1}}); err != nil {
		t.Fatal(err)
	}
	cfg := dispatch.Config{Webhooks: map[string]dispatch.WebhookConfig{"erp": {URL: "http://127.0.0.1:1/erp"}, "crm": {URL: "http://127.0.0.1:1/crm"}}}
	d, err := dispatch.New(cfg, store, dispatch.Deps{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	states := d.WebhookStates()
	if len(states) != 2 || states[0].Name != "crm" || states[1].Name != "erp" {
		t.Fatalf("states = %+v, want crm and erp", states)
	}
	if crm := states[0]; crm.Pending != 0 || crm.OldestPending != nil || crm.QueueError != "" {
		t.Errorf("crm = %+v, want 0 pending and no oldest", crm)
	}
	if erp := states[1]; erp.Pending != 2 || erp.OldestPending == nil || !erp.OldestPending.Equal(storetest.T0) || erp.QueueError != "" {
		t.Errorf("erp = %+v, want 2 pending, the oldest queued at %s", erp, storetest.T0)
	}
	store.Close()
	for _, s := range d.WebhookStates() {
		if s.Pending != -1 || s.QueueError == "" {
			t.Errorf("%s with the store closed = %+v, want -1 pending and the error", s.Name, s)
		}
	}
}
