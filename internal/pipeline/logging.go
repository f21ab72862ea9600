package pipeline

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"
)

// NewLogger builds a process logger writing format ("text" or "json") at
// level ("debug", "info", "warn" or "error") to w. Secrets never reach it:
// components log redacted addresses only.
//
// Durations follow one rule in both formats (docs/deploy.md, "Logs"): an
// attribute whose value is a time.Duration is written as a number of
// seconds (a float, millisecond precision or finer) under its key with
// "_seconds" appended, so duration=1.5s becomes duration_seconds=1.5 and
// JSON readers never see slog's integer nanoseconds.
func NewLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("bad --log-level %q: use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv, ReplaceAttr: DurationSeconds}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("bad --log-format %q: use text or json", format)
}

// DurationSeconds is the slog.HandlerOptions.ReplaceAttr of NewLogger: a
// time.Duration value becomes float seconds under key + "_seconds" (a key
// that already ends in "_seconds" keeps its name).
func DurationSeconds(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() != slog.KindDuration {
		return a
	}
	key := a.Key
	if !strings.HasSuffix(key, "_seconds") {
		key += "_seconds"
	}
	return slog.Float64(key, a.Value.Duration().Seconds())
}

// AdminPageURL is the admin page's address on the listener bound to addr
// (the real port when http.listen asked for :0). A wildcard host
// (0.0.0.0, ::) is shown as this machine's host name.
func AdminPageURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr + "/ui/"
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
		if h, err := os.Hostname(); err == nil && h != "" {
			host = h
		}
	}
	return "http://" + net.JoinHostPort(host, port) + "/ui/"
}

// adminPageAttrs are the start line's admin page attributes: its URL and,
// when admin.token is set, a note that the page asks for it (never the
// token itself).
func adminPageAttrs(addr string, token bool) []any {
	attrs := []any{"admin_page", AdminPageURL(addr)}
	if token {
		attrs = append(attrs, "admin_token", "set: the page asks for it, the API wants it as Authorization: Bearer")
	}
	return attrs
}

// stopAttrs are the shutdown line's attributes, read before the store is
// closed: the checkpoint stored last and what became of the attempts on
// the wire when the stop came.
func (p *Pipeline) stopAttrs(ctx context.Context) []any {
	var attrs []any
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	switch cp, ok, err := p.disp.Checkpoint(cctx); {
	case err != nil:
		attrs = append(attrs, "checkpoint_error", err.Error())
	case ok:
		attrs = append(attrs, "checkpoint", cp.String())
	default:
		attrs = append(attrs, "checkpoint", "none")
	}
	if r, ok := p.disp.Drained(); ok {
		attrs = append(attrs, "in_flight", r.InFlight, "in_flight_finished", r.Finished, "in_flight_left_pending", r.LeftPending)
	}
	return attrs
}
