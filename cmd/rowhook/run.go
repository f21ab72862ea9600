package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/dispatch"
	"github.com/rowhook/rowhook/dispatch/soap"
	"github.com/rowhook/rowhook/internal/adminui"
	"github.com/rowhook/rowhook/internal/leader"
	"github.com/rowhook/rowhook/rules"
	"github.com/rowhook/rowhook/writeback"
)

func init() {
	register(command{name: "run", summary: "run rowhook: binlog → rules → durable delivery → writeback", run: runRun})
}

func runRun(ctx context.Context, args []string, io stdio) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(io.err)
	configPath := fs.String("config", "", "rowhook configuration file (required)")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprintln(io.err, "Usage: rowhook run --config FILE [--log-format text|json] [--log-level info]")
		fmt.Fprintln(io.err)
		fmt.Fprintln(io.err, "Reads the source's binlog, evaluates the rules, delivers events durably and writes")
		fmt.Fprintln(io.err, "responses back. Serves /healthz, /readyz, /metrics, the admin API and the perform list on")
		fmt.Fprintln(io.err, "http.listen. Stops cleanly on SIGINT/SIGTERM: reading stops, in-flight deliveries drain,")
		fmt.Fprintln(io.err, "the checkpoint is flushed. With ha.enabled, several processes share one config: one is active,")
		fmt.Fprintln(io.err, "the others wait as standbys (readyz 503) for the lock on ha.dsn; see docs/ha.md.")
		fmt.Fprintln(io.err, "A first start (no state) stores its source.start position as the checkpoint before it is ready;")
		fmt.Fprintln(io.err, "a state that exists but holds no rowhook state (an empty file) is refused: see rowhook position --set.")
		fmt.Fprintln(io.err)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return usagef("run: %v", err)
	}
	if *configPath == "" {
		return usagef("run: --config is required")
	}
	logger, err := newLogger(io.err, *logFormat, *logLevel)
	if err != nil {
		return usagef("run: %v", err)
	}
	cfg, doc, err := loadConfigAll(ctx, *configPath)
	if err != nil {
		return err
	}
	if cfg.HA.Enabled {
		if err := doc.Locate(errors.Join(haRefs(*cfg)...)); err != nil {
			return err
		}
		return runHA(ctx, cfg, filepath.Dir(*configPath), logger)
	}
	p, err := startPipeline(ctx, cfg, filepath.Dir(*configPath), logger)
	if err != nil {
		return err
	}
	return p.Wait()
}

// runHA runs rowhook as one of several processes on this config: standby
// (serving /healthz, /readyz and /metrics) until it holds the HA lock, then
// active. Losing the lock stops the pipeline at once and ends the process
// with an error: the supervisor restarts it, and it comes back as a
// standby with nothing kept from its term (caches, settle windows,
// registered metrics). SIGTERM stops the pipeline in order, then releases
// the lock so that a standby takes over at once.
func runHA(ctx context.Context, cfg *config, cfgDir string, logger *slog.Logger) error {
	dsn, err := haDSN(cfg)
	if err != nil {
		return err
	}
	dcfg, err := writeback.ParseDSN(dsn)
	if err != nil {
		return fmt.Errorf("ha.dsn: %v", err)
	}
	name := haLockName(cfg.HA, stateID(cfg, cfgDir))
	reg := newRegistry()
	el, err := leader.New(leader.Config{Server: dcfg, Name: name, Interval: cfg.HA.Interval}, leader.Deps{Logger: logger, Registerer: reg})
	if err != nil {
		return err
	}
	defer el.Close()
	lockCheck := readyCheck{"ha", func(context.Context) error {
		st := el.Status()
		switch {
		case st.Leader:
			return nil
		case st.Err != nil:
			return fmt.Errorf("standby: lock server %s: %v", dcfg.Addr, st.Err)
		case st.Holder != 0:
			return fmt.Errorf("standby: waiting for the lock %q held by connection %d on %s", name, st.Holder, dcfg.Addr)
		}
		return fmt.Errorf("standby: waiting for the lock %q on %s", name, dcfg.Addr)
	}}
	srv, err := newHTTPServer(cfg.HTTP.Listen, reg, []readyCheck{lockCheck}, logger)
	if err != nil {
		return err
	}
	// A failing listener ends the process as it would without HA.
	runCtx, cancelRun := context.WithCancelCause(ctx)
	defer cancelRun(nil)
	httpCtx, stopHTTP := context.WithCancel(context.WithoutCancel(ctx))
	defer stopHTTP()
	httpDone := make(chan error, 1)
	go func() {
		err := srv.Run(httpCtx)
		if err != nil {
			cancelRun(err)
		}
		httpDone <- err
	}()
	stopServer := func() error {
		stopHTTP()
		return <-httpDone
	}
	// finish stops the listener and says why runHA ends: the listener's
	// failure, else perr, else nil (SIGTERM).
	finish := func(perr error) error {
		herr := stopServer()
		if herr != nil {
			return herr
		}
		return perr
	}

	logger.Info("ha: standby, waiting for the lock", "lock", name, "server", dcfg.Addr, "listen", srv.Addr(), "takeover", cfg.HA.Takeover)
	lease, err := el.Acquire(runCtx)
	if err != nil {
		return finish(nil) // Acquire ends only with runCtx
	}
	release := func() error {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.HA.Interval+5*time.Second)
		defer cancel()
		return lease.Release(rctx)
	}
	pctx, cancelPipeline := context.WithCancel(runCtx)
	defer cancelPipeline()
	p, err := startPipelineOn(pctx, cfg, cfgDir, logger, &pipelineHost{reg: reg, http: srv, checks: []readyCheck{lockCheck}})
	if err != nil {
		if rerr := release(); rerr != nil {
			logger.Warn("ha: release lock", "error", rerr)
		}
		return errors.Join(err, finish(nil))
	}
	select {
	case <-lease.Lost():
		// Stop reading and delivering now, not after a drain: the server
		// may soon grant the lock to a standby. Returning ends the process;
		// in-flight deliveries stay pending in the outbox and the next
		// active process sends them with the same webhook-ids.
		cancelPipeline()
		return fmt.Errorf("ha: lost the lock %q on %s: %w; stopped reading and delivering and exiting: restart rowhook and it waits as a standby", name, dcfg.Addr, lease.Err())
	case <-p.done:
	}
	perr := p.Wait()
	if rerr := release(); rerr != nil {
		logger.Warn("ha: release lock", "error", rerr)
	}
	return finish(perr)
}

// newLogger builds the process logger; secrets never reach it (components
// log redacted addresses only).
func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("bad --log-level %q: use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("bad --log-format %q: use text or json", format)
}

// pipeline is a running rowhook: the binlog reader feeding the rules
// engine, whose events the dispatcher stores and delivers, with the HTTP
// listener beside them.
type pipeline struct {
	reader *cdc.Reader
	engine *rules.Engine
	store  *stateStore
	disp   *dispatch.Dispatcher
	soap   *soap.Registry
	wb     *writeback.Writer
	http   *httpServer
	logger *slog.Logger
	// unmount takes the pipeline's routes off a listener it does not own
	// (HA) before the components close.
	unmount func()

	g    *errgroup.Group
	done chan struct{}
	err  error
}

// pipelineHost is the listener and metrics registry a pipeline shares with
// the process around it when that process serves before the pipeline
// starts (HA standby).
type pipelineHost struct {
	reg  *prometheus.Registry
	http *httpServer
	// checks run in /readyz before the pipeline's own (the HA lock).
	checks []readyCheck
}

// startPipeline builds every component (failing fast with the first
// configuration or connection problem) and starts them, with its own
// listener.
func startPipeline(ctx context.Context, cfg *config, cfgDir string, logger *slog.Logger) (*pipeline, error) {
	return startPipelineOn(ctx, cfg, cfgDir, logger, nil)
}

// statePath is the SQLite state file, relative paths taken from cfgDir.
func statePath(cfg *config, cfgDir string) string {
	p := cfg.Dispatch.State.Path
	if p == "" {
		p = dispatch.DefaultStatePath
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(cfgDir, p)
	}
	return p
}

// startPipelineOn is startPipeline on a host's listener and registry; nil
// host means its own.
func startPipelineOn(ctx context.Context, cfg *config, cfgDir string, logger *slog.Logger, host *pipelineHost) (_ *pipeline, err error) {
	p := &pipeline{logger: logger, done: make(chan struct{})}
	defer func() {
		if err != nil {
			p.close()
		}
	}()
	var reg *prometheus.Registry
	if host != nil {
		reg = host.reg
	} else {
		reg = newRegistry()
	}

	// The start-up inspection rowhook check runs too (startup.go).
	su, err := inspectStartup(ctx, cfg, cfgDir, startupRun, logger, reg)
	if err != nil {
		return nil, err
	}
	p.reader, p.wb, p.store = su.reader, su.wb, su.store
	insp := su.insp
	srcDB, err := p.reader.DB()
	if err != nil {
		return nil, err
	}
	// writeback.New checked that the source keeps the writeback session's
	// annotations (the replica's settings, or the primary's session when
	// rowhook reads the primary itself); the reader's every reconnection
	// checks again (pipelineHandler.HandleConnect). Whatever the mode, an
	// update repeating a recent writeback's values fires nothing
	// (Writer.Own).
	skip := writeback.IsOwnChange
	if p.wb != nil {
		skip = p.wb.Own
	}
	p.engine, err = rules.New(ctx, cfg.Rules, rules.Deps{Logger: logger, Source: srcDB, Skip: skip, Registerer: reg})
	if err != nil {
		return nil, err
	}
	// A first start stores where it starts before it is ready.
	if _, err := storeStartPosition(ctx, p.reader, p.store, logger); err != nil {
		return nil, err
	}

	open := isLoopback(cfg.HTTP.Listen)
	p.soap = soap.NewRegistry(soap.Deps{Logger: logger, BaseDir: cfgDir})
	deps := dispatch.Deps{
		Logger: logger, Registerer: reg, AdminOpen: open, Events: ruleEvents(cfg),
		Encoders: map[string]dispatch.EncoderFactory{dispatch.ContentSOAP: p.soap.Factory(ctx)},
	}
	if p.wb != nil {
		deps.Writeback = writebackAdapter{w: p.wb, soap: p.soap}
		deps.WritebackRetry = writebackRetry(cfg.Writeback)
	}
	p.disp, err = dispatch.New(cfg.Dispatch, p.store, deps)
	if err != nil {
		return nil, err
	}
	from, _, err := p.disp.Checkpoint(ctx)
	if err != nil {
		return nil, fmt.Errorf("read checkpoint from %s: %w", p.store.Where, err)
	}

	// Every route is public or protected (the admin token off loopback);
	// TestRoutes_AdminToken lists each. The perform list returns records'
	// bodies: Zapier-style tools send the token as Authorization: Bearer.
	mux := newRoutes(p.disp.Protect)
	mux.protected("GET /events/{name}/sample", p.engine.SampleHandler())
	mux.protected("/", p.disp.AdminHandler())
	// The SOAP look-ups a UI builds a mapping with. Only admins reach it,
	// and they may point it at the internal hosts their webhooks call, so
	// no SSRF guard here; local files are refused by the handler.
	mux.protected("GET /soap/lookup", soap.LookupHandler(&soap.Loader{Client: &http.Client{Timeout: 30 * time.Second}}))
	ui := adminui.Handler(adminui.Options{
		Status:         p.status(cfg, insp.Flavor),
		AllowRedeliver: cfg.Dispatch.Admin.AllowRedeliver,
		Token:          cfg.Dispatch.Admin.Token,
		Open:           open,
		Logger:         logger,
	})
	mux.public("/ui/", ui)        // the page's HTML, JS and CSS: no data; it asks for the token
	mux.protected("/ui/api/", ui) // the page's data

	// studio (issue 16): /studio/try, /studio/changes, /studio/meta,
	// protected; the ring the reader fills below, nil when studio is off.
	studioRing := mountStudio(mux, cfg, srcDB, deps.Encoders)
	if err := adminTokenWarning(cfg); err != nil {
		logger.Warn(err.Error())
	}
	checks := []readyCheck{
		{"binlog", func(context.Context) error {
			if !p.reader.Connected() {
				return errors.New("binlog stream not connected")
			}
			return nil
		}},
		{"lag", func(context.Context) error {
			if lag := p.reader.Lag(); cfg.HTTP.ReadyMaxLag > 0 && lag > cfg.HTTP.ReadyMaxLag {
				return fmt.Errorf("lag %s over http.ready_max_lag %s", lag.Round(time.Second), cfg.HTTP.ReadyMaxLag)
			}
			return nil
		}},
		{"store", func(ctx context.Context) error {
			if _, _, err := p.store.Checkpoint(ctx); err != nil {
				return fmt.Errorf("state store: %w", err)
			}
			if p.store.File == "" {
				return nil
			}
			f, err := os.CreateTemp(filepath.Dir(p.store.File), ".rowhook-ready-*")
			if err != nil {
				return fmt.Errorf("state directory not writable: %w", err)
			}
			f.Close()
			if err := os.Remove(f.Name()); err != nil {
				return fmt.Errorf("state directory: %w", err)
			}
			// The file itself too (made read-only or immutable on its own).
			sf, err := os.OpenFile(p.store.File, os.O_WRONLY, 0)
			if err != nil {
				return fmt.Errorf("state file not writable: %w", err)
			}
			return sf.Close()
		}},
	}
	if host == nil {
		p.http, err = newHTTPServer(cfg.HTTP.Listen, reg, nil, logger)
		if err != nil {
			return nil, err
		}
		p.http.mount(mux, checks)
	} else {
		p.http = host.http
		p.http.mount(mux, append(slices.Clip(host.checks), checks...))
		p.unmount = func() { host.http.mount(nil, host.checks) }
	}

	// Shutdown order: the reader stops first, the last checkpoint is
	// flushed, then deliveries drain, then the listener closes.
	g, gctx := errgroup.WithContext(ctx)
	dispCtx, stopDisp := context.WithCancel(context.WithoutCancel(ctx))
	httpCtx, stopHTTP := context.WithCancel(context.WithoutCancel(ctx))
	h := &pipelineHandler{engine: p.engine, disp: p.disp, reader: p.reader, wb: p.wb}
	if isMySQLState(cfg) {
		// A MySQL state server may feed the binlog rowhook reads (the
		// state schema replicated to the source replica): a commit per
		// transaction read would then chase its own tail. Checkpoint-only
		// advances are committed at most once a second instead.
		h.quiet = time.Second
	}
	g.Go(func() error {
		defer stopDisp()
		var rh cdc.Handler = h
		if studioRing != nil { // studio (issue 16): the reader fills the ring
			rh = &studioFeed{pipelineHandler: h, ring: studioRing}
		}
		err := p.reader.Run(gctx, from, rh)
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		ferr := h.flushDeferred(fctx)
		if ferr == nil {
			ferr = p.disp.Flush(fctx)
		}
		if ferr != nil {
			logger.Error("flush checkpoint at shutdown", "error", ferr)
			if err == nil {
				err = fmt.Errorf("flush checkpoint: %w", ferr)
			}
		}
		if err != nil {
			return fmt.Errorf("binlog reader: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		defer stopHTTP()
		if err := p.disp.Run(dispCtx); err != nil {
			return err // Run's errors start with "dispatch:"
		}
		return nil
	})
	if host == nil {
		g.Go(func() error { return p.http.Run(httpCtx) })
	} // else the host's listener outlives the pipeline
	if p.wb != nil {
		// A writer that can no longer mark its writes (annotations lost
		// in mode annotate, or no marker table) stops everything: going on
		// would let every writeback fire its rule again.
		g.Go(func() error {
			select {
			case <-p.wb.Failed():
				return p.wb.Err() // starts with "writeback:"
			case <-gctx.Done():
				return nil
			}
		})
	}
	g.Go(func() error {
		// WSDL refreshes stop with deliveries.
		if err := p.soap.Run(dispCtx); err != nil && !errors.Is(err, context.Canceled) {
			return fmt.Errorf("soap: %w", err)
		}
		return nil
	})
	p.g = g
	go func() {
		p.err = g.Wait()
		if p.unmount != nil {
			p.unmount()
		}
		p.close()
		close(p.done)
	}()
	logger.Info("rowhook started", "source", p.reader.Source().Redacted(), "flavor", insp.Flavor,
		"rules", len(cfg.Rules.Rules), "webhooks", len(cfg.Dispatch.Webhooks), "state", p.store.Where, "listen", p.http.Addr())
	return p, nil
}

// Wait blocks until the pipeline has stopped and returns why (nil after a
// clean cancel).
func (p *pipeline) Wait() error {
	<-p.done
	return p.err
}

func (p *pipeline) close() {
	if p.store != nil {
		p.store.Close()
	}
	if p.wb != nil {
		p.wb.Close()
	}
	if p.reader != nil {
		p.reader.Close()
	}
}

// pipelineHandler feeds committed transactions through the rules into the
// dispatcher's outbox, with the checkpoint that makes a restart safe.
type pipelineHandler struct {
	engine *rules.Engine
	disp   *dispatch.Dispatcher
	reader *cdc.Reader
	wb     *writeback.Writer

	once    sync.Once
	last    cdc.Checkpoint
	pending bool

	// quiet > 0 holds checkpoint-only advances back for that long after
	// the last commit; deferred is the one held back.
	quiet    time.Duration
	lastAt   time.Time
	deferred cdc.Checkpoint
}

func (h *pipelineHandler) HandleTransaction(ctx context.Context, tx *cdc.Transaction) error {
	// The reader's position before the first transaction is where reading
	// started: the engine needs it to name a resume point before a settle
	// window that transaction opens.
	h.once.Do(func() { h.engine.Resume(h.reader.Position()) })
	if h.wb != nil && h.wb.OwnTransaction(tx) {
		// rowhook's own writeback: advance past it, fire nothing.
		own := *tx
		own.Changes = nil
		tx = &own
	} else if h.wb != nil && h.wb.Mode() == writeback.ModeAnnotate && unannotated(tx) {
		// The source stopped logging annotations (a setting changed
		// without a reconnection): switch before this transaction's
		// events can lead to a writeback, or stop.
		if err := h.wb.Unannotated(ctx, tx.ID); err != nil {
			return err
		}
	}
	events, err := h.engine.Process(ctx, tx)
	if err != nil {
		return fmt.Errorf("rules on transaction %s: %w", tx.ID, err)
	}
	return h.enqueue(ctx, tx.Checkpoint, events)
}

// HandleConnect checks again, on every (re)connection of the binlog reader,
// that rowhook's writes will be recognised (Writer.Recheck): a server
// restarted without annotations switches the writer to the marker table or
// stops the pipeline with the setting to change.
func (h *pipelineHandler) HandleConnect(ctx context.Context) error {
	if h.wb == nil {
		return nil
	}
	return h.wb.Recheck(ctx)
}

// unannotated reports whether tx has row changes and none carries its
// statement's text: MariaDB writes Annotate_rows before every statement's
// row events while binlog_annotate_row_events is on.
func unannotated(tx *cdc.Transaction) bool {
	for i := range tx.Changes {
		if tx.Changes[i].Annotation != "" {
			return false
		}
	}
	return len(tx.Changes) > 0
}

func (h *pipelineHandler) HandleIdle(ctx context.Context, now time.Time) error {
	events, err := h.engine.Flush(ctx, now)
	if err != nil {
		return fmt.Errorf("rules flush: %w", err)
	}
	if len(events) == 0 && !h.pending {
		return h.flushDeferred(ctx)
	}
	return h.enqueue(ctx, h.reader.Position(), events)
}

// flushDeferred commits a checkpoint-only advance held back by quiet.
func (h *pipelineHandler) flushDeferred(ctx context.Context) error {
	if h.deferred.IsZero() {
		return nil
	}
	cp := h.deferred
	h.deferred = cdc.Checkpoint{}
	h.last, h.lastAt = cp, time.Now()
	return h.disp.Enqueue(ctx, cp, nil)
}

// enqueue stores events with the checkpoint after cp, or the engine's hold
// point while a settle window is open (so a crash re-reads what is held).
func (h *pipelineHandler) enqueue(ctx context.Context, cp cdc.Checkpoint, events []rules.Event) error {
	held := false
	if hold, ok := h.engine.Hold(); ok {
		cp, held = hold, true
	}
	h.pending = held
	if len(events) == 0 && cp == h.last {
		return nil
	}
	if h.quiet > 0 && len(events) == 0 && time.Since(h.lastAt) < h.quiet {
		h.deferred = cp
		return nil
	}
	h.deferred = cdc.Checkpoint{}
	h.last, h.lastAt = cp, time.Now()
	return h.disp.Enqueue(ctx, cp, events)
}

// writebackAdapter lets the dispatcher call the writeback Writer; for SOAP
// webhooks it parses the response into the tree `response.soap` addresses.
type writebackAdapter struct {
	w    *writeback.Writer
	soap *soap.Registry
}

func (a writebackAdapter) Needs(rule string) bool { return a.w.Has(rule) }

func (a writebackAdapter) Apply(ctx context.Context, deliveryID string, ev dispatch.StoredEvent, resp dispatch.Response) error {
	r := writeback.Response{Status: resp.Status, Header: resp.Headers, Body: resp.Body}
	if wh := a.soap.Webhook(ev.Webhook); wh != nil {
		// Typed by the operation's output schema when the WSDL is loaded.
		tree, err := wh.Operation().ParseResponse(resp.Body)
		if err != nil {
			tree, err = soap.ParseResponse(resp.Body)
		}
		if err != nil {
			return fmt.Errorf("parse SOAP response of %s for writeback: %w", deliveryID, err)
		}
		r.SOAP = tree
	}
	return a.w.Apply(ctx, deliveryID, ev.Rule, ev.Change, r)
}

// status reports the pipeline's state for the admin page.
func (p *pipeline) status(cfg *config, flavor string) func(context.Context) adminui.Status {
	return func(ctx context.Context) adminui.Status {
		st := adminui.Status{Version: version}
		pos := p.reader.Position()
		st.Binlog = adminui.BinlogStatus{
			Connected: p.reader.Connected(), Source: p.reader.Source().Addr(), Flavor: flavor,
			File: pos.File, Pos: pos.Pos, GTIDSet: pos.GTIDSet,
		}
		if st.Binlog.Connected {
			lag := p.reader.Lag().Seconds()
			st.Binlog.LagSeconds = &lag
		}
		if !pos.Timestamp.IsZero() {
			ts := pos.Timestamp
			st.Binlog.EventTime = &ts
		}
		for _, r := range cfg.Rules.Rules {
			st.Rules = append(st.Rules, adminui.RuleStatus{Name: r.Name, Table: r.Table, On: r.On, Event: r.Event, Webhooks: r.Webhooks})
		}
		states := map[string]dispatch.WebhookState{}
		for _, ws := range p.disp.WebhookStates() {
			states[ws.Name] = ws
		}
		names := make([]string, 0, len(cfg.Dispatch.Webhooks))
		for n := range cfg.Dispatch.Webhooks {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			wc := cfg.Dispatch.Webhooks[n]
			kind, u := "rest", redactURL(wc.URL)
			if wc.ContentType == dispatch.ContentSOAP {
				kind = "soap"
				if wh := p.soap.Webhook(n); wh != nil {
					u = redactURL(wh.Endpoint())
				}
			}
			ws := states[n]
			st.Webhooks = append(st.Webhooks, adminui.WebhookStatus{
				Name: n, Kind: kind, URL: u, State: ws.State, Reason: ws.Reason,
				FailingSince: ws.FailingSince, PausedUntil: ws.PausedUntil, InFlight: ws.InFlight,
				Circuit: ws.Circuit, NextProbeAt: ws.NextProbeAt,
			})
		}
		return st
	}
}

// redactURL drops credentials and every query value (api keys travel there)
// from a URL shown on the admin page.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	u.User = nil
	if q := u.Query(); len(q) > 0 {
		for k := range q {
			q[k] = []string{"***"}
		}
		u.RawQuery = q.Encode()
	}
	return u.String()
}

var (
	_ dispatch.Writebacker = writebackAdapter{}
	_ cdc.ConnectHandler   = (*pipelineHandler)(nil)
)

// writebackRetry is the dispatcher's writeback retry policy from the
// writeback: section: max_attempts tries (0 counts as 1), the wait doubling
// from backoff up to max_backoff (writeback.Config.RetryDelay's schedule;
// the dispatcher adds its jitter).
func writebackRetry(c writeback.Config) dispatch.RetryConfig {
	n := max(c.MaxAttempts, 1)
	last := c.MaxBackoff
	if last <= 0 {
		last = c.RetryDelay(min(n, 30)) // no cap: the longest wait used
	}
	return dispatch.RetryConfig{MaxAttempts: n, InitialInterval: c.RetryDelay(1), MaxInterval: max(last, c.RetryDelay(1))}
}
