package send

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"hash"
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

// The headers' canonical names (http.Header keys).
var (
	canonWebhookID        = http.CanonicalHeaderKey(HeaderWebhookID)
	canonWebhookTimestamp = http.CanonicalHeaderKey(HeaderWebhookTimestamp)
	canonWebhookSignature = http.CanonicalHeaderKey(HeaderWebhookSignature)
	canonEvent            = http.CanonicalHeaderKey(HeaderEvent)
)

// sign is Sign under the endpoint's key, with a keyed HMAC state from
// e.macs (hmac.New hashes the key's pads again on every call).
func (e *Endpoint) sign(id string, ts time.Time, body []byte) string {
	mac, _ := e.macs.Get().(hash.Hash)
	if mac == nil {
		mac = hmac.New(sha256.New, e.key)
	} else {
		mac.Reset()
	}
	b := make([]byte, 0, len(id)+24+sha256.Size)
	b = append(b, id...)
	b = append(b, '.')
	b = strconv.AppendInt(b, ts.Unix(), 10)
	b = append(b, '.')
	mac.Write(b)
	mac.Write(body)
	sum := mac.Sum(b[:0])
	e.macs.Put(mac)
	out := make([]byte, 3+base64.StdEncoding.EncodedLen(len(sum)))
	copy(out, "v1,")
	base64.StdEncoding.Encode(out[3:], sum)
	return string(out)
}
