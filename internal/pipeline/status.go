package pipeline

import (
	"context"

	"github.com/rowhook/rowhook/internal/adminui"
)

// status reports the pipeline's state for the admin page, built by
// adminui's builders; flavor is the source's, from the inspection.
func (p *Pipeline) status(cfg *Config, flavor, version string) func(context.Context) adminui.Status {
	return func(ctx context.Context) adminui.Status {
		st := adminui.Status{Version: version}
		st.Binlog = adminui.NewBinlogStatus(p.reader.Source().Addr(), p.reader.Connected(), p.reader.Position(), p.reader.Lag())
		if flavor != "" {
			st.Binlog.Flavor = flavor
		}
		st.Rules = adminui.NewRuleStatuses(cfg.Rules.Rules)
		st.Webhooks = adminui.NewWebhookStatuses(p.disp.WebhookStates(), cfg.Dispatch.Webhooks, func(name string) string {
			if wh := p.soap.Webhook(name); wh != nil {
				return wh.Endpoint()
			}
			return ""
		})
		return st
	}
}
