package dispatch

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"encoding/hex"
	"strings"
	"time"
)

var (
	idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)
	// timeEncoding sorts as the bytes it encodes.
	timeEncoding = base32.HexEncoding.WithPadding(base32.NoPadding)
)

// DeliveryID derives the id of the delivery of event eventID, committed
// to the binlog at eventTime, to a webhook (subscription empty) or to a
// subscription. It depends only on its arguments, so replaying the binlog
// yields the same ids and the store refuses the duplicates; it is also the
// webhook-id header receivers use to deduplicate.
//
// The id starts with the event's commit second (8 characters that sort as
// the time), then 24 of a hash: new ids fall at the end of the stores'
// unique index on ids instead of at random places in it, so enqueueing
// touches the index's last pages only (with random ids a large backlog
// read and rewrote an index page per delivery; docs/benchmarks.md).
func DeliveryID(eventTime time.Time, eventID, webhook, subscription string) string {
	var ts [5]byte
	sec := uint64(0)
	if !eventTime.IsZero() && eventTime.Unix() > 0 {
		sec = uint64(eventTime.Unix())
	}
	var b8 [8]byte
	binary.BigEndian.PutUint64(b8[:], sec)
	copy(ts[:], b8[3:])
	h := sha256.New()
	h.Write([]byte(eventID))
	h.Write([]byte{0})
	h.Write([]byte(webhook))
	h.Write([]byte{0})
	h.Write([]byte(subscription))
	sum := h.Sum(nil)
	return "msg_" + strings.ToLower(timeEncoding.EncodeToString(ts[:])) + strings.ToLower(idEncoding.EncodeToString(sum[:15]))
}

// newSubscriptionID returns a random subscription id.
func newSubscriptionID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "sub_" + hex.EncodeToString(b[:])
}
