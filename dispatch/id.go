package dispatch

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"encoding/hex"
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
	sec := uint64(0)
	if !eventTime.IsZero() && eventTime.Unix() > 0 {
		sec = uint64(eventTime.Unix())
	}
	var b8 [8]byte
	binary.BigEndian.PutUint64(b8[:], sec)
	// The hash of eventID NUL webhook NUL subscription, its input on the
	// stack when short (one allocation per id: the result).
	var stack [128]byte
	in := append(stack[:0], eventID...)
	in = append(in, 0)
	in = append(in, webhook...)
	in = append(in, 0)
	in = append(in, subscription...)
	sum := sha256.Sum256(in)
	// "msg_", 8 characters of time, 24 of hash: base32 of 5 and 15 bytes,
	// lower-cased.
	var out [4 + 8 + 24]byte
	copy(out[:], "msg_")
	timeEncoding.Encode(out[4:12], b8[3:])
	idEncoding.Encode(out[12:], sum[:15])
	for i := 4; i < len(out); i++ {
		if c := out[i]; 'A' <= c && c <= 'Z' {
			out[i] = c + ('a' - 'A')
		}
	}
	return string(out[:])
}

// newSubscriptionID returns a random subscription id.
func newSubscriptionID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "sub_" + hex.EncodeToString(b[:])
}
