package dispatch_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/rowhook/rowhook/dispatch"
	"github.com/rowhook/rowhook/dispatch/adminapi"
	"github.com/rowhook/rowhook/dispatch/dispatchtest"
	"github.com/rowhook/rowhook/dispatch/send"
	"github.com/rowhook/rowhook/rules"
)

const whsec = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func TestDispatcher_ContentTypes(t *testing.T) {
	rc := newReceiver(t, nil)
	mk := func(path, method, ct string) dispatch.WebhookConfig {
		w := hook(rc.URL + path)
		w.Method, w.ContentType = method, ct
		w.Headers = map[string]string{"X-Source": "crm"}
		w.Signing.Secret = whsec
		return w
	}
	cfg := dispatch.Config{Webhooks: map[string]dispatch.WebhookConfig{
		"json": mk("/json/{{ row.potentialid }}", "POST", "json"),
		"form": mk("/form", "PUT", "form"),
		"xml":  func() dispatch.WebhookConfig { w := mk("/xml", "PATCH", "xml"); w.XMLRoot = "deal"; return w }(),
		"text": mk("/text", "POST", "text"),
		"get":  mk("/get?src=crm", "GET", "json"),
		"del":  mk("/del/{{ pk.potentialid }}", "DELETE", "json"),
	}}
	h := start(t, cfg, dispatch.Deps{})
	ev := event("NewOpportunity", "json", "form", "xml", "text", "get", "del")
	h.enqueue(ev)
	for name := range cfg.Webhooks {
		h.waitStatus(ev, name, dispatch.StatusOK)
	}
	id := ev.Body[0].Value.(int64)
	n := func(s string) string { return strings.ReplaceAll(s, "N", itoa(id)) }
	want := map[string]struct{ method, url, ct, body string }{
		"json": {"POST", n("/json/N"), "application/json", n(`{"id":N,"name":"Deal N"}`)},
		"form": {"PUT", "/form", "application/x-www-form-urlencoded", n("id=N&name=Deal+N")},
		"xml":  {"PATCH", "/xml", "application/xml; charset=utf-8", n(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<deal><id>N</id><name>Deal N</name></deal>`)},
		"text": {"POST", "/text", "text/plain; charset=utf-8", n("id: N\nname: Deal N\n")},
		"get":  {"GET", n("/get?src=crm&id=N&name=Deal+N"), "", ""},
		"del":  {"DELETE", n("/del/N"), "application/json", n(`{"id":N,"name":"Deal N"}`)},
	}
	wh, err := standardwebhooks.NewWebhook(whsec)
	if err != nil {
		t.Fatal(err)
	}
	byURL := map[string]recorded{}
	for _, r := range rc.got() {
		byURL[r.URL] = r
	}
	for name, w := range want {
		r, ok := byURL[w.url]
		if !ok {
			t.Errorf("%s: no request to %s (got %v)", name, w.url, keys(byURL))
			continue
		}
		if r.Method != w.method || r.Header.Get("Content-Type") != w.ct || string(r.Body) != w.body {
			t.Errorf("%s: %s %s %q %q, want %s %q %q", name, r.Method, r.URL, r.Header.Get("Content-Type"), r.Body, w.method, w.ct, w.body)
		}
		if got := r.Header.Get("webhook-id"); got != dispatch.DeliveryID(ev.Timestamp, ev.ID, name, "") {
			t.Errorf("%s: webhook-id %q", name, got)
		}
		if r.Header.Get("X-Rowhook-Event") != "NewOpportunity" || r.Header.Get("X-Source") != "crm" {
			t.Errorf("%s: headers %v", name, r.Header)
		}
		if err := wh.Verify(r.Body, r.Header); err != nil {
			t.Errorf("%s: signature: %v", name, err)
		}
	}
}

func itoa(i int64) string { b, _ := json.Marshal(i); return string(b) }

func keys(m map[string]recorded) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestDispatcher_Auth(t *testing.T) {
	var tokenRequests atomic.Int32
	tokenSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tokenRequests.Add(1)
		_ = r.ParseForm()
		user, pass, _ := r.BasicAuth()
		if r.Form.Get("grant_type") != "client_credentials" || user != "client-1" || pass != "client-secret-xyz" || r.Form.Get("audience") != "erp" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"access_token": "oauth-token-abc", "token_type": "Bearer", "expires_in": 3600})
	}))
	t.Cleanup(tokenSrv.Close)
	rc := newReceiver(t, nil)
	mk := func(path string, a dispatch.AuthConfig) dispatch.WebhookConfig {
		w := hook(rc.URL + path)
		w.Auth = a
		return w
	}
	cfg := dispatch.Config{Webhooks: map[string]dispatch.WebhookConfig{
		"none":   mk("/none", dispatch.AuthConfig{}),
		"basic":  mk("/basic", dispatch.AuthConfig{Type: "basic", Username: "crm", Password: "basic-pass-123"}),
		"bearer": mk("/bearer", dispatch.AuthConfig{Type: "bearer", Token: "bearer-token-456"}),
		"keyh":   mk("/keyh", dispatch.AuthConfig{Type: "api_key", Name: "X-Api-Token", Value: "header-key-789"}),
		"keyq":   mk("/keyq", dispatch.AuthConfig{Type: "api_key", Name: "apikey", Value: "query-key-000", In: "query"}),
		"oauth": mk("/oauth", dispatch.AuthConfig{Type: "oauth2_client_credentials", ClientID: "client-1",
			ClientSecret: "client-secret-xyz", TokenURL: tokenSrv.URL, Params: map[string]string{"audience": "erp"}}),
	}}
	h := start(t, cfg, dispatch.Deps{})
	evs := []any{}
	var all []string
	for name := range cfg.Webhooks {
		all = append(all, name)
	}
	for i := 0; i < 3; i++ {
		ev := event("E", all...)
		h.enqueue(ev)
		for _, name := range all {
			h.waitStatus(ev, name, dispatch.StatusOK)
		}
		evs = append(evs, ev)
	}
	for _, r := range rc.got() {
		path, _, _ := strings.Cut(r.URL, "?")
		var ok bool
		switch path {
		case "/none":
			ok = r.Header.Get("Authorization") == ""
		case "/basic":
			ok = r.Header.Get("Authorization") == "Basic "+base64.StdEncoding.EncodeToString([]byte("crm:basic-pass-123"))
		case "/bearer":
			ok = r.Header.Get("Authorization") == "Bearer bearer-token-456"
		case "/keyh":
			ok = r.Header.Get("X-Api-Token") == "header-key-789"
		case "/keyq":
			u, _ := url.Parse(r.URL)
			ok = u.Query().Get("apikey") == "query-key-000"
		case "/oauth":
			ok = r.Header.Get("Authorization") == "Bearer oauth-token-abc"
		}
		if !ok {
			t.Errorf("%s: credentials not as configured: %v", r.URL, r.Header)
		}
	}
	if n := tokenRequests.Load(); n != 1 {
		t.Errorf("token endpoint called %d times for 3 deliveries, want 1 (cached)", n)
	}
	// No secret in the logs or the delivery log.
	secrets := []string{"basic-pass-123", "bearer-token-456", "header-key-789", "query-key-000", "client-secret-xyz", "oauth-token-abc",
		base64.StdEncoding.EncodeToString([]byte("crm:basic-pass-123"))}
	var logText strings.Builder
	logText.WriteString(h.logs.String())
	list, err := h.store.List(context.Background(), dispatch.Filter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range list {
		_, log, err := h.store.Get(context.Background(), d.ID)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(dispatch.ViewDelivery(d, log, 0))
		logText.Write(b)
	}
	for _, s := range secrets {
		if strings.Contains(logText.String(), s) {
			t.Errorf("secret %q found in logs or delivery log", s)
		}
	}
	if !strings.Contains(logText.String(), send.Redacted) {
		t.Error("delivery log shows no redaction at all")
	}
}

func TestDispatcher_ReceiverDownThenUp(t *testing.T) {
	rc := newReceiver(t, func(n int, _ *http.Request, _ []byte) (int, http.Header, string) {
		if n <= 3 {
			return 503, nil, "down"
		}
		return 200, nil, "ok"
	})
	w := hook(rc.URL)
	w.Signing.Secret = whsec
	h := start(t, dispatch.Config{Webhooks: map[string]dispatch.WebhookConfig{"erp": w}}, dispatch.Deps{})
	ev := event("E", "erp")
	h.enqueue(ev)
	d := h.waitStatus(ev, "erp", dispatch.StatusOK)
	if d.Attempts != 4 {
		t.Errorf("attempts = %d, want 4", d.Attempts)
	}
	reqs := rc.got()
	if len(reqs) != 4 {
		t.Fatalf("%d requests, want 4", len(reqs))
	}
	wh, _ := standardwebhooks.NewWebhook(whsec)
	for i, r := range reqs {
		if r.Header.Get("webhook-id") != d.ID {
			t.Errorf("attempt %d webhook-id %q, want %q", i+1, r.Header.Get("webhook-id"), d.ID)
		}
		if err := wh.Verify(r.Body, r.Header); err != nil {
			t.Errorf("attempt %d: %v", i+1, err)
		}
	}
	_, log := h.delivery(ev, "erp")
	if len(log) != 4 || log[0].Status != 503 || log[3].Status != 200 || string(log[0].ResponseBody) != "down" {
		t.Errorf("delivery log: %+v", log)
	}
}

func TestDispatcher_RetryAfter(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	clock := dispatchtest.NewClock(t0)
	rc := newReceiver(t, func(n int, _ *http.Request, _ []byte) (int, http.Header, string) {
		if n == 1 {
			return 429, http.Header{"Retry-After": {"120"}}, "slow down"
		}
		return 200, nil, ""
	})
	w := hook(rc.URL)
	w.Retry = dispatch.RetryConfig{MaxAttempts: 3, InitialInterval: time.Second, MaxInterval: time.Hour}
	h := start(t, dispatch.Config{Webhooks: map[string]dispatch.WebhookConfig{"erp": w}}, dispatch.Deps{Clock: clock, Jitter: func() float64 { return 1 }})
	ev := event("E", "erp")
	h.enqueue(ev)
	waitFor(t, "first attempt recorded", func() bool { d, _ := h.delivery(ev, "erp"); return d.Attempts == 1 })
	d, _ := h.delivery(ev, "erp")
	if d.Status != dispatch.StatusPending || !d.NextAt.Equal(t0.Add(120*time.Second)) {
		t.Fatalf("after 429: status %s next_at %v, want pending at +120s", d.Status, d.NextAt)
	}
	clock.Advance(119 * time.Second)
	time.Sleep(100 * time.Millisecond)
	if rc.count() != 1 {
		t.Fatalf("retried before Retry-After: %d requests", rc.count())
	}
	clock.Advance(time.Second)
	h.waitStatus(ev, "erp", dispatch.StatusOK)
}

func TestDispatcher_PermanentAndGone(t *testing.T) {
	var gone atomic.Bool
	gone.Store(true)
	bad := newReceiver(t, func(int, *http.Request, []byte) (int, http.Header, string) { return 422, nil, `{"error":"bad field"}` })
	goneRc := newReceiver(t, func(int, *http.Request, []byte) (int, http.Header, string) {
		if gone.Load() {
			return 410, nil, ""
		}
		return 200, nil, ""
	})
	cfg := dispatch.Config{Webhooks: map[string]dispatch.WebhookConfig{"bad": hook(bad.URL), "gone": hook(goneRc.URL)}}
	h := start(t, cfg, dispatch.Deps{AdminOpen: true})
	ev := event("E", "bad")
	h.enqueue(ev)
	d := h.waitStatus(ev, "bad", dispatch.StatusFailed)
	if d.Attempts != 1 || d.LastStatus != 422 {
		t.Errorf("permanent failure: %+v", d)
	}
	ev1 := event("E", "gone")
	h.enqueue(ev1)
	h.waitStatus(ev1, "gone", dispatch.StatusFailed)
	ev2 := event("E", "gone")
	h.enqueue(ev2)
	time.Sleep(200 * time.Millisecond)
	if d, _ := h.delivery(ev2, "gone"); d.Status != dispatch.StatusPending || d.Attempts != 0 {
		t.Fatalf("delivery to a disabled webhook was attempted: %+v", d)
	}
	if goneRc.count() != 1 {
		t.Errorf("gone endpoint got %d requests, want 1", goneRc.count())
	}
	admin := adminapi.New(h.d)
	code, body := adminRequest(t, admin, "GET", "/webhooks", "", "")
	if code != 200 || !strings.Contains(mustJSON(body), `"state":"disabled"`) {
		t.Errorf("GET /webhooks = %d %v", code, body)
	}
	gone.Store(false)
	if code, _ := adminRequest(t, admin, "POST", "/webhooks/gone/enable", "", ""); code != 204 {
		t.Fatalf("enable = %d", code)
	}
	h.waitStatus(ev2, "gone", dispatch.StatusOK)
	// The disabled state survives a restart: it is in the store.
	if m, _ := h.store.DisabledWebhooks(context.Background()); len(m) != 0 {
		t.Errorf("still disabled in store: %v", m)
	}
}

func mustJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

func TestDispatcher_DeadLetterRedeliver(t *testing.T) {
	var up atomic.Bool
	rc := newReceiver(t, func(int, *http.Request, []byte) (int, http.Header, string) {
		if up.Load() {
			return 200, nil, ""
		}
		return 500, nil, "boom"
	})
	w := hook(rc.URL)
	w.Retry.MaxAttempts = 2
	for _, allow := range []bool{false, true} {
		cfg := dispatch.Config{Webhooks: map[string]dispatch.WebhookConfig{"erp": w}}
		cfg.Admin.AllowRedeliver = allow
		cfg.Admin.Token = "admin-token"
		up.Store(false)
		h := start(t, cfg, dispatch.Deps{})
		ev := event("E", "erp")
		h.enqueue(ev)
		d := h.waitStatus(ev, "erp", dispatch.StatusDead)
		if d.Attempts != 2 {
			t.Errorf("dead after %d attempts, want 2", d.Attempts)
		}
		admin := adminapi.New(h.d)
		if code, _ := adminRequest(t, admin, "POST", "/deliveries/"+d.ID+"/redeliver", "", ""); code != 401 {
			t.Errorf("redeliver without token = %d, want 401", code)
		}
		up.Store(true)
		code, body := adminRequest(t, admin, "POST", "/deliveries/"+d.ID+"/redeliver", "admin-token", "")
		if !allow {
			if code != 403 {
				t.Errorf("redeliver when not allowed = %d %v, want 403", code, body)
			}
			h.stop()
			continue
		}
		if code != 202 {
			t.Fatalf("redeliver = %d %v", code, body)
		}
		d = h.waitStatus(ev, "erp", dispatch.StatusOK)
		if d.Redelivered != 1 {
			t.Errorf("redelivered = %d", d.Redelivered)
		}
		code, body = adminRequest(t, admin, "GET", "/deliveries/"+d.ID, "admin-token", "")
		text := mustJSON(body)
		if code != 200 || !strings.Contains(text, `"kind":"redeliver"`) || !strings.Contains(text, "redelivered by admin API (token-authenticated, from 127.0.0.1) at ") {
			t.Errorf("GET delivery after redeliver = %d %s", code, text)
		}
		if !strings.Contains(h.logs.String(), "deliveries re-run") {
			t.Error("re-run not logged")
		}
		// Bulk: another dead one, re-run by status.
		up.Store(false)
		ev2 := event("E", "erp")
		h.enqueue(ev2)
		h.waitStatus(ev2, "erp", dispatch.StatusDead)
		up.Store(true)
		code, body = adminRequest(t, admin, "POST", "/deliveries/redeliver?status=dead&since=1h", "admin-token", "")
		if code != 202 || !strings.Contains(mustJSON(body), dispatch.DeliveryID(ev2.Timestamp, ev2.ID, "erp", "")) {
			t.Fatalf("bulk redeliver = %d %v", code, body)
		}
		h.waitStatus(ev2, "erp", dispatch.StatusOK)
		code, body = adminRequest(t, admin, "GET", "/deliveries?status=ok&webhook=erp", "admin-token", "")
		if code != 200 || len(body["deliveries"].([]any)) != 2 {
			t.Errorf("list ok = %d %v", code, body)
		}
	}
}

func TestDispatcher_Scheduled(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 10, 7, 0, 0, time.UTC)
	clock := dispatchtest.NewClock(t0)
	rc := newReceiver(t, nil)
	w := hook(rc.URL)
	w.Mode, w.Schedule = dispatch.ModeScheduled, "0 * * * *"
	h := start(t, dispatch.Config{Webhooks: map[string]dispatch.WebhookConfig{"batch": w}}, dispatch.Deps{Clock: clock})
	var evs []any
	for i := 0; i < 3; i++ {
		ev := event("E", "batch")
		h.enqueue(ev)
		evs = append(evs, ev)
		d, _ := h.delivery(ev, "batch")
		if !d.NextAt.Equal(time.Date(2026, 11, 23, 11, 0, 0, 0, time.UTC)) {
			t.Fatalf("scheduled next_at = %v, want 11:00", d.NextAt)
		}
	}
	clock.Advance(30 * time.Minute)
	time.Sleep(150 * time.Millisecond)
	if rc.count() != 0 {
		t.Fatalf("scheduled webhook sent %d before its time", rc.count())
	}
	clock.Set(time.Date(2026, 11, 23, 11, 0, 0, 0, time.UTC))
	waitFor(t, "the batch", func() bool { return rc.count() == 3 })
}

func TestDispatcher_PerRecordOrdering(t *testing.T) {
	var failedOnce atomic.Bool
	rc := newReceiver(t, func(_ int, _ *http.Request, body []byte) (int, http.Header, string) {
		if strings.Contains(string(body), `"step":1,"rec":"A"`) && !failedOnce.Swap(true) {
			return 500, nil, ""
		}
		return 200, nil, ""
	})
	w := hook(rc.URL)
	w.Ordering = dispatch.OrderingPerRecord
	w.Concurrency = 4
	w.Retry.InitialInterval, w.Retry.MaxInterval = 100*time.Millisecond, 100*time.Millisecond
	h := start(t, dispatch.Config{Webhooks: map[string]dispatch.WebhookConfig{"erp": w}}, dispatch.Deps{Jitter: func() float64 { return 1 }})
	mk := func(rec string, step int) rulesEvent {
		ev := event("E", "erp")
		ev.Key = "crm.t:" + rec
		ev.Body = append(ev.Body[:0:0], field("step", step), field("rec", rec))
		return ev
	}
	a1, a2, a3, b1 := mk("A", 1), mk("A", 2), mk("A", 3), mk("B", 1)
	h.enqueue(a1, a2, a3, b1)
	for _, ev := range []rulesEvent{a1, a2, a3, b1} {
		h.waitStatus(ev, "erp", dispatch.StatusOK)
	}
	var order []string
	for _, r := range rc.got() {
		var b struct {
			Step int
			Rec  string
		}
		json.Unmarshal(r.Body, &b)
		order = append(order, b.Rec+itoa(int64(b.Step)))
	}
	// A1 fails once and is retried before A2 and A3; B1 is not held up.
	want := "A1 B1 A1 A2 A3"
	if got := strings.Join(order, " "); got != want && got != "B1 A1 A1 A2 A3" {
		t.Errorf("order = %s, want %s", got, want)
	}
}

func TestDispatcher_SlowDoesNotBlockFast(t *testing.T) {
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(release) })
	rc := newReceiver(t, nil)
	ws, wf := hook(slow.URL), hook(rc.URL)
	ws.Concurrency, ws.Timeout = 1, time.Minute
	h := start(t, dispatch.Config{Webhooks: map[string]dispatch.WebhookConfig{"slow": ws, "fast": wf}}, dispatch.Deps{DrainTimeout: 100 * time.Millisecond})
	var last rulesEvent
	for i := 0; i < 20; i++ {
		last = event("E", "slow", "fast")
		h.enqueue(last)
	}
	waitFor(t, "20 fast deliveries", func() bool { return rc.count() >= 20 })
	if rc.count() != 20 {
		t.Errorf("fast receiver got %d requests, want 20", rc.count())
	}
	if d, _ := h.delivery(last, "slow"); d.Status != dispatch.StatusPending {
		t.Errorf("slow delivery status %s", d.Status)
	}
}

func TestDispatcher_Subscriptions(t *testing.T) {
	var gone atomic.Bool
	rc := newReceiver(t, func(int, *http.Request, []byte) (int, http.Header, string) {
		if gone.Load() {
			return 410, nil, ""
		}
		return 200, nil, ""
	})
	cfg := dispatch.Config{}
	cfg.Admin.Token = "tok"
	cfg.Admin.Subscriptions.Enabled = true
	cfg.Admin.Subscriptions.Signing.Secret = whsec
	cfg.Delivery.Retry = fast()
	h := start(t, cfg, dispatch.Deps{})
	admin := adminapi.New(h.d)
	// The SSRF guard refuses private and link-local targets.
	for _, target := range []string{"http://169.254.169.254/latest/meta-data", "http://10.0.0.5/", "http://[::1]:8080/", "file:///etc/passwd"} {
		code, body := adminRequest(t, admin, "POST", "/subscriptions", "tok", `{"target_url":"`+target+`","event":"E"}`)
		if code != 400 {
			t.Errorf("subscribe %s = %d %v, want 400", target, code, body)
		}
	}
	code, body := adminRequest(t, admin, "POST", "/subscriptions", "tok", `{"target_url":"`+rc.URL+`/hook","event":"E"}`)
	if code != 400 || !strings.Contains(mustJSON(body), "not allowed") {
		t.Errorf("loopback without allow-list = %d %v", code, body)
	}
	h.stop()

	cfg.Admin.Subscriptions.AllowedHosts = []string{"127.0.0.1"}
	h = start(t, cfg, dispatch.Deps{})
	admin = adminapi.New(h.d)
	code, body = adminRequest(t, admin, "POST", "/subscriptions", "tok", `{"target_url":"`+rc.URL+`/hook","event":"E"}`)
	if code != 201 {
		t.Fatalf("subscribe = %d %v", code, body)
	}
	subID := body["id"].(string)
	ev := event("E", []string{}...)
	other := event("Other", []string{}...)
	h.enqueue(ev, other)
	id := dispatch.DeliveryID(ev.Timestamp, ev.ID, dispatch.SubscriptionWebhook, subID)
	waitFor(t, "subscription delivery", func() bool {
		d, _, err := h.store.Get(context.Background(), id)
		return err == nil && d.Status == dispatch.StatusOK
	})
	if _, _, err := h.store.Get(context.Background(), dispatch.DeliveryID(other.Timestamp, other.ID, dispatch.SubscriptionWebhook, subID)); err == nil {
		t.Error("event Other delivered to a subscription to E")
	}
	r := rc.got()[0]
	wh, _ := standardwebhooks.NewWebhook(whsec)
	if r.URL != "/hook" || r.Header.Get("webhook-id") != id || wh.Verify(r.Body, r.Header) != nil {
		t.Errorf("subscription request %s %v", r.URL, r.Header)
	}
	// A 410 removes the subscription.
	gone.Store(true)
	ev2 := event("E")
	h.enqueue(ev2)
	waitFor(t, "subscription removed", func() bool {
		subs, _ := h.store.Subscriptions(context.Background())
		return len(subs) == 0
	})
	code, body = adminRequest(t, admin, "GET", "/subscriptions", "tok", "")
	if code != 200 || len(body["subscriptions"].([]any)) != 0 {
		t.Errorf("GET /subscriptions = %d %v", code, body)
	}
	if code, _ := adminRequest(t, admin, "DELETE", "/subscriptions/"+subID, "tok", ""); code != 404 {
		t.Errorf("DELETE removed subscription = %d, want 404", code)
	}
}

func TestGuard_DialContext(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(srv.Close)
	// localhost names no allow-listed host: the dial-time check refuses
	// 127.0.0.1 even though the name passed no URL check (as after a DNS
	// rebinding).
	g, _ := send.NewGuard(nil)
	client := &http.Client{Transport: &http.Transport{DialContext: g.DialContext(&net0)}}
	u := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
	_, err := client.Get(u)
	if err == nil || !strings.Contains(err.Error(), "not allowed") {
		t.Errorf("dial to loopback: %v", err)
	}
	g2, _ := send.NewGuard([]string{"127.0.0.0/8"})
	client = &http.Client{Transport: &http.Transport{DialContext: g2.DialContext(&net0)}}
	resp, err := client.Get(u)
	if err != nil {
		t.Fatalf("allow-listed dial: %v", err)
	}
	resp.Body.Close()
}

func TestDispatcher_AdminAuth(t *testing.T) {
	cfg := dispatch.Config{}
	h := start(t, cfg, dispatch.Deps{})
	if code, _ := adminRequest(t, adminapi.New(h.d), "GET", "/deliveries", "", ""); code != 403 {
		t.Errorf("no token configured, not loopback: %d, want 403", code)
	}
	h.stop()
	cfg.Admin.Token = "s3cret-admin"
	h = start(t, cfg, dispatch.Deps{})
	a := adminapi.New(h.d)
	for tok, want := range map[string]int{"": 401, "wrong": 401, "s3cret-admin": 200} {
		if code, _ := adminRequest(t, a, "GET", "/deliveries", tok, ""); code != want {
			t.Errorf("token %q: %d, want %d", tok, code, want)
		}
	}
	h.stop()
	h = start(t, dispatch.Config{}, dispatch.Deps{AdminOpen: true})
	if code, _ := adminRequest(t, adminapi.New(h.d), "GET", "/deliveries?status=bogus", "", ""); code != 400 {
		t.Errorf("bad status filter: %d, want 400", code)
	}
}

func TestDispatcher_Writeback(t *testing.T) {
	rc := newReceiver(t, func(int, *http.Request, []byte) (int, http.Header, string) { return 201, nil, `{"erp_id":"E-9"}` })
	var calls atomic.Int32
	got := make(chan dispatch.StoredEvent, 10)
	wb := &dispatchtest.Writebacker{
		NeedsFunc: func(rule string) bool { return rule == "rule" },
		ApplyFunc: func(_ context.Context, id string, ev dispatch.StoredEvent, resp dispatch.Response) error {
			if calls.Add(1) <= 2 {
				return errTest
			}
			if resp.Status != 201 || string(resp.Body) != `{"erp_id":"E-9"}` {
				return errBadResp
			}
			got <- ev
			return nil
		},
	}
	cfg := dispatch.Config{Webhooks: map[string]dispatch.WebhookConfig{"erp": hook(rc.URL)}}
	cfg.Delivery.Writeback = dispatch.RetryConfig{MaxAttempts: 5, InitialInterval: 10 * time.Millisecond, MaxInterval: 20 * time.Millisecond}
	h := start(t, cfg, dispatch.Deps{Writeback: wb})
	ev := event("E", "erp")
	h.enqueue(ev)
	var se dispatch.StoredEvent
	select {
	case se = <-got:
	case <-time.After(15 * time.Second):
		t.Fatal("writeback not applied")
	}
	if se.Change == nil || se.Change.After["potentialid"] != ev.Change.After["potentialid"] || se.Rule != "rule" || se.ID != ev.ID {
		t.Errorf("stored event = %+v", se)
	}
	waitFor(t, "writeback done", func() bool { d, _ := h.delivery(ev, "erp"); return d.Writeback == dispatch.WritebackDone })
	if rc.count() != 1 {
		t.Errorf("%d HTTP requests; a writeback failure must not resend", rc.count())
	}
	_, log := h.delivery(ev, "erp")
	var notes []string
	for _, a := range log {
		if a.Kind == dispatch.KindWriteback {
			notes = append(notes, a.Note+":"+a.Error)
		}
	}
	if len(notes) != 3 || notes[2] != "writeback done:" {
		t.Errorf("writeback log = %v", notes)
	}
}

func TestDispatcher_WritebackResumesAfterRestart(t *testing.T) {
	rc := newReceiver(t, nil)
	cfg := dispatch.Config{Webhooks: map[string]dispatch.WebhookConfig{"erp": hook(rc.URL)}}
	cfg.Delivery.Writeback = dispatch.RetryConfig{MaxAttempts: 2, InitialInterval: time.Hour, MaxInterval: time.Hour}
	failing := &dispatchtest.Writebacker{NeedsFunc: func(string) bool { return true },
		ApplyFunc: func(context.Context, string, dispatch.StoredEvent, dispatch.Response) error { return errTest }}
	h := start(t, cfg, dispatch.Deps{Writeback: failing})
	ev := event("E", "erp")
	h.enqueue(ev)
	waitFor(t, "first writeback try", func() bool {
		d, _ := h.delivery(ev, "erp")
		return d.Status == dispatch.StatusOK && d.WritebackError != ""
	})
	h.stop()
	// Restart over the same file: the pending writeback is applied.
	st, err := reopen(h)
	if err != nil {
		t.Fatal(err)
	}
	applied := make(chan string, 1)
	ok := &dispatchtest.Writebacker{NeedsFunc: func(string) bool { return true },
		ApplyFunc: func(_ context.Context, id string, _ dispatch.StoredEvent, _ dispatch.Response) error {
			applied <- id
			return nil
		}}
	d2, err := dispatch.New(cfg, st, dispatch.Deps{Writeback: ok})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d2.Run(ctx) }()
	select {
	case id := <-applied:
		if id != dispatch.DeliveryID(ev.Timestamp, ev.ID, "erp", "") {
			t.Errorf("applied %s", id)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("pending writeback not resumed after restart")
	}
	cancel()
	if err := <-done; err != nil {
		t.Error(err)
	}
	if rc.count() != 1 {
		t.Errorf("%d requests after restart, want 1", rc.count())
	}
}

func TestDispatcher_EnqueueDuplicatesAndCheckpoint(t *testing.T) {
	rc := newReceiver(t, nil)
	h := start(t, dispatch.Config{Webhooks: map[string]dispatch.WebhookConfig{"erp": hook(rc.URL)}}, dispatch.Deps{})
	ev := event("E", "erp")
	cp := func(pos uint32) cdcCheckpoint { return cdcCheckpoint{Flavor: "mariadb", File: "bin.000002", Pos: pos} }
	ctx := context.Background()
	if err := h.d.Enqueue(ctx, cp(10), []rulesEvent{ev}); err != nil {
		t.Fatal(err)
	}
	if err := h.d.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	h.waitStatus(ev, "erp", dispatch.StatusOK)
	// A replay of the same event is refused by id: no second request.
	if err := h.d.Enqueue(ctx, cp(10), []rulesEvent{ev}); err != nil {
		t.Fatal(err)
	}
	// A transaction with no events only moves the checkpoint, written by
	// Flush (or Run's flush tick).
	if err := h.d.Enqueue(ctx, cp(20), nil); err != nil {
		t.Fatal(err)
	}
	if err := h.d.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got, ok, err := h.d.Checkpoint(ctx)
	if err != nil || !ok || got.Pos != 20 {
		t.Errorf("checkpoint = %+v %v %v, want pos 20", got, ok, err)
	}
	time.Sleep(100 * time.Millisecond)
	if rc.count() != 1 {
		t.Errorf("%d requests, want 1", rc.count())
	}
	// An unknown webhook is an error, not a silent drop.
	if err := h.d.Enqueue(ctx, cp(30), []rulesEvent{event("E", "nope")}); err == nil || !strings.Contains(err.Error(), "unknown webhook") {
		t.Errorf("unknown webhook: %v", err)
	}
}

func TestDispatcher_URLTemplateFailure(t *testing.T) {
	rc := newReceiver(t, nil)
	w := hook(rc.URL + "/x/{{ row.missing }}")
	h := start(t, dispatch.Config{Webhooks: map[string]dispatch.WebhookConfig{"erp": w}}, dispatch.Deps{})
	ev := event("E", "erp")
	h.enqueue(ev)
	d, _ := h.delivery(ev, "erp")
	if d.Status != dispatch.StatusFailed || !strings.Contains(d.LastError, "row.missing has no value") {
		t.Errorf("delivery = %s %q, want failed with the template error", d.Status, d.LastError)
	}
}

func TestDispatcher_GracefulDrain(t *testing.T) {
	entered := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		time.Sleep(300 * time.Millisecond)
		w.WriteHeader(200)
	}))
	t.Cleanup(srv.Close)
	h := start(t, dispatch.Config{Webhooks: map[string]dispatch.WebhookConfig{"erp": hook(srv.URL)}}, dispatch.Deps{})
	ev := event("E", "erp")
	h.enqueue(ev)
	<-entered
	h.stop() // cancel while the attempt is in flight
	d, _ := h.delivery(ev, "erp")
	if d.Status != dispatch.StatusOK {
		t.Errorf("in-flight attempt not finished and recorded on shutdown: %s", d.Status)
	}
}

// TestDispatcher_BacklogReadAhead drains a backlog many read-aheads long
// while more is enqueued: every delivery arrives exactly once (a read-ahead
// must not hand out again what is in flight or waiting for its result) and
// ends recorded as ok.
func TestDispatcher_BacklogReadAhead(t *testing.T) {
	rc := newReceiver(t, nil)
	h := start(t, dispatch.Config{Webhooks: map[string]dispatch.WebhookConfig{"erp": hook(rc.URL)}}, dispatch.Deps{})
	const batches, per = 30, 100
	var evs []rules.Event
	for b := 0; b < batches; b++ {
		var batch []rules.Event
		for i := 0; i < per; i++ {
			batch = append(batch, event("E", "erp"))
		}
		h.enqueue(batch...)
		evs = append(evs, batch...)
	}
	waitFor(t, "every delivery", func() bool { return rc.count() >= batches*per })
	time.Sleep(100 * time.Millisecond) // room for a duplicate to show
	seen := map[string]int{}
	rc.mu.Lock()
	for _, r := range rc.requests {
		seen[r.Header.Get(send.HeaderWebhookID)]++
	}
	rc.mu.Unlock()
	for id, n := range seen {
		if n != 1 {
			t.Errorf("%s received %d times", id, n)
		}
	}
	if len(seen) != batches*per {
		t.Fatalf("%d distinct deliveries received, want %d", len(seen), batches*per)
	}
	waitFor(t, "nothing pending", func() bool {
		ds, err := h.store.Pending(context.Background(), dispatch.PendingQuery{Webhook: "erp", Limit: 1})
		return err == nil && len(ds) == 0
	})
	for _, ev := range []rules.Event{evs[0], evs[len(evs)/2], evs[len(evs)-1]} {
		h.waitStatus(ev, "erp", dispatch.StatusOK)
	}
}
