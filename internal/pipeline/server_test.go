package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// Lag past http.ready_max_lag is reported by /readyz but keeps it at 200
// (a catching-up rowhook keeps its admin page in the Service); /readyz?lag=1
// makes it count. Any other failing check is a 503 either way.
func TestReadyz_LagIsAdvisory(t *testing.T) {
	lagErr := errors.New("lag 2h0m0s over http.ready_max_lag 5m0s")
	var storeErr error
	checks := []readyCheck{
		{name: "binlog", check: func(context.Context) error { return nil }},
		{name: "lag", check: func(context.Context) error { return lagErr }, advisory: true},
		{name: "store", check: func(context.Context) error { return storeErr }},
	}
	reg := prometheus.NewRegistry()
	srv, err := newHTTPServer("127.0.0.1:0", reg, reg, checks, "", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	type answer struct {
		Ready  bool `json:"ready"`
		Checks []struct {
			Check    string `json:"check"`
			OK       bool   `json:"ok"`
			Error    string `json:"error"`
			Advisory bool   `json:"advisory"`
		} `json:"checks"`
	}
	get := func(path string) (int, answer) {
		t.Helper()
		resp, err := http.Get("http://" + srv.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var a answer
		if err := json.Unmarshal(b, &a); err != nil {
			t.Fatalf("%s: %v: %s", path, err, b)
		}
		return resp.StatusCode, a
	}

	code, a := get("/readyz")
	if code != http.StatusOK || !a.Ready {
		t.Fatalf("/readyz with only lag failing = %d ready=%v, want 200 and ready", code, a.Ready)
	}
	if len(a.Checks) != 3 || a.Checks[1].Check != "lag" || a.Checks[1].OK || a.Checks[1].Error != lagErr.Error() || !a.Checks[1].Advisory {
		t.Errorf("/readyz does not report the lag: %+v", a.Checks)
	}
	if code, a = get("/readyz?lag=1"); code != http.StatusServiceUnavailable || a.Ready {
		t.Errorf("/readyz?lag=1 with lag failing = %d ready=%v, want 503", code, a.Ready)
	}
	lagErr = nil
	if code, _ = get("/readyz?lag=1"); code != http.StatusOK {
		t.Errorf("/readyz?lag=1 without lag = %d, want 200", code)
	}
	storeErr = errors.New("state store: disk full")
	if code, a = get("/readyz"); code != http.StatusServiceUnavailable || a.Ready {
		t.Errorf("/readyz with the store failing = %d, want 503", code)
	}
}
