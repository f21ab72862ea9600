package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"slices"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rowhook/rowhook/internal/yamlconf"
)

// readyCheck is one condition of /readyz.
type readyCheck struct {
	name  string
	check func(ctx context.Context) error
	// advisory checks are reported but keep /readyz at 200 unless the
	// request names them (/readyz?lag=1): lag while catching up is an alert,
	// not a reason to take the admin page and API out of a Service.
	advisory bool
}

// newRegistry returns a registry with Go, process and build-info metrics.
func newRegistry(version string) *prometheus.Registry {
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

	base   *routes // the probes and /metrics, always served
	app    atomic.Pointer[routes]
	checks atomic.Pointer[[]readyCheck]
	// idle answers the routes while no pipeline is mounted (HA standby,
	// rowhook waiting for its source or reloading).
	idle string
}

// route is one pattern mounted on rowhook's listener.
type route struct {
	pattern string
	// public routes answer without the admin token.
	public bool
}

// routes is a mux on which every route is mounted through public or
// protected: there is no other way to add one, so none can be added
// without deciding whether it needs the admin token, and the list it keeps
// is what TestRoutes_AdminToken checks its table against. Public routes
// are the probes, /metrics and static files that carry no data; every
// route that returns CRM data, delivery logs or configuration is protected.
type routes struct {
	mux     *http.ServeMux
	protect func(http.Handler) http.Handler
	list    []route
}

// newRoutes returns an empty mux whose protected routes go through
// protect: the admin API's authentication (adminapi.Protect:
// "Authorization: Bearer <admin.token>" unless the listener is
// loopback-only, 403 when it is not and admin.token is empty).
func newRoutes(protect func(http.Handler) http.Handler) *routes {
	return &routes{mux: http.NewServeMux(), protect: protect}
}

// public serves h to anyone: only for routes with no CRM data.
func (rt *routes) public(pattern string, h http.Handler) {
	rt.mux.Handle(pattern, h)
	rt.list = append(rt.list, route{pattern: pattern, public: true})
}

// protected serves h behind the admin token.
func (rt *routes) protected(pattern string, h http.Handler) {
	if rt.protect == nil {
		panic("routes: protected route " + pattern + " on a mux without authentication")
	}
	rt.mux.Handle(pattern, rt.protect(h))
	rt.list = append(rt.list, route{pattern: pattern})
}

func (rt *routes) ServeHTTP(w http.ResponseWriter, r *http.Request) { rt.mux.ServeHTTP(w, r) }

// routes lists every route the listener serves now: its own, then the
// mounted pipeline's.
func (s *httpServer) routes() []route {
	out := slices.Clone(s.base.list)
	if app := s.app.Load(); app != nil {
		out = append(out, app.list...)
	}
	return out
}

// pattern is the route that serves r: the listener's own, else the
// mounted pipeline's ("" when none matches).
func (s *httpServer) pattern(r *http.Request) string {
	if _, p := s.base.mux.Handler(r); p != "/" {
		return p
	}
	if app := s.app.Load(); app != nil {
		_, p := app.mux.Handler(r)
		return p
	}
	return ""
}

// ruleEvents are the event names the rules produce, the only ones a
// subscription may name (besides *).
func ruleEvents(cfg *Config) []string {
	out := []string{}
	for _, r := range cfg.Rules.Rules {
		out = append(out, r.Event)
	}
	return out
}

// AdminTokenWarning is nil, or the warning for a listener that other hosts
// reach while admin.token is empty: every protected route then answers 403.
func AdminTokenWarning(cfg *Config) error {
	if isLoopback(cfg.HTTP.Listen) || cfg.Dispatch.Admin.Token != "" {
		return nil
	}
	return yamlconf.Errf("http.listen", "%s is not loopback-only and admin.token is not set: the admin API, the perform list "+
		"(/events/{name}/sample), /soap/lookup and the admin page's data answer 403 to every request; set admin.token "+
		"(for example admin.token: ${ROWHOOK_ADMIN_TOKEN}) and send it as Authorization: Bearer <token>", cfg.HTTP.Listen)
}

// newHTTPServer listens on addr at once (so a port clash fails start-up,
// and tests can use ":0" and read Addr). /metrics serves what gather
// gathers (reg registers promhttp's own metrics). Until mount, /readyz runs
// checks and every route but the probes and /metrics answers 503 with idle.
func newHTTPServer(addr string, reg *prometheus.Registry, gather prometheus.Gatherer, checks []readyCheck, idle string, logger *slog.Logger) (*httpServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	s := &httpServer{ln: ln, logger: logger, base: newRoutes(nil), idle: idle}
	s.checks.Store(&checks)
	mux := s.base
	mux.public("GET /healthz", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	}))
	mux.public("GET /readyz", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		type result struct {
			Check    string `json:"check"`
			OK       bool   `json:"ok"`
			Error    string `json:"error,omitempty"`
			Advisory bool   `json:"advisory,omitempty"`
		}
		var results []result
		ready := true
		for _, c := range *s.checks.Load() {
			res := result{Check: c.name, OK: true, Advisory: c.advisory}
			if err := c.check(ctx); err != nil {
				res.OK, res.Error = false, err.Error()
				if !c.advisory || r.URL.Query().Get(c.name) == "1" {
					ready = false
				}
			}
			results = append(results, res)
		}
		w.Header().Set("Content-Type", "application/json")
		if !ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		json.NewEncoder(w).Encode(map[string]any{"ready": ready, "checks": results})
	}))
	mux.public("GET /metrics", promhttp.HandlerFor(gather, promhttp.HandlerOpts{Registry: reg}))
	// Not a route of its own: the way to the mounted pipeline's routes,
	// each public or protected there.
	mux.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if app := s.app.Load(); app != nil {
			app.ServeHTTP(w, r)
			return
		}
		http.Error(w, s.idle, http.StatusServiceUnavailable)
	})
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return s, nil
}

// mount serves app for every route but the probes and /metrics, and makes
// /readyz run checks; mount(nil, checks) takes the routes down again.
func (s *httpServer) mount(app *routes, checks []readyCheck) {
	s.checks.Store(&checks)
	s.app.Store(app)
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
