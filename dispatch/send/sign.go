package send

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strconv"
	"time"
)

// Standard Webhooks headers.
const (
	HeaderWebhookID        = "webhook-id"
	HeaderWebhookTimestamp = "webhook-timestamp"
	HeaderWebhookSignature = "webhook-signature"
	// HeaderEvent carries the event name (the body function's name).
	HeaderEvent = "X-Rowhook-Event"
)

// Sign returns the Standard Webhooks signature header value for a message:
// "v1," and the base64 HMAC-SHA256 of "id.timestamp.body" under key.
func Sign(key []byte, id string, ts time.Time, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write([]byte(strconv.FormatInt(ts.Unix(), 10)))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// signRequest sets webhook-timestamp and webhook-signature, fresh for each
// attempt (the id stays the delivery id).
func signRequest(h http.Header, key []byte, id string, now time.Time, body []byte) {
	h.Set(HeaderWebhookTimestamp, strconv.FormatInt(now.Unix(), 10))
	h.Set(HeaderWebhookSignature, Sign(key, id, now, body))
}
