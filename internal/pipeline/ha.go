package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rowhook/rowhook/internal/leader"
	"github.com/rowhook/rowhook/internal/mysqldsn"
)

// RunHA runs rowhook as one of several processes on this config: standby
// (serving /healthz, /readyz and /metrics) until it holds the HA lock, then
// active. Losing the lock stops the pipeline at once and ends the process
// with an error: the supervisor restarts it, and it comes back as a
// standby with nothing kept from its term (caches, settle windows,
// registered metrics). SIGTERM stops the pipeline in order, then releases
// the lock so that a standby takes over at once. Once active, a server out
// of reach is waited for as by Serve (not ready, retried with backoff).
func RunHA(ctx context.Context, cfg *Config, o Options) error {
	cfgDir, logger := o.Dir, o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	dsn, err := HADSN(cfg)
	if err != nil {
		return err
	}
	dcfg, err := mysqldsn.Parse(dsn)
	if err != nil {
		return fmt.Errorf("ha.dsn: %v", err)
	}
	name := HALockName(cfg.HA, stateID(cfg, cfgDir))
	reg := newRegistry(o.Version)
	// The same reload metrics as Serve's: the start's load, and no reload
	// (SIGHUP is logged and ignored here).
	newReloadMetrics(reg).loaded(time.Now())
	el, err := leader.New(leader.Config{Server: dcfg, Name: name, Interval: cfg.HA.Interval}, leader.Deps{Logger: logger, Registerer: reg})
	if err != nil {
		return err
	}
	defer el.Close()
	lockCheck := readyCheck{name: "ha", check: func(context.Context) error {
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
	// The pipeline is opened as by Serve: again while a server is out of
	// reach, each attempt with a registry of its own.
	s := &server{o: o, logger: logger, reg: reg, state: "standby", done: make(chan struct{})}
	checks := []readyCheck{lockCheck, {name: "pipeline", check: s.readyErr}}
	srv, err := newHTTPServer(cfg.HTTP.Listen, reg, prometheus.Gatherers{reg, &s.piped}, checks,
		"standby: this rowhook does not hold the HA lock; the active one serves the admin API (see /readyz)", logger)
	if err != nil {
		return err
	}
	s.host = &host{http: srv, checks: checks}
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
	go func() {
		select {
		case <-lease.Lost(): // also while waiting for a server below
			cancelPipeline()
		case <-pctx.Done():
		}
	}()
	s.setState("starting", nil, time.Time{}, 0)
	p, err := s.open(pctx, cfg, "starting")
	if err != nil || p == nil {
		select {
		case <-lease.Lost():
			return fmt.Errorf("ha: lost the lock %q on %s while starting: %w; exiting: restart rowhook and it waits as a standby", name, dcfg.Addr, lease.Err())
		default:
		}
		if rerr := release(); rerr != nil {
			logger.Warn("ha: release lock", "error", rerr)
		}
		return errors.Join(err, finish(nil)) // err nil: ctx ended while a server was out of reach
	}
	p.Start(pctx)
	s.setState("running", nil, time.Time{}, 0)
	for hup := o.Hangup; ; {
		select {
		case <-hup:
			logger.Warn("SIGHUP: with ha.enabled rowhook does not reload its configuration; restart the processes one by one (standbys first) to apply it")
			continue
		case <-lease.Lost():
			// Stop reading and delivering now, not after a drain: the server
			// may soon grant the lock to a standby. Returning ends the process;
			// in-flight deliveries stay pending in the outbox and the next
			// active process sends them with the same webhook-ids.
			cancelPipeline()
			return fmt.Errorf("ha: lost the lock %q on %s: %w; stopped reading and delivering and exiting: restart rowhook and it waits as a standby", name, dcfg.Addr, lease.Err())
		case <-p.done:
		}
		break
	}
	perr := p.Wait()
	if rerr := release(); rerr != nil {
		logger.Warn("ha: release lock", "error", rerr)
	}
	return finish(perr)
}
