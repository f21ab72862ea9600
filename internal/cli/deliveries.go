// Package cli holds the printing and the offline logic of rowhook's
// commands, so that cmd/rowhook keeps to flags and wiring.
package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/rowhook/rowhook/dispatch"
)

// WebhookName is the delivery's target: the webhook, with the
// subscription after a colon.
func WebhookName(d dispatch.Delivery) string {
	if d.Subscription != "" {
		return d.Webhook + ":" + d.Subscription
	}
	return d.Webhook
}

// LastOutcome is the LAST column of rowhook deliveries list: the last
// status and error, and the next try of a pending delivery.
func LastOutcome(d dispatch.Delivery) string {
	var s string
	if d.LastStatus != 0 {
		s = fmt.Sprint(d.LastStatus)
	}
	if d.LastError != "" {
		e := d.LastError
		if len(e) > 60 {
			e = e[:57] + "..."
		}
		if s != "" {
			s += " "
		}
		s += e
	}
	if d.Status == dispatch.StatusPending && !d.NextAt.IsZero() {
		if s != "" {
			s += "; "
		}
		// A full date-time: a retry may be days away (Retry-After, max_interval).
		s += "next " + d.NextAt.Local().Format("2006-01-02 15:04:05")
	}
	if s == "" {
		s = "-"
	}
	return s
}

// PrintDelivery prints rowhook deliveries show's text form of v.
func PrintDelivery(w io.Writer, v dispatch.DeliveryView) {
	fmt.Fprintf(w, "Delivery %s\n", v.ID)
	fmt.Fprintf(w, "  status:     %s (%d attempts", v.Status, v.Attempts)
	if v.Redelivered > 0 {
		fmt.Fprintf(w, ", redelivered %d×", v.Redelivered)
	}
	fmt.Fprintln(w, ")")
	if v.NextAt != nil {
		fmt.Fprintf(w, "  next try:   %s\n", v.NextAt.Local().Format(time.RFC3339))
	}
	if v.LastError != "" {
		fmt.Fprintf(w, "  last error: %s\n", v.LastError)
	}
	target := v.Webhook
	if v.Subscription != "" {
		target += " " + v.Subscription
	}
	fmt.Fprintf(w, "  webhook:    %s\n", target)
	fmt.Fprintf(w, "  event:      %s (rule %s, event id %s)\n", v.Event, v.Rule, v.EventID)
	fmt.Fprintf(w, "  record:     %s\n", v.Key)
	fmt.Fprintf(w, "  request:    %s %s\n", v.Method, v.URL)
	if v.Writeback != "" {
		fmt.Fprintf(w, "  writeback:  %s %s\n", v.Writeback, v.WritebackError)
	}
	fmt.Fprintf(w, "  created:    %s (binlog commit %s)\n", v.CreatedAt.Local().Format(time.RFC3339), v.EventTime.Local().Format(time.RFC3339))
	if v.Body != "" {
		fmt.Fprintf(w, "  body:       %s\n", indentLines(v.Body, "              "))
	}
	for _, a := range v.Log {
		fmt.Fprintln(w)
		switch a.Kind {
		case dispatch.KindAttempt:
			fmt.Fprintf(w, "Attempt %d at %s (%.1f ms)\n", a.N, a.At.Local().Format(time.RFC3339), a.DurationMS)
			if a.Request != nil {
				fmt.Fprintf(w, "  > %s %s\n", a.Request.Method, a.Request.URL)
				printHeaders(w, "  > ", a.Request.Headers)
			}
			if a.Response != nil {
				fmt.Fprintf(w, "  < %d\n", a.Response.Status)
				printHeaders(w, "  < ", a.Response.Headers)
				if a.Response.Body != "" {
					fmt.Fprintf(w, "  < %s\n", indentLines(a.Response.Body, "  < "))
				}
			}
			if a.Error != "" {
				fmt.Fprintf(w, "  error: %s\n", a.Error)
			}
		default:
			fmt.Fprintf(w, "%s at %s: %s", a.Kind, a.At.Local().Format(time.RFC3339), a.Note)
			if a.Error != "" {
				fmt.Fprintf(w, " (%s)", a.Error)
			}
			fmt.Fprintln(w)
		}
	}
}

func printHeaders(w io.Writer, prefix string, h map[string][]string) {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, v := range h[k] {
			fmt.Fprintf(w, "%s%s: %s\n", prefix, k, v)
		}
	}
}

func indentLines(s, prefix string) string {
	return strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n"+prefix)
}

// RedeliverNote is what rowhook redeliver's help and output say a re-run
// sends.
const RedeliverNote = "A re-run sends the stored request again: the method, URL, payload headers and body as they were built\n" +
	"when the event was enqueued (rowhook deliveries show ID prints them), with the same webhook-id. What is\n" +
	"added per attempt comes from the running config: authentication, configured headers, a fresh signature.\n" +
	"With --rerender the request is built again with the config's current rules, body functions and webhook\n" +
	"(URL included), from the row images of the event's binlog transaction, read from the source (so\n" +
	"source.dsn is needed and that binlog must still be on the source): the row as it was, not as it is."

// PrintRequeued prints one line per re-queued delivery: its id, then the
// stored method and URL it will be sent to again.
func PrintRequeued(ctx context.Context, w io.Writer, st dispatch.Store, ids []string) error {
	for _, id := range ids {
		d, _, err := st.Get(ctx, id)
		if err != nil {
			return fmt.Errorf("re-queued %s, but cannot read it back: %w", id, err)
		}
		fmt.Fprintf(w, "%s\t%s %s\n", id, d.Method, d.URL)
	}
	return nil
}
