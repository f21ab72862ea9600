package send

import (
	"fmt"
	"net/http"
	"strconv"
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
	e := &Endpoint{key: key}
	now := time.Now()
	// The second and third signatures reuse the pooled HMAC state: each
	// must sign its own message only.
	for i, body := range [][]byte{[]byte(`{"id":7}`), []byte(`{"id":8}`), nil} {
		id := fmt.Sprintf("msg_abc%d", i)
		h := http.Header{}
		h.Set(HeaderWebhookID, id)
		h.Set(HeaderWebhookTimestamp, strconv.FormatInt(now.Unix(), 10))
		sig := e.sign(id, now, body)
		if want := Sign(key, id, now, body); sig != want {
			t.Fatalf("signature %d: %s, Sign says %s", i, sig, want)
		}
		h.Set(HeaderWebhookSignature, sig)
		if err := wh.Verify(body, h); err != nil {
			t.Fatalf("standard-webhooks rejects our signature %d: %v", i, err)
		}
		if err := wh.Verify([]byte(`{"id":9}`), h); err == nil {
			t.Fatalf("tampered body %d verified", i)
		}
	}
}
