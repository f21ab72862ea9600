// Package adminui serves rowhook's admin web page: the delivery log in the
// spirit of a CRM webhook module's "logs" tab (deliveries by send time,
// filters, every attempt's request and response, a re-run button), the
// webhooks and rules loaded, and the binlog position and lag.
//
// The page is static HTML, CSS and JavaScript embedded in the binary (no CDN,
// no external fonts). It reads the dispatcher's JSON admin API
// (dispatch/adminapi.New) from the same origin, and the status
// this package serves at <prefix>api/status from Options.Status.
package adminui

import (
	"context"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed assets
var assets embed.FS

// Options configures Handler.
type Options struct {
	// Prefix is the path the page is served under, with leading and trailing
	// slashes (default "/ui/"). The handler expects full request paths: mount
	// it on the prefix without http.StripPrefix.
	Prefix string
	// APIBase is the path the dispatcher's admin API is mounted under, with a
	// trailing slash (default "/": GET /deliveries, ...).
	APIBase string
	// Status reports the process state shown on the page. It is called for
	// each GET <prefix>api/status with the request's context; nil serves an
	// empty status.
	Status func(ctx context.Context) Status
	// AllowRedeliver tells the page whether re-runs are allowed
	// (admin.allow_redeliver), so it can disable the Re-run button with the
	// reason instead of failing on click.
	AllowRedeliver bool
	// Token is the bearer token <prefix>api/status requires, the admin API's
	// admin.token. The page's static assets carry no data and are served
	// without it, so a browser can load the page and ask for the token.
	Token string
	// Open serves <prefix>api/status without the token: set it only when the
	// listener is bound to loopback (as dispatch.Deps.AdminOpen).
	Open bool
	// Logger receives errors writing responses (default: discard).
	Logger *slog.Logger
}

// Status is the JSON document at <prefix>api/status.
type Status struct {
	// Binlog is the replication reader's state.
	Binlog BinlogStatus `json:"binlog"`
	// Rules are the workflow rules loaded, in configuration order.
	Rules []RuleStatus `json:"rules"`
	// Webhooks are the configured webhooks, by name.
	Webhooks []WebhookStatus `json:"webhooks"`
	// AllowRedeliver is filled in from Options.AllowRedeliver.
	AllowRedeliver bool `json:"allow_redeliver"`
	// Version is rowhook's version, shown in the page header.
	Version string `json:"version,omitempty"`
	// Now is when the status was taken, filled in by the handler.
	Now time.Time `json:"now"`
}

// BinlogStatus is the replication reader's state.
type BinlogStatus struct {
	// Connected reports whether the binlog stream is up.
	Connected bool `json:"connected"`
	// Source names the replica (host:port), without credentials.
	Source string `json:"source,omitempty"`
	// Flavor is "mariadb" or "mysql".
	Flavor string `json:"flavor,omitempty"`
	// File and Pos are the last checkpointed binlog coordinates.
	File string `json:"file,omitempty"`
	Pos  uint32 `json:"pos,omitempty"`
	// GTIDSet is the last checkpointed GTID set.
	GTIDSet string `json:"gtid_set,omitempty"`
	// LagSeconds is how far the last event read is behind the replica's
	// clock; nil when unknown (not connected yet).
	LagSeconds *float64 `json:"lag_seconds,omitempty"`
	// EventTime is the commit time of the last transaction read.
	EventTime *time.Time `json:"event_time,omitempty"`
	// Error is the last connection error while not connected.
	Error string `json:"error,omitempty"`
}

// RuleStatus is one workflow rule loaded.
type RuleStatus struct {
	Name     string   `json:"name"`
	Table    string   `json:"table"`
	On       []string `json:"on"`
	Event    string   `json:"event"`
	Webhooks []string `json:"webhooks"`
}

// WebhookStatus is one configured webhook. URL must already be redacted
// (no credentials, no secret query values): the page shows it as given.
type WebhookStatus struct {
	Name         string     `json:"name"`
	Kind         string     `json:"kind,omitempty"` // rest or soap
	URL          string     `json:"url"`
	State        string     `json:"state"` // active, paused, disabled
	Reason       string     `json:"reason,omitempty"`
	FailingSince *time.Time `json:"failing_since,omitempty"`
	PausedUntil  *time.Time `json:"paused_until,omitempty"`
	InFlight     int        `json:"in_flight"`
	// Circuit is the endpoint circuit (closed, open, half_open): open, the
	// webhook's deliveries wait while one probe per interval is sent.
	Circuit string `json:"circuit,omitempty"`
	// NextProbeAt is when an open circuit sends its next probe.
	NextProbeAt *time.Time `json:"next_probe_at,omitempty"`
	// Pending counts the pending deliveries (-1: unknown, QueueError says
	// why); OldestPending is when the oldest of them was queued.
	Pending       int64      `json:"pending"`
	OldestPending *time.Time `json:"oldest_pending,omitempty"`
	QueueError    string     `json:"queue_error,omitempty"`
}

// contentTypes are set explicitly rather than from the system MIME table,
// which differs between machines (text/javascript vs application/javascript).
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
}

// csp allows nothing but the page's own files and same-origin fetches, so a
// value that slipped past escaping still could not run or load anything.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Handler serves the admin page under opts.Prefix: the page at the prefix,
// its assets, and the status JSON at <prefix>api/status.
func Handler(opts Options) http.Handler {
	if opts.Prefix == "" {
		opts.Prefix = "/ui/"
	}
	if !strings.HasPrefix(opts.Prefix, "/") {
		opts.Prefix = "/" + opts.Prefix
	}
	if !strings.HasSuffix(opts.Prefix, "/") {
		opts.Prefix += "/"
	}
	if opts.APIBase == "" {
		opts.APIBase = "/"
	}
	if !strings.HasSuffix(opts.APIBase, "/") {
		opts.APIBase += "/"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	static, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(fmt.Sprintf("adminui: embedded assets: %v", err)) // the embed directive guarantees the directory
	}
	index, err := fs.ReadFile(static, "index.html")
	if err != nil {
		panic(fmt.Sprintf("adminui: embedded index.html: %v", err))
	}
	index = []byte(strings.ReplaceAll(string(index), "{{API_BASE}}", html.EscapeString(opts.APIBase)))
	h := &handler{opts: opts, static: static, index: index}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+opts.Prefix+"api/status", h.status)
	mux.HandleFunc("GET "+opts.Prefix+"api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Errorf("%s %s: no such admin page API", r.Method, r.URL.Path))
	})
	mux.HandleFunc("GET "+opts.Prefix+"{file...}", h.asset)
	mux.Handle("GET "+strings.TrimSuffix(opts.Prefix, "/"), http.RedirectHandler(opts.Prefix, http.StatusMovedPermanently))
	return mux
}

type handler struct {
	opts   Options
	static fs.FS
	index  []byte
}

func securityHeaders(w http.ResponseWriter) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", csp)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Frame-Options", "DENY")
}

func (h *handler) asset(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	if name == "" || name == "index.html" {
		securityHeaders(w)
		w.Header().Set("Content-Type", contentTypes[".html"])
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(h.index)
		return
	}
	ct, ok := contentTypes[path.Ext(name)]
	data, err := fs.ReadFile(h.static, name)
	if !ok || err != nil || !fs.ValidPath(name) {
		http.NotFound(w, r)
		return
	}
	securityHeaders(w)
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Cache-Control", "no-cache")
	if _, err := w.Write(data); err != nil {
		h.opts.Logger.Debug("admin page: write asset", "file", name, "error", err)
	}
}

// authorized applies the admin API's rule: the bearer token unless the
// listener is loopback-only, and no access at all when neither is set.
func (h *handler) authorized(w http.ResponseWriter, r *http.Request) bool {
	if h.opts.Open {
		return true
	}
	if h.opts.Token == "" {
		writeError(w, http.StatusForbidden, errors.New("admin page needs admin.token when the listener is not loopback-only"))
		return false
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(h.opts.Token)) != 1 {
		w.Header().Set("WWW-Authenticate", `Bearer realm="rowhook"`)
		writeError(w, http.StatusUnauthorized, errors.New("missing or wrong bearer token"))
		return false
	}
	return true
}

func (h *handler) status(w http.ResponseWriter, r *http.Request) {
	if !h.authorized(w, r) {
		return
	}
	var st Status
	if h.opts.Status != nil {
		st = h.opts.Status(r.Context())
	}
	if st.Rules == nil {
		st.Rules = []RuleStatus{}
	}
	if st.Webhooks == nil {
		st.Webhooks = []WebhookStatus{}
	}
	st.AllowRedeliver = h.opts.AllowRedeliver
	st.Now = time.Now().UTC()
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, st)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}
