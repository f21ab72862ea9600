package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// reloadRequest is one reload asked for, by SIGHUP or POST /admin/reload.
type reloadRequest struct {
	via   string
	reply chan reloadResult // nil for SIGHUP: nobody waits
}

// reloadResult is what a reload did.
type reloadResult struct {
	// Reloaded is true when a new pipeline runs the re-read file.
	Reloaded bool
	// Notes are settings kept (they need a restart) and "unchanged".
	Notes []string
	// Err is why the running configuration was kept.
	Err error
}

// answer hands res to whoever asked; only the first answer counts.
func (r reloadRequest) answer(res reloadResult) {
	if r.reply == nil {
		return
	}
	select {
	case r.reply <- res:
	default:
	}
}

// request asks Serve's loop for a reload and waits for its outcome.
func (s *server) request(ctx context.Context, via string) reloadResult {
	req := reloadRequest{via: via, reply: make(chan reloadResult, 1)}
	select {
	case s.reqs <- req:
	case <-ctx.Done():
		return reloadResult{Err: ctx.Err()}
	case <-s.done:
		return reloadResult{Err: errors.New("rowhook is stopping")}
	}
	select {
	case res := <-req.reply:
		return res
	case <-ctx.Done():
		return reloadResult{Err: ctx.Err()}
	case <-s.done:
		return reloadResult{Err: errors.New("rowhook is stopping")}
	}
}

// reloadHandler serves POST /admin/reload: 200 with what was done, 422 with
// why the file was refused (the running configuration kept), 503 where
// nothing reloads (a pipeline opened without Serve).
func reloadHandler(reload func(context.Context, string) reloadResult) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if reload == nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			json.NewEncoder(w).Encode(map[string]any{"error": "this process does not reload its configuration (rowhook run with ha.enabled: restart it)"})
			return
		}
		res := reload(r.Context(), "POST /admin/reload")
		if res.Err != nil {
			w.WriteHeader(http.StatusUnprocessableEntity)
			json.NewEncoder(w).Encode(map[string]any{"reloaded": false, "error": res.Err.Error(), "kept": "the running configuration"})
			return
		}
		notes := res.Notes
		if notes == nil {
			notes = []string{}
		}
		json.NewEncoder(w).Encode(map[string]any{"reloaded": res.Reloaded, "notes": notes})
	})
}

// prepare reads the config file again and checks it with rowhook check
// --offline's code (Load, then Check: sections, rules compiled, body
// functions, webhooks, rule tables against the source filters). It returns
// the config to run (nil when it equals the running one) with the
// settings that need a restart put back to their running values, and a
// note for each.
func (s *server) prepare(ctx context.Context, cur *Config) (*Config, []string, error) {
	next, doc, err := Load(ctx, s.path)
	if err != nil {
		return nil, nil, err
	}
	if _, err := Check(ctx, next, doc, true); err != nil {
		return nil, nil, err
	}
	notes := keepRestartOnly(cur, next)
	if reflect.DeepEqual(cur, next) {
		return nil, notes, nil
	}
	return next, notes, nil
}

// restartOnly are the settings a reload cannot change: the listener serves
// on through the reload; another source or state store would not hold the
// checkpoint the pipeline resumes from; ha.* chooses another way to run.
var restartOnly = []struct {
	key  string
	same func(a, b *Config) bool
	keep func(dst, src *Config)
}{
	{"source.dsn", func(a, b *Config) bool { return a.Source.DSN == b.Source.DSN }, func(d, s *Config) { d.Source.DSN = s.Source.DSN }},
	{"source.flavor", func(a, b *Config) bool { return a.Source.Flavor == b.Source.Flavor }, func(d, s *Config) { d.Source.Flavor = s.Source.Flavor }},
	{"state.driver", func(a, b *Config) bool { return a.Dispatch.State.Driver == b.Dispatch.State.Driver }, func(d, s *Config) { d.Dispatch.State.Driver = s.Dispatch.State.Driver }},
	{"state.dsn", func(a, b *Config) bool { return a.Dispatch.State.DSN == b.Dispatch.State.DSN }, func(d, s *Config) { d.Dispatch.State.DSN = s.Dispatch.State.DSN }},
	{"state.path", func(a, b *Config) bool { return a.Dispatch.State.Path == b.Dispatch.State.Path }, func(d, s *Config) { d.Dispatch.State.Path = s.Dispatch.State.Path }},
	{"http.listen", func(a, b *Config) bool { return a.HTTP.Listen == b.HTTP.Listen }, func(d, s *Config) { d.HTTP.Listen = s.HTTP.Listen }},
	{"ha", func(a, b *Config) bool { return a.HA == b.HA }, func(d, s *Config) { d.HA = s.HA }},
}

// keepRestartOnly puts next's restart-only settings back to cur's values
// and says which changed (by key only: a DSN carries a password).
func keepRestartOnly(cur, next *Config) []string {
	var notes []string
	for _, r := range restartOnly {
		if !r.same(cur, next) {
			r.keep(next, cur)
			notes = append(notes, "changed "+r.key+" needs a restart; kept the running value")
		}
	}
	return notes
}

// reloadMetrics count reloads: rowhook_config_reloads_total{result},
// rowhook_config_last_reload_successful and
// rowhook_config_last_reload_success_timestamp_seconds (the start counts
// as a successful load, as in Prometheus).
type reloadMetrics struct {
	reloads       *prometheus.CounterVec
	lastOK        prometheus.Gauge
	lastSuccessAt prometheus.Gauge
}

func newReloadMetrics(reg prometheus.Registerer) *reloadMetrics {
	m := &reloadMetrics{
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rowhook_config_reloads_total",
			Help: "Configuration reloads (SIGHUP, POST /admin/reload) by result: success, or failure (the running configuration kept).",
		}, []string{"result"}),
		lastOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rowhook_config_last_reload_successful",
			Help: "1 when the last configuration load (the start or a reload) succeeded, 0 when the last reload was refused.",
		}),
		lastSuccessAt: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rowhook_config_last_reload_success_timestamp_seconds",
			Help: "Unix time of the last successful configuration load (the start or a reload).",
		}),
	}
	m.reloads.WithLabelValues("success")
	m.reloads.WithLabelValues("failure")
	reg.MustRegister(m.reloads, m.lastOK, m.lastSuccessAt)
	return m
}

// loaded records the start's load: no reload counted.
func (m *reloadMetrics) loaded(at time.Time) {
	m.lastOK.Set(1)
	m.lastSuccessAt.Set(float64(at.UnixNano()) / 1e9)
}

func (m *reloadMetrics) success(at time.Time) {
	m.reloads.WithLabelValues("success").Inc()
	m.loaded(at)
}

func (m *reloadMetrics) failure() {
	m.reloads.WithLabelValues("failure").Inc()
	m.lastOK.Set(0)
}
