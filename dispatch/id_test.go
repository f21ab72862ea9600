package dispatch

import (
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
