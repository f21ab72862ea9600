package send

import (
	"net/http"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func TestSign(t *testing.T) {
	key, err := DecodeSecret(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	wh, err := standardwebhooks.NewWebhook(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"id":7}`)
	now := time.Now()
	h := http.Header{}
	h.Set(HeaderWebhookID, "msg_abc")
	signRequest(h, key, "msg_abc", now, body)
	if err := wh.Verify(body, h); err != nil {
		t.Fatalf("standard-webhooks rejects our signature: %v", err)
	}
	if err := wh.Verify([]byte(`{"id":8}`), h); err == nil {
		t.Fatal("tampered body verified")
	}
}
