package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rowhook/rowhook/internal/mariadbtest"
)

// The README's first command: the demo runs end to end and shows the
// delivery, the written-back value and the metrics.
func TestDemo_RunsEndToEnd(t *testing.T) {
	mariadbtest.NeedBinary(t)
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := run(ctx, []string{"demo"}, stdio{out: &out, err: &errOut}); err != nil {
		t.Fatalf("demo: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errOut.String())
	}
	o := out.String()
	for _, want := range []string{
		"POST /api/deals/3",
		"signature: verified",
		`"potentialname": "Acme - 500 seats"`,
		`"related_to_name": "Acme Corp"`,
		`primary: vtiger_potentialscf.cf_856 = "ERP-1001"`,
		`replica: cf_856 = "ERP-1001"`,
		"deliveries received by the ERP: 1",
		"status=ok",
		`rowhook_delivery_attempts_total{class="2xx",webhook="erp"} 1`,
		"done.",
	} {
		if !strings.Contains(o, want) {
			t.Errorf("demo output lacks %q\n%s", want, o)
		}
	}
	if strings.Contains(o, "demo-") && strings.Contains(o, "Authorization: Bearer demo-") {
		t.Errorf("demo printed the bearer token")
	}
}
