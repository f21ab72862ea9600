package adminui

import (
	"github.com/rowhook/rowhook/internal/redact"
	"sort"
	"strings"
	"time"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/dispatch"
	"github.com/rowhook/rowhook/rules"
)

// NewBinlogStatus describes the binlog reader for the page: source is the
// replica's address without credentials (cdc.Source.Redacted()), pos the
// reader's Position(), lag its Lag(). The lag is reported only while
// connected: a disconnected reader's lag is not known.
func NewBinlogStatus(source string, connected bool, pos cdc.Checkpoint, lag time.Duration) BinlogStatus {
	b := BinlogStatus{Connected: connected, Source: source, Flavor: pos.Flavor, File: pos.File, Pos: pos.Pos, GTIDSet: pos.GTIDSet}
	if connected {
		s := lag.Seconds()
		b.LagSeconds = &s
	}
	if !pos.Timestamp.IsZero() {
		t := pos.Timestamp.UTC()
		b.EventTime = &t
	}
	return b
}

// NewRuleStatuses lists the configured rules, in configuration order.
func NewRuleStatuses(rs []rules.RuleConfig) []RuleStatus {
	out := make([]RuleStatus, 0, len(rs))
	for _, r := range rs {
		on := r.On
		if len(on) == 0 {
			on = []string{"insert", "update", "delete"}
		}
		out = append(out, RuleStatus{Name: r.Name, Table: r.Table, On: append([]string(nil), on...), Event: r.Event,
			Webhooks: append([]string{}, r.Webhooks...)})
	}
	return out
}

// NewWebhookStatuses joins the dispatcher's WebhookStates with the
// configured webhooks, sorted by name. URLs are shown without passwords and
// without query values, which often carry API keys. endpoint, when not nil,
// names a webhook's URL when the configuration does not (a SOAP webhook's
// endpoint from its WSDL); "" keeps the configured one.
func NewWebhookStatuses(states []dispatch.WebhookState, cfg map[string]dispatch.WebhookConfig, endpoint func(name string) string) []WebhookStatus {
	byName := map[string]dispatch.WebhookState{}
	for _, s := range states {
		byName[s.Name] = s
	}
	out := make([]WebhookStatus, 0, len(cfg))
	for name, c := range cfg {
		w := WebhookStatus{Name: name, Kind: "rest", URL: RedactURL(c.URL), State: "active"}
		if strings.EqualFold(c.ContentType, "soap") {
			w.Kind = "soap"
			if endpoint != nil {
				if u := endpoint(name); u != "" {
					w.URL = RedactURL(u)
				}
			}
		}
		if s, ok := byName[name]; ok {
			w.State, w.Reason, w.FailingSince, w.PausedUntil, w.InFlight = s.State, s.Reason, s.FailingSince, s.PausedUntil, s.InFlight
			w.Circuit, w.NextProbeAt = s.Circuit, s.NextProbeAt
			w.Pending, w.OldestPending, w.QueueError = s.Pending, s.OldestPending, s.QueueError
		}
		out = append(out, w)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// RedactURL is internal/redact's URL (the one redactor: no user
// information, every query value "redacted", no fragment), for display. A
// URL that does not parse (a template, say) is cut before its query and
// credentials are dropped.
func RedactURL(raw string) string { return redact.URL(raw) }
