package dispatch

import (
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestDeliveryID(t *testing.T) {
	at := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	a := DeliveryID(at, "0-1-42:0:r", "erp", "")
	if a != DeliveryID(at, "0-1-42:0:r", "erp", "") {
		t.Fatal("not stable")
	}
	for _, other := range []string{DeliveryID(at, "0-1-42:0:r", "crm", ""), DeliveryID(at, "0-1-42:1:r", "erp", ""),
		DeliveryID(at, "0-1-42:0:r", "erp", "sub_1"), DeliveryID(at.Add(time.Second), "0-1-42:0:r", "erp", "")} {
		if other == a {
			t.Errorf("collision %s", a)
		}
	}
	if !strings.HasPrefix(a, "msg_") || len(a) != 4+8+24 || strings.ToLower(a) != a {
		t.Errorf("id %q", a)
	}
}

// TestDeliveryID_SortsByTime: ids of later events sort after earlier ones
// (whatever their hash), which keeps the stores' id index appending.
func TestDeliveryID_SortsByTime(t *testing.T) {
	at := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	var ids []string
	for i := range 1000 {
		ids = append(ids, DeliveryID(at.Add(time.Duration(i)*time.Second), "0-1-"+strings.Repeat("9", i%7), "erp", ""))
	}
	if !slices.IsSorted(ids) {
		t.Fatalf("ids of events a second apart do not sort by time: %v …", ids[:5])
	}
	// Before 1970 or unset: a zero prefix, still a valid id.
	if z := DeliveryID(time.Time{}, "e", "erp", ""); !strings.HasPrefix(z, "msg_00000000") {
		t.Errorf("zero time: %q", z)
	}
}

// referenceDeliveryID is DeliveryID as first written (hash.Hash, base32
// strings, strings.ToLower): the ids it gave are in stores and receivers'
// deduplication tables, so every later version must give the same.
func referenceDeliveryID(eventTime time.Time, eventID, webhook, subscription string) string {
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

// TestDeliveryID_SameAsBefore: ids are byte for byte those of the first
// implementation, for short and long (past the stack buffer) inputs, and
// one literal pins both.
func TestDeliveryID_SameAsBefore(t *testing.T) {
	if got, want := DeliveryID(time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC), "0-1-42:0:r", "erp", ""), "msg_01lh2fd0z2472vay5rijonzdij5k2zhb"; got != want {
		t.Errorf("DeliveryID = %s, want %s", got, want)
	}
	times := []time.Time{{}, time.Unix(-5, 0), time.Unix(1, 0), time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC), time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)}
	ids := []string{"", "e", "0-1-42:0:r", "mysql-bin.000007:4711:3:new-deal", strings.Repeat("x", 127), strings.Repeat("é", 200)}
	subs := []string{"", "sub_0123456789abcdef01234567"}
	n := 0
	for _, at := range times {
		for _, id := range ids {
			for _, wh := range []string{"erp", SubscriptionWebhook, strings.Repeat("w", 130)} {
				for _, sub := range subs {
					if got, want := DeliveryID(at, id, wh, sub), referenceDeliveryID(at, id, wh, sub); got != want {
						t.Errorf("DeliveryID(%v, %q, %q, %q) = %s, want %s", at, id, wh, sub, got, want)
					}
					n++
				}
			}
		}
	}
	if n != 180 {
		t.Fatalf("%d cases", n)
	}
}
