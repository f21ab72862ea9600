package studio

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/dispatch"
	"github.com/rowhook/rowhook/rules"
)

func testStudio(t *testing.T, changes []cdc.Change, hits *atomic.Int64) *Studio {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	t.Cleanup(srv.Close)
	return New(Deps{
		Webhooks: map[string]dispatch.WebhookConfig{
			"crm": {URL: srv.URL + "/hook/{{ row.id }}?api_key=SECRETKEY", ContentType: dispatch.ContentJSON,
				Auth:    dispatch.AuthConfig{Type: "bearer", Token: "tok-SECRET"},
				Signing: dispatch.SigningConfig{Secret: "whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}},
		},
		Rules:   rules.Config{Bodies: map[string]rules.BodyConfig{"deal_body": {Fields: rules.Fields{{Name: "id", Expr: "row.id"}}}}},
		Changes: func() []cdc.Change { return changes },
		Budget:  time.Second,
	})
}

func TestStudio_Try(t *testing.T) {
	var changes []cdc.Change
	for i := 1; i <= 6; i++ {
		changes = append(changes, change("deals", i, cdc.Row{"amount": int64(i * 1000)}))
	}
	var hits atomic.Int64
	s := testStudio(t, changes, &hits)
	res, probs, err := s.Try(context.Background(), []byte("name: big\ntable: deals\nwhen: row.amount > 3500\nbody:\n  deal: row.id\n  amount: row.amount * 2\nwebhooks: [crm]\n"))
	if err != nil || len(probs) > 0 {
		t.Fatalf("try: %v %v", err, probs)
	}
	if res.Scanned != 6 || len(res.Matches) != 3 {
		t.Fatalf("scanned %d, %d matches, want 6 and 3: %+v", res.Scanned, len(res.Matches), res)
	}
	m := res.Matches[0]
	if bodyJSON(m.Body) == "" || !strings.Contains(bodyJSON(m.Body), `"amount":8000`) {
		t.Errorf("body %s", bodyJSON(m.Body))
	}
	if len(m.Requests) != 1 {
		t.Fatalf("requests %+v", m.Requests)
	}
	rq := m.Requests[0]
	all := rq.URL + rq.Body
	for k, v := range rq.Headers {
		all += k + strings.Join(v, ",")
	}
	for _, secret := range []string{"SECRETKEY", "tok-SECRET", "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"} {
		if strings.Contains(all, secret) {
			t.Errorf("secret %s shown in %+v", secret, rq)
		}
	}
	if !strings.Contains(rq.URL, "/hook/4") || rq.Method != "POST" || rq.Headers["Authorization"] == nil || rq.Headers["Webhook-Signature"] == nil {
		t.Errorf("request %+v", rq)
	}
	if !strings.Contains(res.YAML, "big_body:") || !strings.Contains(res.YAML, "when: row.amount > 3500") {
		t.Errorf("yaml:\n%s", res.YAML)
	}
	if hits.Load() != 0 {
		t.Errorf("%d requests reached the webhook", hits.Load())
	}
}

func TestStudio_TryBadRule(t *testing.T) {
	var hits atomic.Int64
	s := testStudio(t, []cdc.Change{change("deals", 1, nil)}, &hits)
	for _, tc := range []struct {
		src, path, msg string
		line, col      int
	}{
		{"table: deals\nwhen: row.amount > \n", "when", "", 2, 7},
		{"table: deals\nwhen: isEmtpy(row.name)\n", "when", `did you mean "isEmpty"`, 2, 7},
		{"table: deals\nevent: deal_bdy\n", "event", `did you mean "deal_body"`, 2, 8},
		{"table: deals\nbody:\n  x: row.id +\n", "body.x", "", 3, 6},
		{"table: deals\nwebhooks: [crn]\n", "webhooks[0]", `did you mean crm`, 2, 12},
		{"table: deals\nwhen: [\n", "", "", 0, 0},
		{"tabel: deals\n", "tabel", "did you mean table", 1, 1},
	} {
		_, probs, err := s.Try(context.Background(), []byte(tc.src))
		if err != nil || len(probs) == 0 {
			t.Errorf("%q: err %v, problems %v", tc.src, err, probs)
			continue
		}
		p := probs[0]
		if p.Path != tc.path && tc.path != "" || !strings.Contains(p.Message, tc.msg) || tc.line > 0 && p.Line != tc.line {
			t.Errorf("%q: problem %+v, want path %q line %d message with %q", tc.src, p, tc.path, tc.line, tc.msg)
		}
	}
}

func TestStudio_TryRunaway(t *testing.T) {
	var hits atomic.Int64
	s := testStudio(t, []cdc.Change{change("deals", 1, nil), change("deals", 2, nil)}, &hits)
	for _, when := range []string{
		"all(1..100000000, {# > 0})",
		"all(1..900000, {all(1..900000, {# > 0})})",
	} {
		start := time.Now()
		res, probs, err := s.Try(context.Background(), []byte("table: deals\nwhen: '"+when+"'\nevent: deal_body\n"))
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		// Stopped: either as a problem (time budget) or with each change's
		// evaluation failing on expr's memory budget.
		if len(probs) == 0 && (len(res.Matches) != 0 || len(res.Warnings) == 0) {
			t.Errorf("%s: not stopped: %+v", when, res)
		}
		t.Logf("%s: %v, problems %v, warnings %v", when, time.Since(start), probs, res)
	}
}

func bodyJSON(b rules.Body) string {
	out, _ := b.MarshalJSON()
	return string(out)
}

// An evaluation over its time budget answers with a located problem at
// once; while it still runs, the next one is refused (ErrBusy) instead of
// piling up; once it ends, evaluations run again.
func TestStudio_TryBudget(t *testing.T) {
	release := make(chan struct{})
	var calls atomic.Int64
	s := New(Deps{Budget: 100 * time.Millisecond, Changes: func() []cdc.Change {
		if calls.Add(1) == 1 {
			<-release // an evaluation that does not end by itself
		}
		return []cdc.Change{change("deals", 1, nil)}
	}})
	rule := []byte("table: deals\nwhen: row.id > 0\n")
	_, probs, err := s.Try(context.Background(), rule)
	if err != nil || len(probs) != 1 || !strings.Contains(probs[0].Message, "time budget of 100ms") || probs[0].Path != "when" || probs[0].Line != 2 {
		t.Fatalf("over budget: %v %+v", err, probs)
	}
	if _, _, err := s.Try(context.Background(), rule); err != ErrBusy {
		t.Fatalf("while the first still runs: %v, want ErrBusy", err)
	}
	close(release)
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, probs, err := s.Try(context.Background(), rule)
		if err == nil && len(probs) == 0 && len(res.Matches) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the first ended: %v %+v %+v", err, probs, res)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
