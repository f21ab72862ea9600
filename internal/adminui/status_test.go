package adminui_test

import (
	"strings"
	"testing"
	"time"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/dispatch"
	"github.com/rowhook/rowhook/internal/adminui"
	"github.com/rowhook/rowhook/rules"
)

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://erp.example/hooks/deal", "https://erp.example/hooks/deal"},
		{"https://bob:pa55word@erp.example/x", "https://erp.example/x"},
		{"https://erp.example/x?api_key=K3Y&mode=full", "https://erp.example/x?api_key=redacted&mode=redacted"},
		{"https://erp.example/x#frag", "https://erp.example/x"},
		{"https://bob:pa55word@erp.example:bad port/x?key=K3Y", "https://erp.example:bad port/x"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got := adminui.RedactURL(tt.in)
			if got != tt.want {
				t.Errorf("RedactURL(%q) = %q, want %q", tt.in, got, tt.want)
			}
			for _, secret := range []string{"pa55word", "K3Y"} {
				if strings.Contains(got, secret) {
					t.Errorf("RedactURL(%q) = %q keeps %q", tt.in, got, secret)
				}
			}
		})
	}
}

func TestNewBinlogStatus(t *testing.T) {
	at := time.Date(2026, 11, 23, 9, 30, 0, 0, time.FixedZone("CET", 3600))
	pos := cdc.Checkpoint{Flavor: "mariadb", File: "bin.000007", Pos: 999, GTIDSet: "0-1-50", Timestamp: at}
	tests := []struct {
		name      string
		connected bool
		wantLag   *float64
	}{
		{"connected", true, ptr(2.5)},
		{"disconnected: lag unknown", false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := adminui.NewBinlogStatus("replica:3306", tt.connected, pos, 2500*time.Millisecond)
			if b.File != "bin.000007" || b.Pos != 999 || b.GTIDSet != "0-1-50" || b.Flavor != "mariadb" || b.Source != "replica:3306" || b.Connected != tt.connected {
				t.Errorf("got %+v", b)
			}
			if (b.LagSeconds == nil) != (tt.wantLag == nil) || (b.LagSeconds != nil && *b.LagSeconds != *tt.wantLag) {
				t.Errorf("lag %v, want %v", b.LagSeconds, tt.wantLag)
			}
			if b.EventTime == nil || !b.EventTime.Equal(at) || b.EventTime.Location() != time.UTC {
				t.Errorf("event time %v, want %v in UTC", b.EventTime, at)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestNewRuleStatuses(t *testing.T) {
	got := adminui.NewRuleStatuses([]rules.RuleConfig{
		{Name: "won", Table: "crm.vtiger_potential", On: []string{"update"}, Event: "Won", Webhooks: []string{"erp", "crm"}},
		{Name: "any", Table: "vtiger_account", Event: "Account"},
	})
	if len(got) != 2 || got[0].Name != "won" || got[0].On[0] != "update" || strings.Join(got[0].Webhooks, ",") != "erp,crm" {
		t.Fatalf("got %+v", got)
	}
	if strings.Join(got[1].On, ",") != "insert,update,delete" || got[1].Webhooks == nil {
		t.Errorf("rule without on: %+v, want every operation and an empty webhook list", got[1])
	}
}

func TestNewWebhookStatuses(t *testing.T) {
	since := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	got := adminui.NewWebhookStatuses(
		[]dispatch.WebhookState{{Name: "erp", State: "disabled", Reason: "410 Gone", FailingSince: &since, InFlight: 2}},
		map[string]dispatch.WebhookConfig{
			"erp": {URL: "https://erp.example/ws?token=T0KEN", ContentType: "soap"},
			"crm": {URL: "https://crm.example/hook"},
		}, nil)
	if len(got) != 2 || got[0].Name != "crm" || got[1].Name != "erp" {
		t.Fatalf("got %+v, want crm then erp", got)
	}
	if got[0].State != "active" || got[0].Kind != "rest" || got[0].URL != "https://crm.example/hook" {
		t.Errorf("crm: %+v", got[0])
	}
	e := got[1]
	if e.State != "disabled" || e.Reason != "410 Gone" || e.InFlight != 2 || e.FailingSince == nil || e.Kind != "soap" || strings.Contains(e.URL, "T0KEN") {
		t.Errorf("erp: %+v", e)
	}
}

// A SOAP webhook's endpoint comes from its WSDL when the config names none;
// it is redacted like a configured URL. REST webhooks keep their own.
func TestNewWebhookStatuses_Endpoint(t *testing.T) {
	got := adminui.NewWebhookStatuses(nil, map[string]dispatch.WebhookConfig{
		"erp": {ContentType: "soap"},
		"crm": {URL: "https://crm.example/hook"},
	}, func(name string) string { return "https://u:secret@" + name + ".example/ws?key=K3Y" })
	if got[0].URL != "https://crm.example/hook" {
		t.Errorf("crm URL %q, want the configured one", got[0].URL)
	}
	if u := got[1].URL; !strings.HasPrefix(u, "https://erp.example/ws") || strings.Contains(u, "secret") || strings.Contains(u, "K3Y") {
		t.Errorf("erp URL %q, want the WSDL's endpoint redacted", u)
	}
}
