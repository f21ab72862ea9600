package dispatch_test

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/rowhook/rowhook/dispatch"
	"github.com/rowhook/rowhook/dispatch/adminapi"
	"github.com/rowhook/rowhook/dispatch/send"
	"github.com/rowhook/rowhook/internal/peers"
)

// Every signature rowhook sends verifies with the official Standard
// Webhooks JavaScript library and with svix's verifier, as receivers run
// them: each content type, a non-ASCII body, a 100 KB body, a retried
// attempt, a manual redelivery and a REST-hook subscription delivery. A
// request altered in transit fails both.
func TestDispatcher_SignaturesVerifyWithThirdPartyLibraries(t *testing.T) {
	peers.Node(t) // skip (or fail in CI) before starting anything
	var up atomic.Bool
	var retried atomic.Int32
	rc := newReceiver(t, func(_ int, r *http.Request, _ []byte) (int, http.Header, string) {
		switch r.URL.Path {
		case "/retry":
			if retried.Add(1) == 1 {
				return 503, nil, "busy"
			}
		case "/redeliver":
			if !up.Load() {
				return 500, nil, "down"
			}
		}
		return 200, nil, ""
	})
	mk := func(path, ct string) dispatch.WebhookConfig {
		w := hook(rc.URL + path)
		w.ContentType = ct
		w.Signing.Secret = whsec
		return w
	}
	xml := mk("/xml", "xml")
	xml.XMLRoot = "deal"
	dead := mk("/redeliver", "json")
	dead.Retry.MaxAttempts = 1
	cfg := dispatch.Config{Webhooks: map[string]dispatch.WebhookConfig{
		"json": mk("/json", "json"), "form": mk("/form", "form"), "xml": xml, "text": mk("/text", "text"),
		"big": mk("/big", "json"), "retry": mk("/retry", "json"), "redeliver": dead,
	}}
	cfg.Admin.Token = "tok"
	cfg.Admin.AllowRedeliver = true
	cfg.Admin.Subscriptions.Enabled = true
	cfg.Admin.Subscriptions.Signing.Secret = whsec
	cfg.Admin.Subscriptions.AllowedHosts = []string{"127.0.0.1"}
	h := start(t, cfg, dispatch.Deps{})
	admin := adminapi.New(h.d)
	if code, body := adminRequest(t, admin, "POST", "/subscriptions", "tok", `{"target_url":"`+rc.URL+`/sub","event":"Intl"}`); code != 201 {
		t.Fatalf("subscribe = %d %v", code, body)
	}

	const intl = "Müller & Söhne — 東京 «deal» 🚀 \u2028 <b>\"q\"</b> ' é\u0301"
	ev := event("Intl", "json", "form", "xml", "text", "retry", "redeliver")
	ev.Body = append(ev.Body, field("note", intl))
	var big strings.Builder
	for big.Len() < 100<<10 {
		big.WriteString("Grüße aus Köln, 世界 — ligne n°" + itoa(int64(big.Len())) + "\n")
	}
	evBig := event("Big", "big")
	evBig.Body = append(evBig.Body, field("notes", big.String()))
	h.enqueue(ev, evBig)
	for _, name := range []string{"json", "form", "xml", "text", "retry"} {
		h.waitStatus(ev, name, dispatch.StatusOK)
	}
	h.waitStatus(evBig, "big", dispatch.StatusOK)
	d := h.waitStatus(ev, "redeliver", dispatch.StatusDead)
	up.Store(true)
	if code, body := adminRequest(t, admin, "POST", "/deliveries/"+d.ID+"/redeliver", "tok", ""); code != 202 {
		t.Fatalf("redeliver = %d %v", code, body)
	}
	h.waitStatus(ev, "redeliver", dispatch.StatusOK)
	waitFor(t, "the subscription delivery", func() bool {
		for _, r := range rc.got() {
			if r.URL == "/sub" {
				return true
			}
		}
		return false
	})

	var reqs []peers.Request
	count := map[string]int{}
	var jsonReq peers.Request
	for _, r := range rc.got() {
		count[r.URL]++
		pr := peers.Request{Name: r.URL + "#" + itoa(int64(count[r.URL])), Header: r.Header, Body: r.Body}
		reqs = append(reqs, pr)
		if r.URL == "/json" {
			jsonReq = pr
		}
		if !strings.HasPrefix(r.Header.Get("webhook-signature"), "v1,") {
			t.Errorf("%s: webhook-signature %q", pr.Name, r.Header.Get("webhook-signature"))
		}
		switch r.URL {
		case "/json", "/xml", "/text", "/retry", "/redeliver", "/sub":
			if !utf8.Valid(r.Body) || !strings.Contains(string(r.Body), "Müller") || !strings.Contains(string(r.Body), "東京") {
				t.Errorf("%s: the body does not carry the non-ASCII text as UTF-8: %q", pr.Name, r.Body)
			}
		case "/big":
			if len(r.Body) < 100<<10 || !strings.Contains(string(r.Body), "世界") {
				t.Errorf("big body is %d bytes", len(r.Body))
			}
		}
	}
	want := map[string]int{"/json": 1, "/form": 1, "/xml": 1, "/text": 1, "/big": 1, "/retry": 2, "/redeliver": 2, "/sub": 1}
	for path, n := range want {
		if count[path] != n {
			t.Errorf("%s got %d requests, want %d (all: %v)", path, count[path], n, count)
		}
	}
	// Altered copies of the JSON request: every one must fail.
	alter := func(name string, f func(r *peers.Request)) peers.Request {
		c := peers.Request{Name: name, Header: http.Header(jsonReq.Header).Clone(), Body: append([]byte(nil), jsonReq.Body...)}
		f(&c)
		return c
	}
	ts, err := strconv.ParseInt(http.Header(jsonReq.Header).Get("webhook-timestamp"), 10, 64)
	if err != nil {
		t.Fatalf("webhook-timestamp: %v", err)
	}
	otherKey, _ := base64.StdEncoding.DecodeString("c2VjcmV0LW9mLWFub3RoZXItc2VuZGVyLTEyMzQ1Ng==")
	tampered := []peers.Request{
		alter("tampered body", func(r *peers.Request) { r.Body[len(r.Body)/2] ^= 0x01 }),
		alter("body re-encoded", func(r *peers.Request) {
			r.Body = []byte(strings.ReplaceAll(string(r.Body), "ü", `\u00fc`))
		}),
		alter("other webhook-id", func(r *peers.Request) { http.Header(r.Header).Set("webhook-id", "evt_other") }),
		alter("other timestamp", func(r *peers.Request) {
			http.Header(r.Header).Set("webhook-timestamp", strconv.FormatInt(ts+1, 10))
		}),
		alter("other secret", func(r *peers.Request) {
			h := http.Header(r.Header)
			h.Set("webhook-signature", send.Sign(otherKey, h.Get("webhook-id"), time.Unix(ts, 0), r.Body))
		}),
	}
	results := peers.Verify(t, whsec, append(append([]peers.Request(nil), reqs...), tampered...))
	for i, res := range results {
		if i < len(reqs) {
			if !res.StandardWebhooks.OK || !res.Svix.OK {
				t.Errorf("%s (%d bytes): standardwebhooks %+v, svix %+v", res.Name, len(reqs[i].Body), res.StandardWebhooks, res.Svix)
			}
			continue
		}
		if res.StandardWebhooks.OK || res.Svix.OK {
			t.Errorf("%s verified: standardwebhooks %+v, svix %+v", res.Name, res.StandardWebhooks, res.Svix)
		}
	}
	t.Logf("%d signed requests verified by standardwebhooks and svix; %d altered ones refused", len(reqs), len(tampered))
}
