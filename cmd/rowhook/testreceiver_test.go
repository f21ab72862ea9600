package main

import (
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"
)

// testReceiver is the webhook receiver of the tests that count what
// rowhook delivers: it records every delivery by the row id in its body
// (after.id), with the webhook-id it came with; byVersion also keys it by
// the row's "version" column, so that every change of a row is counted,
// not just the row; bodies keeps the first body of each (row, version).
type testReceiver struct {
	mu        sync.Mutex
	byRow     map[int64][]string          // row id → webhook-ids received
	byVersion map[[2]int64][]string       // (row id, version) → webhook-ids received
	bodies    map[[2]int64]map[string]any // (row id, version) → first body
	total     int
}

func (c *testReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body struct {
		After struct {
			ID      int64 `json:"id"`
			Version int64 `json:"version"`
		} `json:"after"`
	}
	var whole map[string]any
	b, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(b, &body); err != nil || body.After.ID == 0 || json.Unmarshal(b, &whole) != nil {
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	wid := r.Header.Get("webhook-id")
	c.mu.Lock()
	if c.byRow == nil {
		c.byRow = map[int64][]string{}
	}
	if c.byVersion == nil {
		c.byVersion = map[[2]int64][]string{}
		c.bodies = map[[2]int64]map[string]any{}
	}
	c.byRow[body.After.ID] = append(c.byRow[body.After.ID], wid)
	k := [2]int64{body.After.ID, body.After.Version}
	c.byVersion[k] = append(c.byVersion[k], wid)
	if _, ok := c.bodies[k]; !ok {
		c.bodies[k] = whole
	}
	c.total++
	c.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (c *testReceiver) distinct() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.byRow)
}

// distinctVersions is the number of different (row, version) pairs received.
func (c *testReceiver) distinctVersions() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.byVersion)
}

// check compares what arrived with want, the (row, version) pairs that
// must arrive: each exactly once up to redeliveries with the same
// webhook-id, nothing else, and no webhook-id shared by two changes. It
// returns the number of redeliveries.
func (c *testReceiver) check(t *testing.T, want map[[2]int64]bool) int {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	dups, bad := 0, 0
	owner := map[string][2]int64{}
	for k, ids := range c.byVersion {
		if !want[k] && bad < 10 {
			bad++
			t.Errorf("row %d version %d delivered but no such matching change was made", k[0], k[1])
		}
		for _, wid := range ids[1:] {
			dups++
			if wid != ids[0] && bad < 10 {
				bad++
				t.Errorf("row %d version %d delivered with different webhook-ids %q and %q", k[0], k[1], ids[0], wid)
			}
		}
		if ids[0] == "" {
			t.Errorf("row %d version %d delivered without webhook-id", k[0], k[1])
		}
		if o, ok := owner[ids[0]]; ok && bad < 10 {
			bad++
			t.Errorf("webhook-id %s used for row %d version %d and row %d version %d", ids[0], o[0], o[1], k[0], k[1])
		}
		owner[ids[0]] = k
	}
	missing := 0
	for k := range want {
		if _, ok := c.byVersion[k]; !ok {
			if missing < 10 {
				t.Errorf("row %d version %d never delivered", k[0], k[1])
			}
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d changes never delivered", missing, len(want))
	}
	return dups
}

// waitFor polls cond every 50ms until it holds or within passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
