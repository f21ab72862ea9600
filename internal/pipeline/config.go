package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/dispatch"
	"github.com/rowhook/rowhook/dispatch/soap"
	"github.com/rowhook/rowhook/internal/leader"
	"github.com/rowhook/rowhook/internal/mysqldsn"
	"github.com/rowhook/rowhook/internal/studio"
	"github.com/rowhook/rowhook/internal/yamlconf"
	"github.com/rowhook/rowhook/rules"
	"github.com/rowhook/rowhook/writeback"
)

// Config is rowhook's whole configuration file. Each package owns its part
// and validates it; this file only composes them.
type Config struct {
	Source    cdc.Config       `yaml:"source"`
	Rules     rules.Config     `yaml:",inline"`
	Dispatch  dispatch.Config  `yaml:",inline"`
	Writeback writeback.Config `yaml:"writeback"`
	// RuleWriteback is each rule's writeback: block (rules[i].writeback,
	// nil when the rule writes nothing back), decoded here: the rules
	// package keeps it as YAML and knows nothing of writeback.
	RuleWriteback []*writeback.Mapping `yaml:"-"`
	HTTP          HTTPConfig           `yaml:"http"`
	HA            HAConfig             `yaml:"ha"`
	Studio        studio.Config        `yaml:"studio"`
}

// HTTPConfig is the `http:` section: rowhook's listener.
type HTTPConfig struct {
	// Listen is the address of /healthz, /readyz, /metrics, the admin API
	// and the perform list. On a non-loopback address every route but the
	// probes, /metrics and the admin page's static files needs admin.token.
	Listen string `yaml:"listen"`
	// ReadyMaxLag makes /readyz fail while the binlog lag is above it; 0
	// disables the lag check.
	ReadyMaxLag time.Duration `yaml:"ready_max_lag"`
}

// Validate checks the listener settings.
func (h HTTPConfig) Validate() error {
	if _, _, err := net.SplitHostPort(h.Listen); err != nil {
		return yamlconf.Errf("http.listen", "must be host:port, for example 127.0.0.1:9788: %v", err)
	}
	if h.ReadyMaxLag < 0 {
		return yamlconf.Errf("http.ready_max_lag", "must not be negative")
	}
	return nil
}

// HAConfig is the `ha:` section: several rowhook processes on one config,
// one active, the others standby, elected with a named lock (GET_LOCK) on
// one MySQL/MariaDB server. See docs/ha.md.
type HAConfig struct {
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
func (h HAConfig) Validate() error {
	if !h.Enabled {
		return nil
	}
	var errs []error
	if h.DSN != "" {
		if _, err := mysqldsn.Parse(h.DSN); err != nil {
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

// HADSN is the lock server's DSN: ha.dsn, else writeback.dsn, else a
// located error.
func HADSN(cfg *Config) (string, error) {
	switch {
	case cfg.HA.DSN != "":
		return cfg.HA.DSN, nil
	case cfg.Writeback.DSN != "":
		return cfg.Writeback.DSN, nil
	}
	return "", yamlconf.Errf("ha.dsn", "required with ha.enabled when there is no writeback.dsn: name the CRM's primary (or one server every rowhook process reaches; locks are per server, so not a per-host replica)")
}

// haRefs is the cross-section check of the ha: section, for Load.
func haRefs(cfg Config) []error {
	if !cfg.HA.Enabled {
		return nil
	}
	if _, err := HADSN(&cfg); err != nil {
		return []error{err}
	}
	return nil
}

// HALockName is ha.name, or one derived from the absolute state path.
func HALockName(h HAConfig, StatePath string) string {
	if h.Name != "" {
		return h.Name
	}
	abs, err := filepath.Abs(StatePath)
	if err != nil {
		abs = StatePath
	}
	sum := sha256.Sum256([]byte(abs))
	base := filepath.Base(abs)
	if len(base) > 32 {
		base = base[:32]
	}
	return "rowhook:" + base + ":" + hex.EncodeToString(sum[:8])
}

// DefaultConfig is the configuration before the file is read.
func DefaultConfig() Config {
	return Config{
		Source:    cdc.DefaultConfig(),
		Writeback: writeback.DefaultConfig(),
		HTTP:      HTTPConfig{Listen: "127.0.0.1:9788", ReadyMaxLag: 5 * time.Minute},
		HA:        HAConfig{Interval: time.Second, Takeover: 10 * time.Second},
		Studio:    studio.DefaultConfig(),
	}
}

// decodeFile reads the file into cfg, the rules' writeback blocks into
// cfg.RuleWriteback, with the same checks and error places as the rest.
func decodeFile(path string, cfg *Config) (*yamlconf.Doc, error) {
	return decodePartial(path, cfg, nil)
}

// decodePartial is decodeFile for a command that does not use the values
// for which unused is true: their ${...} may be unset (yamlconf.LoadPartial).
func decodePartial(path string, cfg *Config, unused func(string) bool) (*yamlconf.Doc, error) {
	doc, err := yamlconf.LoadPartial(path, cfg, unused)
	if doc == nil {
		return doc, err
	}
	errs := []error{err}
	cfg.RuleWriteback = make([]*writeback.Mapping, len(cfg.Rules.Rules))
	for i := range cfg.Rules.Rules {
		errs = append(errs, doc.Decode(&cfg.Rules.Rules[i].Writeback, fmt.Sprintf("rules[%d].writeback", i), &cfg.RuleWriteback[i]))
	}
	return doc, errors.Join(errs...)
}

// LoadSource reads the file and validates only the `source:` section, for
// commands that only read the binlog (rowhook tail).
func LoadSource(ctx context.Context, path string) (*Config, *yamlconf.Doc, error) {
	return UntilDone(ctx, "config", func() (*Config, *yamlconf.Doc, error) {
		cfg := DefaultConfig()
		doc, err := decodeFile(path, &cfg)
		if err != nil {
			return nil, doc, err
		}
		if err := doc.Locate(errors.Join(cfg.Source.Validate())); err != nil {
			return nil, doc, err
		}
		return &cfg, doc, nil
	})
}

// UntilDone runs load, which reads and checks what (a config or rule test
// file), and returns its result, or an error as soon as ctx is done
// (SIGINT/SIGTERM), whichever comes first. Reading and checking do not
// watch ctx themselves, and the file may be a pipe that never ends
// (--config <(generator)); a command must still stop when asked. An
// abandoned load has nothing to clean up and runs to its end in the
// background, bounded by the config limits (yamlconf.MaxSize,
// yamlconf.MaxAliasNodes), while the command returns. The soft memory
// limit is lifted meanwhile (liftMemoryLimit).
func UntilDone[A, B any](ctx context.Context, what string, load func() (A, B, error)) (A, B, error) {
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

// Load reads the config and validates every section (each field
// of config with a Validate method), reporting all errors at once.
func Load(ctx context.Context, path string) (*Config, *yamlconf.Doc, error) {
	return UntilDone(ctx, "config", func() (*Config, *yamlconf.Doc, error) { return load(path) })
}

func load(path string) (*Config, *yamlconf.Doc, error) {
	cfg := DefaultConfig()
	doc, err := decodeFile(path, &cfg)
	if err != nil {
		return nil, doc, err
	}
	errs := validateSections(cfg)
	errs = append(errs, webhookRefs(cfg)...)
	errs = append(errs, haRefs(cfg)...)
	// The parts other packages own: each rule's writeback block (which
	// also records its path for later errors) and the SOAP webhooks.
	for i, m := range cfg.RuleWriteback {
		if m != nil {
			if err := m.Validate(fmt.Sprintf("rules[%d].writeback", i)); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := soap.ValidateConfig(cfg.Dispatch); err != nil {
		errs = append(errs, err)
	}
	if err := doc.Locate(errors.Join(errs...)); err != nil {
		return nil, doc, err
	}
	return &cfg, doc, nil
}

// LoadRules reads the config and validates only what rules need
// (rowhook test and replay run without a source or webhooks). Secrets
// outside the rules need not be set (notRules).
func LoadRules(ctx context.Context, path string) (*Config, *yamlconf.Doc, error) {
	return UntilDone(ctx, "config", func() (*Config, *yamlconf.Doc, error) {
		cfg := DefaultConfig()
		doc, err := decodePartial(path, &cfg, notRules)
		if err != nil {
			return nil, doc, err
		}
		if err := doc.Locate(cfg.Rules.Validate()); err != nil {
			return nil, doc, err
		}
		return &cfg, doc, nil
	})
}

func validateSections(cfg Config) []error {
	var errs []error
	v := reflect.ValueOf(cfg)
	for i := 0; i < v.NumField(); i++ {
		if !v.Type().Field(i).IsExported() {
			continue
		}
		if val, ok := v.Field(i).Interface().(interface{ Validate() error }); ok {
			if err := val.Validate(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errs
}

// webhookRefs checks that every rule's webhooks are configured.
func webhookRefs(cfg Config) []error {
	var errs []error
	names := make([]string, 0, len(cfg.Dispatch.Webhooks))
	for n := range cfg.Dispatch.Webhooks {
		names = append(names, n)
	}
	for i, r := range cfg.Rules.Rules {
		for j, w := range r.Webhooks {
			if _, ok := cfg.Dispatch.Webhooks[w]; ok || strings.TrimSpace(w) == "" {
				continue
			}
			hint := "; configured webhooks: " + strings.Join(names, ", ")
			if len(names) == 0 {
				hint = "; there is no webhooks: section"
			}
			errs = append(errs, yamlconf.Errf(fmt.Sprintf("rules[%d].webhooks[%d]", i, j), "unknown webhook %q%s", w, hint))
		}
	}
	return errs
}

// WritebackMappings are the rules' writeback blocks by rule name.
func WritebackMappings(cfg *Config) map[string]*writeback.Mapping {
	m := map[string]*writeback.Mapping{}
	for i, r := range cfg.Rules.Rules {
		if i < len(cfg.RuleWriteback) && cfg.RuleWriteback[i] != nil {
			m[r.Name] = cfg.RuleWriteback[i]
		}
	}
	return m
}

// DefaultMemoryLimit is the Go runtime's soft memory limit unless GOMEMLIMIT
// is set: with it, rowhook's resident size stays under 100 MB with a
// million pending deliveries (docs/benchmarks.md).
const DefaultMemoryLimit = 40 << 20

// liftMemoryLimit removes rowhook's default soft memory limit until
// restore is called, unless GOMEMLIMIT set it. The limit keeps a running
// pipeline's resident size down; reading a large config is a one-off
// whose transient heap (yaml.v3 keeps every node) can exceed it many
// times, and under the limit the GC would run back to back, making the
// load's time grow with the square of the file.
// Loads that overlap share one lift: the last to finish restores.
func liftMemoryLimit() (restore func()) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return func() {}
	}
	memLimit.Lock()
	defer memLimit.Unlock()
	if memLimit.lifts == 0 {
		memLimit.saved = debug.SetMemoryLimit(math.MaxInt64)
	}
	memLimit.lifts++
	return sync.OnceFunc(func() {
		memLimit.Lock()
		defer memLimit.Unlock()
		if memLimit.lifts--; memLimit.lifts == 0 {
			debug.SetMemoryLimit(memLimit.saved)
		}
	})
}

var memLimit struct {
	sync.Mutex
	lifts int   // liftMemoryLimit calls not yet restored
	saved int64 // the limit before the first of them
}
