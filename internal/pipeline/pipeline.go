package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/dispatch"
	"github.com/rowhook/rowhook/dispatch/adminapi"
	"github.com/rowhook/rowhook/dispatch/soap"
	"github.com/rowhook/rowhook/internal/adminui"
	"github.com/rowhook/rowhook/internal/studio"
	"github.com/rowhook/rowhook/rules"
	"github.com/rowhook/rowhook/writeback"
)

// Pipeline is a running rowhook: the binlog reader feeding the rules
// engine, whose events the dispatcher stores and delivers, with the HTTP
// listener beside them.
type Pipeline struct {
	reader *cdc.Reader
	engine *rules.Engine
	store  *Store
	disp   *dispatch.Dispatcher
	soap   *soap.Registry
	wb     *writeback.Writer
	http   *httpServer
	logger *slog.Logger
	// studioRing keeps recent changes for the rule studio (nil when off).
	studioRing *studio.Ring
	// unmount takes the pipeline's routes off a listener it does not own
	// (HA) before the components close.
	unmount func()

	cfg     *Config
	from    cdc.Checkpoint
	ownHTTP bool // the listener is the pipeline's own (not HA's)
	started bool

	// reloading is set by Serve before it stops the pipeline for a reload.
	reloading atomic.Bool

	g         *errgroup.Group
	done      chan struct{}
	err       error
	closeOnce sync.Once
}

// host is the listener and metrics registry a pipeline shares with
// the process around it when that process serves before the pipeline
// starts (HA standby).
type host struct {
	reg  *prometheus.Registry
	http *httpServer
	// checks run in /readyz before the pipeline's own (the HA lock).
	checks []readyCheck
	// reload serves POST /admin/reload (nil: not served, 503).
	reload func(ctx context.Context, via string) reloadResult
}

// Options are what Open needs besides the config.
type Options struct {
	// Dir is the config file's directory: relative paths (state.path,
	// WSDL files) are taken from it.
	Dir string
	// Logger receives the components' logs; nil discards them.
	Logger *slog.Logger
	// Version is rowhook's version, for rowhook_build_info and the admin
	// page.
	Version string
	// Hangup asks Serve to reload the config file (rowhook run passes
	// SIGHUP); nil never does. RunHA does not reload: it logs that a
	// restart is needed.
	Hangup <-chan os.Signal
}

// Open builds every component, failing fast with the first configuration
// or connection problem (the start-up inspection rowhook check runs too),
// and listens on http.listen. Run starts them; Close releases what Open
// built when Run is never called.
func Open(ctx context.Context, cfg *Config, o Options) (*Pipeline, error) {
	return open(ctx, cfg, o, nil)
}

// StatePath is the SQLite state file, relative paths taken from cfgDir.
func StatePath(cfg *Config, cfgDir string) string {
	p := cfg.Dispatch.State.Path
	if p == "" {
		p = dispatch.DefaultStatePath
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(cfgDir, p)
	}
	return p
}

// open is Open on a host's listener and registry; nil host means its own.
func open(ctx context.Context, cfg *Config, o Options, host *host) (_ *Pipeline, err error) {
	cfgDir, logger := o.Dir, o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	p := &Pipeline{logger: logger, cfg: cfg, done: make(chan struct{})}
	defer func() {
		if err != nil {
			p.close()
		}
	}()
	var reg *prometheus.Registry
	if host != nil {
		reg = host.reg
	} else {
		reg = newRegistry(o.Version)
	}

	// The start-up inspection rowhook check runs too (startup.go).
	su, err := Inspect(ctx, cfg, cfgDir, ModeRun, logger, reg)
	if err != nil {
		return nil, err
	}
	p.reader, p.wb, p.store = su.Reader, su.wb, su.store
	insp := su.Insp
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
	mux := newRoutes(adminapi.Protect(p.disp))
	mux.protected("GET /events/{name}/sample", p.engine.SampleHandler())
	mux.protected("/", adminapi.New(p.disp))
	// The SOAP look-ups a UI builds a mapping with. Only admins reach it,
	// and they may point it at the internal hosts their webhooks call, so
	// no SSRF guard here; local files are refused by the handler.
	// Reloading re-reads the config file, secrets included: admins only.
	var reload func(context.Context, string) reloadResult
	if host != nil {
		reload = host.reload
	}
	mux.protected("POST /admin/reload", reloadHandler(reload))
	mux.protected("GET /soap/lookup", soap.LookupHandler(&soap.Loader{Client: &http.Client{Timeout: 30 * time.Second}}))
	ui := adminui.Handler(adminui.Options{
		Status:         p.status(cfg, insp.Flavor, o.Version),
		AllowRedeliver: cfg.Dispatch.Admin.AllowRedeliver,
		Token:          cfg.Dispatch.Admin.Token,
		Open:           open,
		Logger:         logger,
	})
	mux.public("/ui/", ui)        // the page's HTML, JS and CSS: no data; it asks for the token
	mux.protected("/ui/api/", ui) // the page's data
	// A browser pointed at rowhook gets the page.
	mux.public("GET /{$}", http.RedirectHandler("/ui/", http.StatusFound))
	// The rule studio: /studio/try, /studio/changes, /studio/meta,
	// protected; the ring the reader fills, nil when studio is off.
	p.studioRing = mountStudio(mux, cfg, srcDB, deps.Encoders)
	if err := AdminTokenWarning(cfg); err != nil {
		logger.Warn(err.Error())
	}
	checks := []readyCheck{
		{name: "binlog", check: func(context.Context) error {
			if !p.reader.Connected() {
				return errors.New("binlog stream not connected")
			}
			return nil
		}},
		{name: "lag", check: func(context.Context) error {
			if lag := p.reader.Lag(); cfg.HTTP.ReadyMaxLag > 0 && lag > cfg.HTTP.ReadyMaxLag {
				return fmt.Errorf("lag %s over http.ready_max_lag %s", lag.Round(time.Second), cfg.HTTP.ReadyMaxLag)
			}
			return nil
		}, advisory: true},
		{name: "store", check: func(ctx context.Context) error {
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
		p.http, err = newHTTPServer(cfg.HTTP.Listen, reg, reg, nil, "", logger)
		if err != nil {
			return nil, err
		}
		p.http.mount(mux, checks)
	} else {
		p.http = host.http
		p.http.mount(mux, append(slices.Clip(host.checks), checks...))
		p.unmount = func() { host.http.mount(nil, host.checks) }
	}

	p.from, p.ownHTTP = from, host == nil
	logger.Info("rowhook started", append([]any{"source", p.reader.Source().Redacted(), "flavor", insp.Flavor,
		"rules", len(cfg.Rules.Rules), "webhooks", len(cfg.Dispatch.Webhooks), "state", p.store.Where, "listen", p.http.Addr()},
		adminPageAttrs(p.http.Addr(), cfg.Dispatch.Admin.Token != "")...)...)
	return p, nil
}

// Run starts the components and returns when they have stopped, nil after
// ctx's clean cancel. Shutdown order: the reader stops first, the last
// checkpoint is flushed, then deliveries drain, then the listener closes.
// The components are closed when Run returns.
func (p *Pipeline) Run(ctx context.Context) error {
	p.Start(ctx)
	return p.Wait()
}

// Start is Run without the wait: the components run until ctx ends; Wait
// says why they stopped.
func (p *Pipeline) Start(ctx context.Context) {
	cfg, logger, from := p.cfg, p.logger, p.from
	p.started = true
	g, gctx := errgroup.WithContext(ctx)
	dispCtx, stopDisp := context.WithCancel(context.WithoutCancel(ctx))
	httpCtx, stopHTTP := context.WithCancel(context.WithoutCancel(ctx))
	h := &handler{engine: p.engine, disp: p.disp, reader: p.reader}
	if p.wb != nil {
		h.wb = p.wb
	}
	if IsMySQLState(cfg) {
		// A MySQL state server may feed the binlog rowhook reads (the
		// state schema replicated to the source replica): a commit per
		// transaction read would then chase its own tail. Checkpoint-only
		// advances are committed at most once a second instead.
		h.quiet = time.Second
	}
	g.Go(func() error {
		defer stopDisp()
		var rh cdc.Handler = h
		if p.studioRing != nil { // the reader fills the studio's ring too
			rh = &studioFeed{handler: h, ring: p.studioRing}
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
	if p.ownHTTP {
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
		stopped := p.stopAttrs(ctx)
		p.close()
		msg := "rowhook stopped"
		if p.reloading.Load() {
			msg = "pipeline stopped for a configuration reload" // the process goes on
		}
		logger.Info(msg, append(stopped, "store_closed", p.store.Where)...)
		close(p.done)
	}()
}

// Wait blocks until the pipeline started by Start has stopped and returns
// why (nil after a clean cancel).
func (p *Pipeline) Wait() error {
	<-p.done
	return p.err
}

// Done is closed when the pipeline started by Start has stopped.
func (p *Pipeline) Done() <-chan struct{} { return p.done }

// Close releases what Open built; after Run it has nothing left to do.
// A pipeline opened and never run also stops listening.
func (p *Pipeline) Close() error {
	if !p.started && p.ownHTTP && p.http != nil {
		p.http.ln.Close()
	}
	p.close()
	return nil
}

func (p *Pipeline) close() {
	p.closeOnce.Do(func() {
		if p.store != nil {
			p.store.Close()
		}
		if p.wb != nil {
			p.wb.Close()
		}
		if p.reader != nil {
			p.reader.Close()
		}
	})
}

// Addr is the address the pipeline's listener serves on.
func (p *Pipeline) Addr() string { return p.http.Addr() }

// Reader is the binlog reader (for tests and rowhook bench).
func (p *Pipeline) Reader() *cdc.Reader { return p.reader }

// Writeback is the writeback writer, nil when no rule writes back (for
// tests).
func (p *Pipeline) Writeback() *writeback.Writer { return p.wb }

// State is the state store (for tests and rowhook bench).
func (p *Pipeline) State() *Store { return p.store }
