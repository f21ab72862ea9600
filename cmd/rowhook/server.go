package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// readyCheck is one condition of /readyz.
type readyCheck struct {
	name  string
	check func(ctx context.Context) error
}

// newRegistry returns a registry with Go, process and build-info metrics.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	goVersion := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		goVersion = bi.GoVersion
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "rowhook_build_info",
		Help:        "rowhook's version and Go version as labels (value 1).",
		ConstLabels: prometheus.Labels{"version": version, "goversion": goVersion},
	})
	build.Set(1)
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), build)
	return reg
}

// httpServer is rowhook's listener: probes and metrics from the start,
// and the pipeline's routes and readiness checks once mounted. With HA the
// listener serves while the process is standby and the pipeline mounts
// when it becomes active, on the same port.
type httpServer struct {
	srv    *http.Server
	ln     net.Listener
	logger *slog.Logger

	app    atomic.Pointer[http.Handler]
	checks atomic.Pointer[[]readyCheck]
}

// newHTTPServer listens on addr at once (so a port clash fails start-up,
// and tests can use ":0" and read Addr). Until mount, /readyz runs checks
// and every route but the probes and /metrics answers 503.
func newHTTPServer(addr string, reg *prometheus.Registry, checks []readyCheck, logger *slog.Logger) (*httpServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	s := &httpServer{ln: ln, logger: logger}
	s.checks.Store(&checks)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		type result struct {
			Check string `json:"check"`
			OK    bool   `json:"ok"`
			Error string `json:"error,omitempty"`
		}
		var results []result
		ready := true
		for _, c := range *s.checks.Load() {
			res := result{Check: c.name, OK: true}
			if err := c.check(ctx); err != nil {
				res.OK, res.Error, ready = false, err.Error(), false
			}
			results = append(results, res)
		}
		w.Header().Set("Content-Type", "application/json")
		if !ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		json.NewEncoder(w).Encode(map[string]any{"ready": ready, "checks": results})
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if h := s.app.Load(); h != nil {
			(*h).ServeHTTP(w, r)
			return
		}
		http.Error(w, "standby: this rowhook does not hold the HA lock; the active one serves the admin API (see /readyz)", http.StatusServiceUnavailable)
	})
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return s, nil
}

// mount serves app for every route but the probes and /metrics, and makes
// /readyz run checks; mount(nil, checks) takes the routes down again.
func (s *httpServer) mount(app http.Handler, checks []readyCheck) {
	s.checks.Store(&checks)
	if app == nil {
		s.app.Store(nil)
		return
	}
	s.app.Store(&app)
}

// Addr is the address the server listens on.
func (s *httpServer) Addr() string { return s.ln.Addr().String() }

// Run serves until ctx ends, then shuts down within 10 seconds.
func (s *httpServer) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	s.logger.Info("listening", "addr", s.Addr())
	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("http shutdown: %w", err)
	}
	return nil
}

// isLoopback reports whether addr only accepts local connections.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
