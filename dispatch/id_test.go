package dispatch

import (
	"strings"
	"testing"
)

func TestDeliveryID(t *testing.T) {
	a := DeliveryID("0-1-42:0:r", "erp", "")
	if a != DeliveryID("0-1-42:0:r", "erp", "") {
		t.Fatal("not stable")
	}
	for _, other := range []string{DeliveryID("0-1-42:0:r", "crm", ""), DeliveryID("0-1-42:1:r", "erp", ""), DeliveryID("0-1-42:0:r", "erp", "sub_1")} {
		if other == a {
			t.Errorf("collision %s", a)
		}
	}
	if !strings.HasPrefix(a, "msg_") || len(a) != 4+24 {
		t.Errorf("id %q", a)
	}
}
