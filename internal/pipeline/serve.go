package pipeline

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	mysqldriver "github.com/go-sql-driver/mysql"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/internal/backoff"
)

// Serve is rowhook run without ha: the listener first, serving /healthz and
// /metrics from the start, then the pipeline. While a server the pipeline
// needs at start (the source, the writeback primary, a MySQL state server)
// cannot be reached, Serve reports not ready in /readyz, with the reason and
// the next attempt, and opens again with backoff as the reader reconnects;
// only a configuration error (Transient false) ends it. A signal on
// o.Hangup (SIGHUP) or POST /admin/reload reloads the config file at path
// (reload.go, docs/reload.md). It returns nil after ctx's clean cancel.
func Serve(ctx context.Context, path string, cfg *Config, o Options) error {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s := &server{path: path, o: o, logger: o.Logger, reg: newRegistry(o.Version),
		reqs: make(chan reloadRequest), done: make(chan struct{}), state: "starting"}
	s.rm = newReloadMetrics(s.reg)
	s.rm.loaded(time.Now())
	check := readyCheck{name: "pipeline", check: s.readyErr}
	srv, err := newHTTPServer(cfg.HTTP.Listen, s.reg, prometheus.Gatherers{s.reg, &s.piped}, []readyCheck{check},
		"rowhook is starting or reloading its configuration: see /readyz", o.Logger)
	if err != nil {
		return err
	}
	s.host = &host{http: srv, checks: []readyCheck{check}, reload: s.request}
	httpCtx, stopHTTP := context.WithCancel(context.WithoutCancel(ctx))
	httpDone := make(chan error, 1)
	runCtx, cancelRun := context.WithCancelCause(ctx)
	defer cancelRun(nil)
	go func() {
		err := srv.Run(httpCtx)
		if err != nil {
			cancelRun(err) // a failing listener ends rowhook as before
		}
		httpDone <- err
	}()
	err = s.loop(runCtx, cfg)
	close(s.done)
	stopHTTP()
	if herr := <-httpDone; herr != nil {
		return herr
	}
	return err
}

// server is Serve's state: the listener and the registry outlive each
// pipeline; piped gathers the running pipeline's own registry.
type server struct {
	path   string
	o      Options
	logger *slog.Logger
	reg    *prometheus.Registry
	piped  swapGatherer
	host   *host
	rm     *reloadMetrics
	reqs   chan reloadRequest
	done   chan struct{} // closed when loop has returned

	mu      sync.Mutex
	state   string    // "starting", "running" or "reloading"
	lastErr error     // why the last open failed (nil: none did)
	retryAt time.Time // when the next open is due
	attempt int
}

// readyErr is the pipeline check of /readyz: nil while a pipeline runs.
func (s *server) readyErr(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.state == "running":
		return nil
	case s.lastErr != nil:
		wait := time.Until(s.retryAt).Round(time.Second)
		return fmt.Errorf("%s: %v; retrying in %s (attempt %d)", s.state, s.lastErr, max(wait, 0), s.attempt+1)
	}
	return errors.New(s.state)
}

func (s *server) setState(state string, err error, retryAt time.Time, attempt int) {
	s.mu.Lock()
	s.state, s.lastErr, s.retryAt, s.attempt = state, err, retryAt, attempt
	s.mu.Unlock()
}

// loop runs the pipeline on cfg until ctx ends or it fails, and reloads.
func (s *server) loop(ctx context.Context, cfg *Config) error {
	p, err := s.open(ctx, cfg, "starting")
	if err != nil || p == nil {
		return err
	}
	stop := s.start(ctx, p)
	defer func() { stop() }()
	for {
		var req reloadRequest
		select {
		case <-p.Done():
			return p.Wait() // nil after ctx's cancel
		case <-s.o.Hangup:
			req = reloadRequest{via: "SIGHUP"}
		case req = <-s.reqs:
		}
		next, notes, err := s.prepare(ctx, cfg)
		switch {
		case err != nil:
			s.logger.Error("config reload: the file is invalid; kept the running configuration", "config", s.path, "via", req.via, "error", err)
			s.rm.failure()
			req.answer(reloadResult{Err: err})
			continue
		case next == nil:
			s.logger.Info("config reload: nothing changed; kept the running pipeline", "config", s.path, "via", req.via)
			s.rm.success(time.Now())
			req.answer(reloadResult{Notes: append(notes, "configuration unchanged")})
			continue
		}
		for _, n := range notes {
			s.logger.Warn("config reload: "+n, "config", s.path)
		}
		// Stop as on SIGTERM: the reader stops at a transaction end, the
		// checkpoint is flushed, in-flight deliveries drain (what is still
		// pending stays in the store for the next pipeline).
		s.setState("reloading", nil, time.Time{}, 0)
		p.reloading.Store(true)
		stop()
		if err := p.Wait(); err != nil {
			req.answer(reloadResult{Err: fmt.Errorf("the running pipeline stopped with an error: %w", err)})
			return err
		}
		s.piped.set(nil)
		np, err := s.open(ctx, next, "reloading")
		if err != nil {
			// Valid offline, refused by a server (a column a new rule
			// names is not there, a WSDL that does not load): back to the
			// configuration that ran.
			s.logger.Error("config reload: the new configuration does not start; restarting the running one", "config", s.path, "via", req.via, "error", err)
			s.rm.failure()
			req.answer(reloadResult{Err: err})
			np, err = s.open(ctx, cfg, "reloading")
			if err != nil {
				return err
			}
		} else if np != nil {
			cfg = next
			s.rm.success(time.Now())
			s.logger.Info("config reload: the new configuration runs", "config", s.path, "via", req.via,
				"rules", len(cfg.Rules.Rules), "webhooks", len(cfg.Dispatch.Webhooks), "resume_at", np.from.String())
			req.answer(reloadResult{Reloaded: true, Notes: notes})
		}
		if np == nil { // ctx ended while opening
			req.answer(reloadResult{Err: errors.New("rowhook is stopping")})
			return nil
		}
		p = np
		stop = s.start(ctx, p)
	}
}

// start starts p until the returned stop is called or ctx ends.
func (s *server) start(ctx context.Context, p *Pipeline) (stop context.CancelFunc) {
	pctx, stop := context.WithCancel(ctx)
	p.Start(pctx)
	s.setState("running", nil, time.Time{}, 0)
	return stop
}

// open opens the pipeline on cfg with the listener and a fresh registry,
// again after a backoff while Transient says a server is out of reach. It
// returns nil, nil when ctx ends first.
func (s *server) open(ctx context.Context, cfg *Config, state string) (*Pipeline, error) {
	maxWait := cfg.Source.MaxBackoff
	if maxWait <= 0 {
		maxWait = 30 * time.Second
	}
	for attempt := 1; ; attempt++ {
		reg := prometheus.NewRegistry()
		h := *s.host
		h.reg = reg
		p, err := open(ctx, cfg, Options{Dir: s.o.Dir, Logger: s.logger, Version: s.o.Version}, &h)
		if err == nil {
			s.piped.set(reg)
			return p, nil
		}
		if ctx.Err() != nil {
			return nil, nil
		}
		if !Transient(err) {
			return nil, err
		}
		wait := backoff.EqualJitter(backoff.Exponential(attempt, 500*time.Millisecond, maxWait), rand.Float64())
		s.setState(state, err, time.Now().Add(wait), attempt)
		s.logger.Warn("cannot start the pipeline: a server is out of reach; retrying", "error", oneLine(err), "attempt", attempt, "wait", wait.String())
		select {
		case <-ctx.Done():
			return nil, nil
		case <-time.After(wait):
		}
	}
}

// Transient reports whether err, from opening the pipeline, is a server out
// of reach (refused or reset connections, timeouts, DNS failures, a server
// shutting down or out of connections), which waiting may cure, rather than
// a configuration error: a wrong password or a missing grant (ERROR
// 1045/1227/1044/1142), a source not set up for rowhook (log_bin off,
// binlog_format STATEMENT, binlog_row_metadata MINIMAL: an
// *cdc.InspectionError), an unknown schema or column, a bad file. Those are
// changed by an operator, never by waiting, and end rowhook at once
// (docs/reload.md, "Source down at start").
func Transient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var ie *cdc.InspectionError
	if errors.As(err, &ie) || errors.Is(err, cdc.ErrSource) || errors.Is(err, cdc.ErrPurged) {
		return false
	}
	var me *mysqldriver.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case 1040, // too many connections
			1053, // server shutdown in progress
			1129, // host blocked after too many connection errors
			1203, // max_user_connections
			1927, // connection killed
			2006, // server has gone away
			2013, // lost connection
			4031: // client idle timeout
			return true
		}
		return false
	}
	// Not the net.Error interface: syscall.Errno implements it, so a
	// permission denied on the state directory would pass for a network
	// problem.
	var oe *net.OpError
	var de *net.DNSError
	if errors.As(err, &oe) || errors.As(err, &de) {
		return true
	}
	for _, e := range []error{driver.ErrBadConn, mysqldriver.ErrInvalidConn, io.EOF, io.ErrUnexpectedEOF,
		syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.ECONNABORTED, syscall.ETIMEDOUT, syscall.EHOSTUNREACH,
		syscall.ENETUNREACH, os.ErrDeadlineExceeded, context.DeadlineExceeded} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// Hangup is Options.Hangup for rowhook run: SIGHUP from now until ctx
// ends, when SIGHUP ends the process again (its default).
func Hangup(ctx context.Context) <-chan os.Signal {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGHUP)
	context.AfterFunc(ctx, func() { signal.Stop(c) })
	return c
}

// swapGatherer gathers the running pipeline's registry, nothing between
// two pipelines: each opened pipeline registers its metrics anew.
type swapGatherer struct {
	mu  sync.Mutex
	reg *prometheus.Registry
}

func (g *swapGatherer) set(reg *prometheus.Registry) {
	g.mu.Lock()
	g.reg = reg
	g.mu.Unlock()
}

// Gather implements prometheus.Gatherer.
func (g *swapGatherer) Gather() ([]*dto.MetricFamily, error) {
	g.mu.Lock()
	reg := g.reg
	g.mu.Unlock()
	if reg == nil {
		return nil, nil
	}
	return reg.Gather()
}

// oneLine renders err for a log line without line breaks.
func oneLine(err error) string {
	return strings.ReplaceAll(err.Error(), "\n", " | ")
}

var _ prometheus.Gatherer = (*swapGatherer)(nil)
