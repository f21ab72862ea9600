package soap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/internal/yamlconf"
	"github.com/rowhook/rowhook/rules"
)

// paramEnv is what parameter expressions see: row (the row after the
// change; before it on delete), old (before an update), body (the event
// body by field name) and event (id, name, rule, key, timestamp).
func paramEnv() map[string]any {
	return map[string]any{
		"row":   map[string]any{},
		"old":   map[string]any{},
		"body":  map[string]any{},
		"event": map[string]any{},
	}
}

// compileParam compiles one parameter expression; errors are positioned
// *yamlconf.PathError values.
func compileParam(path, src string) (*vm.Program, error) {
	prog, err := expr.Compile(src, expr.Env(paramEnv()))
	if err != nil {
		pe := &yamlconf.PathError{Path: path, Err: err}
		var fe *file.Error
		if errors.As(err, &fe) {
			pe.Err = errors.New(fe.Message + " (names: row, old, body, event)")
			if fe.Line <= 1 {
				pe.Offset = fe.Column
			} else {
				pe.Err = fmt.Errorf("%s (line %d, column %d of the expression)", pe.Err, fe.Line, fe.Column+1)
			}
		}
		return nil, pe
	}
	return prog, nil
}

// Deps are a Webhook's collaborators. Zero fields get defaults.
type Deps struct {
	// Client fetches the WSDL and its imports (default: 30s timeout).
	Client *http.Client
	// Logger receives refresh failures (default: discard).
	Logger *slog.Logger
	// BaseDir is the directory relative WSDL paths are taken from (the
	// configuration file's directory).
	BaseDir string
	// Path is the block's configuration path for errors
	// ("webhooks.erp.soap").
	Path string
	// Now and Rand drive WS-Security timestamps and nonces (tests).
	Now func() time.Time
}

// Webhook is one configured SOAP webhook: the loaded WSDL (kept fresh by
// Run), the chosen operation and the compiled parameter mapping.
type Webhook struct {
	cfg      Config
	path     string
	location string
	loader   *Loader
	log      *slog.Logger
	sec      *Security
	progs    []paramProg
	svc      atomic.Pointer[Service]
	op       atomic.Pointer[Operation]

	mu          sync.Mutex
	lastErr     error
	lastSuccess time.Time
	now         func() time.Time
}

type paramProg struct {
	path string
	prog *vm.Program
}

// New validates cfg, loads the WSDL and checks the mapping against it.
// A WSDL that cannot be loaded is an error: it fails loudly at start-up.
func New(ctx context.Context, cfg Config, deps Deps) (*Webhook, error) {
	path := deps.Path
	if path == "" {
		path = "soap"
	}
	if err := cfg.Validate(path); err != nil {
		return nil, err
	}
	w := &Webhook{cfg: cfg, path: path, log: deps.Logger, sec: cfg.security(), now: deps.Now}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	if w.now == nil {
		w.now = time.Now
	}
	if w.sec != nil {
		w.sec.Now = w.now
	}
	w.location = cfg.WSDL
	if !isRemote(cfg.WSDL) && deps.BaseDir != "" && !filepath.IsAbs(cfg.WSDL) && !hasScheme(cfg.WSDL) {
		w.location = filepath.Join(deps.BaseDir, cfg.WSDL)
	}
	w.loader = &Loader{Client: deps.Client}
	if b := cfg.Auth.Basic; b != nil {
		user, pass := b.Username, b.Password
		w.loader.Authorize = func(r *http.Request) { r.SetBasicAuth(user, pass) }
	}
	for _, k := range sortedKeys(cfg.Params) {
		prog, err := compileParam(path+".params."+k, cfg.Params[k])
		if err != nil {
			return nil, err
		}
		w.progs = append(w.progs, paramProg{k, prog})
	}
	svc, op, err := w.load(ctx)
	if err != nil {
		return nil, err
	}
	w.svc.Store(svc)
	w.op.Store(op)
	w.lastSuccess = w.now()
	return w, nil
}

func hasScheme(s string) bool {
	i := 0
	for i < len(s) && (s[i] >= 'a' && s[i] <= 'z' || s[i] >= 'A' && s[i] <= 'Z') {
		i++
	}
	return i > 1 && i < len(s) && s[i] == ':'
}

// load fetches the WSDL and checks the configuration against it.
func (w *Webhook) load(ctx context.Context) (*Service, *Operation, error) {
	svc, err := w.loader.Load(ctx, w.location)
	if err != nil {
		return nil, nil, yamlconf.Errf(w.path+".wsdl", "%v", scrub(err, w.cfg.Secrets()))
	}
	if err := w.cfg.CheckService(svc, w.path); err != nil {
		return nil, nil, err
	}
	op, err := svc.Operation(w.cfg.Operation, w.cfg.SOAPVersion)
	if err != nil {
		return nil, nil, yamlconf.Errf(w.path+".operation", "%v", err)
	}
	return svc, op, nil
}

// scrub removes secrets from an error's text.
func scrub(err error, secrets []string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	changed := false
	for _, s := range secrets {
		if len(s) >= 3 && strings.Contains(msg, s) {
			msg = strings.ReplaceAll(msg, s, "[REDACTED]")
			changed = true
		}
	}
	if !changed {
		return err
	}
	return errors.New(msg)
}

// Service returns the WSDL currently in use.
func (w *Webhook) Service() *Service { return w.svc.Load() }

// Operation returns the operation currently in use.
func (w *Webhook) Operation() *Operation { return w.op.Load() }

// Endpoint is where requests go: the endpoint setting or the WSDL's
// soap:address.
func (w *Webhook) Endpoint() string {
	if w.cfg.Endpoint != "" {
		return w.cfg.Endpoint
	}
	return w.op.Load().Endpoint
}

// Secrets lists the configured passwords, for redaction.
func (w *Webhook) Secrets() []string { return w.cfg.Secrets() }

// Values evaluates the parameter mapping for ev into a value tree.
func (w *Webhook) Values(ev *rules.Event) (map[string]any, error) {
	env := eventEnv(ev)
	values := map[string]any{}
	for _, p := range w.progs {
		v, err := expr.Run(p.prog, env)
		if err != nil {
			return nil, fmt.Errorf("parameter %s: %w", p.path, err)
		}
		if err := SetPath(values, p.path, v); err != nil {
			return nil, err
		}
	}
	return values, nil
}

// Encode builds the request for ev: evaluates the mapping and builds the
// envelope of the current operation. The WS-Security header is not part
// of it (see Authorize).
func (w *Webhook) Encode(ev *rules.Event) (*Request, error) {
	values, err := w.Values(ev)
	if err != nil {
		return nil, err
	}
	return w.op.Load().BuildRequest(values)
}

// Authorize adds the credentials to one attempt's request: HTTP Basic and
// the WS-Security header (fresh nonce and timestamp each time).
func (w *Webhook) Authorize(req *http.Request) error {
	if b := w.cfg.Auth.Basic; b != nil {
		req.SetBasicAuth(b.Username, b.Password)
	}
	if w.sec != nil {
		if err := w.sec.ApplyRequest(req); err != nil {
			return scrub(err, w.cfg.Secrets())
		}
	}
	return nil
}

// CheckResponse classifies a response to the current operation (see the
// package function CheckResponse).
func (w *Webhook) CheckResponse(status int, header http.Header, body []byte) (map[string]any, error) {
	return CheckResponse(w.op.Load(), status, header, body)
}

// Caller returns a Caller for the current operation's endpoint and
// credentials over client.
func (w *Webhook) Caller(client *http.Client) *Caller {
	c := &Caller{Client: client, Endpoint: w.cfg.Endpoint, Security: w.sec}
	if b := w.cfg.Auth.Basic; b != nil {
		user, pass := b.Username, b.Password
		c.Authorize = func(r *http.Request) { r.SetBasicAuth(user, pass) }
	}
	return c
}

// Refresh loads the WSDL again. On success the new copy replaces the old
// one; on failure (fetch error, or the operation or a mapped parameter is
// gone) the last good copy stays in use and the error is returned and
// kept for LastRefresh.
func (w *Webhook) Refresh(ctx context.Context) error {
	svc, op, err := w.load(ctx)
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		w.lastErr = err
		return fmt.Errorf("refresh wsdl: %w", err)
	}
	w.svc.Store(svc)
	w.op.Store(op)
	w.lastErr = nil
	w.lastSuccess = w.now()
	return nil
}

// LastRefresh returns when the WSDL was last loaded and the error of the
// latest refresh (nil when it succeeded).
func (w *Webhook) LastRefresh() (time.Time, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lastSuccess, w.lastErr
}

// Run refreshes the WSDL every wsdl_refresh until ctx is cancelled (it
// returns nil then). A failed refresh is logged and retried at the next
// interval; it never stops the webhook.
func (w *Webhook) Run(ctx context.Context) error {
	every := w.cfg.refreshEvery()
	if every <= 0 {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := w.Refresh(ctx); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				w.log.Warn("wsdl refresh failed; keeping the last good copy", "wsdl", showLocation(w.cfg.WSDL), "error", err)
			} else {
				w.log.Debug("wsdl refreshed", "wsdl", showLocation(w.cfg.WSDL))
			}
		}
	}
}

// eventEnv is the expression environment of ev.
func eventEnv(ev *rules.Event) map[string]any {
	env := paramEnv()
	if ev == nil {
		return env
	}
	if c := ev.Change; c != nil {
		row := c.After
		if c.Op == cdc.OpDelete || row == nil {
			row = c.Before
		}
		if row != nil {
			env["row"] = exprRow(row)
		}
		if c.Op == cdc.OpUpdate && c.Before != nil {
			env["old"] = exprRow(c.Before)
		}
	}
	env["body"] = bodyMap(ev.Body)
	env["event"] = map[string]any{
		"id": ev.ID, "name": ev.Name, "rule": ev.Rule, "key": ev.Key, "timestamp": ev.Timestamp,
	}
	return env
}

// exprRow presents a row to expressions: DECIMAL and JSON values as plain
// strings (exact; float(row.amount) converts), the rest as they are.
func exprRow(r cdc.Row) map[string]any {
	m := make(map[string]any, len(r))
	for k, v := range r {
		m[k] = exprValue(v)
	}
	return m
}

func exprValue(v any) any {
	switch x := v.(type) {
	case cdc.Decimal:
		return string(x)
	case cdc.JSON:
		return string(x)
	}
	return v
}

func bodyMap(b rules.Body) map[string]any {
	m := make(map[string]any, len(b))
	for _, f := range b {
		m[f.Name] = bodyValue(f.Value)
	}
	return m
}

func bodyValue(v any) any {
	switch x := v.(type) {
	case rules.Body:
		return bodyMap(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = bodyValue(e)
		}
		return out
	}
	return exprValue(v)
}
