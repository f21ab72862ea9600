package adminui_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/rowhook/rowhook/dispatch"
	"github.com/rowhook/rowhook/internal/adminui"
)

// The status the page shows carries each webhook's endpoint circuit: erp,
// whose endpoint failed every attempt, is open with its next probe time;
// once the endpoint is back and a delivery to it succeeds, closed.
func TestHandler_StatusShowsCircuit(t *testing.T) {
	e := startEnv(t)
	get := func() map[string]adminui.WebhookStatus {
		t.Helper()
		req, _ := http.NewRequest("GET", e.srv.URL+"/ui/api/status", nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var st adminui.Status
		if err := json.NewDecoder(res.Body).Decode(&st); err != nil {
			t.Fatal(err)
		}
		out := map[string]adminui.WebhookStatus{}
		for _, w := range st.Webhooks {
			out[w.Name] = w
		}
		return out
	}
	// erp failed 6 times (3 deliveries, 2 attempts each): over the
	// failure threshold of 5.
	if w := get()["erp"]; w.Circuit != dispatch.CircuitOpen || w.NextProbeAt == nil {
		t.Errorf("erp after failing 6 times: circuit %q, next probe %v; want open with a probe time", w.Circuit, w.NextProbeAt)
	}
	if w := get()["crm"]; w.Circuit != dispatch.CircuitClosed || w.NextProbeAt != nil {
		t.Errorf("crm: circuit %q, want closed", w.Circuit)
	}
	e.recv.erpDown.Store(false)
	req, _ := http.NewRequest("POST", e.srv.URL+"/deliveries/"+e.ids["erp"][0]+"/redeliver", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode/100 != 2 {
		t.Fatalf("redeliver: %s", res.Status)
	}
	e.waitStatus(t, e.ids["erp"][:1], dispatch.StatusOK)
	deadline := time.Now().Add(15 * time.Second)
	for get()["erp"].Circuit != dispatch.CircuitClosed {
		if time.Now().After(deadline) {
			t.Fatalf("erp circuit %q after a successful delivery, want closed", get()["erp"].Circuit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
