package dispatch

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"strings"
)

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// DeliveryID derives the id of the delivery of event eventID to a webhook
// (subscription empty) or to a subscription. It depends only on its
// arguments, so replaying the binlog yields the same ids and the store
// refuses the duplicates; it is also the webhook-id header receivers use to
// deduplicate.
func DeliveryID(eventID, webhook, subscription string) string {
	h := sha256.New()
	h.Write([]byte(eventID))
	h.Write([]byte{0})
	h.Write([]byte(webhook))
	h.Write([]byte{0})
	h.Write([]byte(subscription))
	sum := h.Sum(nil)
	return "msg_" + strings.ToLower(idEncoding.EncodeToString(sum[:15]))
}

// newSubscriptionID returns a random subscription id.
func newSubscriptionID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "sub_" + hex.EncodeToString(b[:])
}
