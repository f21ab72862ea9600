package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

func TestReceiver_VerifiesAndAnswers(t *testing.T) {
	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	r, err := StartReceiver("127.0.0.1:0", secret)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	body := []byte(`{"potentialid":3}`)
	wh, _ := standardwebhooks.NewWebhook(secret)
	now := time.Now()
	sig, err := wh.Sign("msg_1", now, body)
	if err != nil {
		t.Fatal(err)
	}
	send := func(signature string) map[string]any {
		req, _ := http.NewRequest("POST", r.URL()+"/api/deals", bytes.NewReader(body))
		req.Header.Set("webhook-id", "msg_1")
		req.Header.Set("webhook-timestamp", strings.TrimSpace(jsonNumber(now.Unix())))
		req.Header.Set("webhook-signature", signature)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("status %d", resp.StatusCode)
		}
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return out
	}
	first := send(sig)
	second := send("v1,AAAA")
	reqs, err := r.wait(context.Background(), 2)
	if err != nil {
		t.Fatal(err)
	}
	if first["id"] != "ERP-1001" || second["id"] != "ERP-1002" {
		t.Errorf("ids %v %v", first["id"], second["id"])
	}
	if reqs[0].Signature != "verified" || !strings.HasPrefix(reqs[1].Signature, "invalid") {
		t.Errorf("signature checks: %q %q", reqs[0].Signature, reqs[1].Signature)
	}
	if reqs[0].Path != "/api/deals" || string(reqs[0].Body) != string(body) {
		t.Errorf("recorded %+v", reqs[0])
	}
}

func jsonNumber(n int64) string { b, _ := json.Marshal(n); return string(b) }
