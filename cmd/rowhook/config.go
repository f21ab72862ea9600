package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"time"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/dispatch"
	"github.com/rowhook/rowhook/internal/leader"
	"github.com/rowhook/rowhook/internal/studio"
	"github.com/rowhook/rowhook/internal/yamlconf"
	"github.com/rowhook/rowhook/rules"
	"github.com/rowhook/rowhook/writeback"
)

// config is rowhook's whole configuration file. Each package owns its part
// and validates it; this file only composes them.
type config struct {
	Source    cdc.Config       `yaml:"source"`
	Rules     rules.Config     `yaml:",inline"`
	Dispatch  dispatch.Config  `yaml:",inline"`
	Writeback writeback.Config `yaml:"writeback"`
	HTTP      httpConfig       `yaml:"http"`
	HA        haConfig         `yaml:"ha"`
	Studio    studio.Config    `yaml:"studio"`
}

// httpConfig is the `http:` section: rowhook's listener.
type httpConfig struct {
	// Listen is the address of /healthz, /readyz, /metrics, the admin API
	// and the perform list. On a non-loopback address every route but the
	// probes, /metrics and the admin page's static files needs admin.token.
	Listen string `yaml:"listen"`
	// ReadyMaxLag makes /readyz fail while the binlog lag is above it; 0
	// disables the lag check.
	ReadyMaxLag time.Duration `yaml:"ready_max_lag"`
}

// Validate checks the listener settings.
func (h httpConfig) Validate() error {
	if _, _, err := net.SplitHostPort(h.Listen); err != nil {
		return yamlconf.Errf("http.listen", "must be host:port, for example 127.0.0.1:9788: %v", err)
	}
	if h.ReadyMaxLag < 0 {
		return yamlconf.Errf("http.ready_max_lag", "must not be negative")
	}
	return nil
}

// haConfig is the `ha:` section: several rowhook processes on one config,
// one active, the others standby, elected with a named lock (GET_LOCK) on
// one MySQL/MariaDB server. See docs/ha.md.
type haConfig struct {
	// Enabled turns the election on; off, rowhook starts at once.
	Enabled bool `yaml:"enabled"`
	// DSN is the server holding the lock; empty means writeback.dsn (the
	// CRM's primary). Locks are per server: every process must name the
	// same server, never a per-host replica.
	DSN string `yaml:"dsn"`
	// Name is the lock's name; empty derives it from the state path, so
	// processes sharing a state share a lock.
	Name string `yaml:"name"`
	// Interval is how often a standby tries the lock and the active one
	// checks it still holds it.
	Interval time.Duration `yaml:"interval"`
	// Takeover is the promised bound from the active process's death to
	// the standby running; Validate checks the interval keeps it.
	Takeover time.Duration `yaml:"takeover"`
}

// haStartup is the time takeover must leave for the new active process to
// connect and resume after it has the lock.
const haStartup = 2 * time.Second

// Validate checks the section on its own; haDSN checks the DSN against the
// rest of the config.
func (h haConfig) Validate() error {
	if !h.Enabled {
		return nil
	}
	var errs []error
	if h.DSN != "" {
		if _, err := writeback.ParseDSN(h.DSN); err != nil {
			errs = append(errs, yamlconf.Errf("ha.dsn", "%v", err))
		}
	}
	if len(h.Name) > 64 {
		errs = append(errs, yamlconf.Errf("ha.name", "at most 64 characters (a server lock name), got %d", len(h.Name)))
	}
	switch {
	case h.Interval < leader.MinInterval:
		errs = append(errs, yamlconf.Errf("ha.interval", "must be at least %s", leader.MinInterval))
	case h.Takeover <= 0:
		errs = append(errs, yamlconf.Errf("ha.takeover", "must be positive"))
	default:
		// The lock frees itself at most one interval plus wait_timeout after
		// the holder's death; the standby sees it within one more interval
		// and needs time to start.
		need := leader.Bound(h.Interval) + h.Interval + haStartup
		if h.Takeover < need {
			errs = append(errs, yamlconf.Errf("ha.takeover", "%s cannot be kept with ha.interval %s: the lock is free up to %s after the active process dies (interval + wait_timeout %s), the standby notices within an interval and needs about %s to start: %s in all; raise takeover or lower interval",
				h.Takeover, h.Interval, leader.Bound(h.Interval), leader.WaitTimeout(h.Interval), haStartup, need))
		}
	}
	return errors.Join(errs...)
}

// haDSN is the lock server's DSN: ha.dsn, else writeback.dsn, else a
// located error.
func haDSN(cfg *config) (string, error) {
	switch {
	case cfg.HA.DSN != "":
		return cfg.HA.DSN, nil
	case cfg.Writeback.DSN != "":
		return cfg.Writeback.DSN, nil
	}
	return "", yamlconf.Errf("ha.dsn", "required with ha.enabled when there is no writeback.dsn: name the CRM's primary (or one server every rowhook process reaches; locks are per server, so not a per-host replica)")
}

// haRefs is the cross-section check of the ha: section, for loadConfigAll.
func haRefs(cfg config) []error {
	if !cfg.HA.Enabled {
		return nil
	}
	if _, err := haDSN(&cfg); err != nil {
		return []error{err}
	}
	return nil
}

// haLockName is ha.name, or one derived from the absolute state path.
func haLockName(h haConfig, statePath string) string {
	if h.Name != "" {
		return h.Name
	}
	abs, err := filepath.Abs(statePath)
	if err != nil {
		abs = statePath
	}
	sum := sha256.Sum256([]byte(abs))
	base := filepath.Base(abs)
	if len(base) > 32 {
		base = base[:32]
	}
	return "rowhook:" + base + ":" + hex.EncodeToString(sum[:8])
}

func defaultConfig() config {
	return config{
		Source:    cdc.DefaultConfig(),
		Writeback: writeback.DefaultConfig(),
		HTTP:      httpConfig{Listen: "127.0.0.1:9788", ReadyMaxLag: 5 * time.Minute},
		HA:        haConfig{Interval: time.Second, Takeover: 10 * time.Second},
		Studio:    studio.DefaultConfig(),
	}
}

// loadConfig reads the file and validates only the `source:` section, for
// commands that only read the binlog (rowhook tail).
func loadConfig(ctx context.Context, path string) (*config, *yamlconf.Doc, error) {
	return untilDone(ctx, "config", func() (*config, *yamlconf.Doc, error) {
		cfg := defaultConfig()
		doc, err := yamlconf.Load(path, &cfg)
		if err != nil {
			return nil, doc, err
		}
		if err := doc.Locate(errors.Join(cfg.Source.Validate())); err != nil {
			return nil, doc, err
		}
		return &cfg, doc, nil
	})
}

// untilDone runs load, which reads and checks what (a config or rule test
// file), and returns its result, or an error as soon as ctx is done
// (SIGINT/SIGTERM), whichever comes first. Reading and checking do not
// watch ctx themselves, and the file may be a pipe that never ends
// (--config <(generator)); a command must still stop when asked. An
// abandoned load has nothing to clean up and runs to its end in the
// background, bounded by the config limits (yamlconf.MaxSize,
// yamlconf.MaxAliasNodes), while the command returns. The soft memory
// limit is lifted meanwhile (liftMemoryLimit).
func untilDone[A, B any](ctx context.Context, what string, load func() (A, B, error)) (A, B, error) {
	type result struct {
		a   A
		b   B
		err error
	}
	defer liftMemoryLimit()()
	done := make(chan result, 1)
	go func() {
		a, b, err := load()
		done <- result{a, b, err}
	}()
	select {
	case r := <-done:
		return r.a, r.b, r.err
	case <-ctx.Done():
		var a A
		var b B
		return a, b, fmt.Errorf("%s: interrupted: %w", what, context.Cause(ctx))
	}
}
