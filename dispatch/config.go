// Package dispatch delivers events durably: an outbox in rowhook's state
// store, HTTP delivery with retries, a delivery log, and re-delivery.
package dispatch

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
	"golang.org/x/time/rate"

	"github.com/rowhook/rowhook/dispatch/send"
	"github.com/rowhook/rowhook/internal/yamlconf"
)

// Config is dispatch's part of rowhook's configuration: the `webhooks:`,
// `state:`, `admin:` and `delivery:` keys at the root of the file.
type Config struct {
	// Webhooks are the delivery targets, by name.
	Webhooks map[string]WebhookConfig `yaml:"webhooks"`
	// State locates rowhook's state store and sets the delivery log's limits.
	State StateConfig `yaml:"state"`
	// Admin configures the HTTP admin API and outside subscriptions.
	Admin AdminConfig `yaml:"admin"`
	// Delivery holds the defaults every webhook inherits.
	Delivery DeliveryConfig `yaml:"delivery"`
	// Log says how successful deliveries are logged.
	Log LogConfig `yaml:"log"`
}

// StateConfig is the `state:` block.
type StateConfig struct {
	// Driver picks the state store: "sqlite" (default, one local file) or
	// "mysql" (a MySQL/MariaDB schema that an active and a standby rowhook
	// share; see docs/dispatch.md, "State store").
	Driver string `yaml:"driver"`
	// DSN is the state schema for driver mysql, as
	// user:password@tcp(host:3306)/schema or
	// mysql://user:password@host:3306/schema; ${ENV} keeps the password out
	// of the file. Required for mysql, unused for sqlite.
	DSN string `yaml:"dsn"`
	// Path is the SQLite state file; relative paths are taken from the
	// configuration file's directory. Default "rowhook-state.db". Unused
	// for driver mysql.
	Path string `yaml:"path"`
	// Retention is how long finished deliveries and their attempts stay in
	// the delivery log. Default 168h (7 days).
	Retention time.Duration `yaml:"retention"`
	// BodyLimit is how many bytes of each request and response body the
	// delivery log keeps. Default 65536.
	BodyLimit int `yaml:"body_limit"`
	// CleanupInterval is how often the retention job runs. Default 1h.
	CleanupInterval time.Duration `yaml:"cleanup_interval"`
}

// AdminConfig is the `admin:` block.
type AdminConfig struct {
	// Token is the bearer token the admin API requires unless it listens on
	// loopback only.
	Token string `yaml:"token"`
	// AllowRedeliver permits manual re-runs of deliveries (admin API and
	// `rowhook redeliver`).
	AllowRedeliver bool `yaml:"allow_redeliver"`
	// Subscriptions configures REST-hook subscriptions.
	Subscriptions SubscriptionsConfig `yaml:"subscriptions"`
}

// SubscriptionsConfig is the `admin.subscriptions:` block.
type SubscriptionsConfig struct {
	// Enabled turns on POST/DELETE/GET /subscriptions.
	Enabled bool `yaml:"enabled"`
	// AllowedHosts lets subscription targets reach addresses the SSRF guard
	// refuses otherwise: host names, IP addresses or CIDR ranges.
	AllowedHosts []string `yaml:"allowed_hosts"`
	// Signing signs deliveries to subscribers.
	Signing SigningConfig `yaml:"signing"`
}

// DeliveryConfig is the `delivery:` block: defaults for every webhook.
type DeliveryConfig struct {
	// Timeout bounds one attempt. Default 15s.
	Timeout time.Duration `yaml:"timeout"`
	// Retry is the default retry policy.
	Retry RetryConfig `yaml:"retry"`
	// Concurrency is the number of attempts in flight per webhook. Default 4.
	Concurrency int `yaml:"concurrency"`
	// MaxResponseBytes limits how much of a response body is read. Default 1 MiB.
	MaxResponseBytes int `yaml:"max_response_bytes"`
	// Circuit is the endpoint circuit: how many failures in a row stop the
	// deliveries of a webhook until a probe succeeds.
	Circuit CircuitConfig `yaml:"circuit"`
	// PauseAfter reports an endpoint whose circuit has stayed open (failing
	// continuously) for this long as paused: rowhook_webhook_paused 1, state
	// paused in GET /webhooks. Default 1h; negative never reports it.
	PauseAfter time.Duration `yaml:"pause_after"`
	// PauseFor is the longest wait between two probes of an open circuit
	// (the probe interval doubles from the webhook's retry.initial_interval
	// up to retry.max_interval, and at most this). Default 5m.
	PauseFor time.Duration `yaml:"pause_for"`
	// Writeback is the retry policy for writing response values back.
	Writeback RetryConfig `yaml:"writeback"`
}

// CircuitConfig is the `circuit:` block (delivery.circuit, or a webhook's
// own).
type CircuitConfig struct {
	// FailureThreshold is how many retryable failures in a row (network
	// errors, timeouts, 408, 429, 5xx) open the circuit: the webhook's other
	// deliveries then wait, keeping their attempts, while one probe is sent
	// per interval. Default 5.
	FailureThreshold int `yaml:"failure_threshold"`
}

// RetryConfig is a retry policy: exponential backoff with jitter.
type RetryConfig struct {
	// MaxAttempts counts the first attempt. Default 10 (writeback 5).
	MaxAttempts int `yaml:"max_attempts"`
	// InitialInterval is the delay before the second attempt. Default 2s (writeback 1s).
	InitialInterval time.Duration `yaml:"initial_interval"`
	// MaxInterval caps the delay. Default 1h (writeback 1m).
	MaxInterval time.Duration `yaml:"max_interval"`
}

// WebhookConfig is one delivery target.
type WebhookConfig struct {
	// URL may hold templates: {{ row.col }}, {{ old.col }}, {{ pk.col }},
	// {{ event.name }}, {{ event.rule }}, {{ body.field }}.
	URL string `yaml:"url"`
	// Method is GET, POST, PUT, PATCH or DELETE. Default POST.
	Method string `yaml:"method"`
	// ContentType is json, form, xml or text (soap when that encoder is
	// registered). Default json.
	ContentType string `yaml:"content_type"`
	// Headers are sent with every request.
	Headers map[string]string `yaml:"headers"`
	// SecretHeaders names headers (besides auth and signature headers) whose
	// values the delivery log must redact.
	SecretHeaders []string `yaml:"secret_headers"`
	// Auth is how the request authenticates.
	Auth AuthConfig `yaml:"auth"`
	// TLS tunes the TLS client.
	TLS TLSConfig `yaml:"tls"`
	// Timeout bounds one attempt (default: delivery.timeout).
	Timeout time.Duration `yaml:"timeout"`
	// Mode is immediate or scheduled.
	Mode string `yaml:"mode"`
	// Schedule is "every 5m" or a 5-field cron expression (scheduled mode).
	Schedule string `yaml:"schedule"`
	// Timezone is the IANA zone cron schedules count in. Default UTC.
	Timezone string `yaml:"timezone"`
	// Retry overrides delivery.retry field by field.
	Retry RetryConfig `yaml:"retry"`
	// Signing enables Standard Webhooks signatures.
	Signing SigningConfig `yaml:"signing"`
	// RateLimit is "N/s", "N/m" or "N/h"; empty means unlimited.
	RateLimit string `yaml:"rate_limit"`
	// Ordering is none (default) or per_record.
	Ordering string `yaml:"ordering"`
	// Concurrency overrides delivery.concurrency.
	Concurrency int `yaml:"concurrency"`
	// Circuit overrides delivery.circuit field by field.
	Circuit CircuitConfig `yaml:"circuit"`
	// XMLRoot is the root element of xml bodies. Default "event".
	XMLRoot string `yaml:"xml_root"`
	// SOAP is the content_type soap block, decoded by the SOAP encoder.
	SOAP yaml.Node `yaml:"soap"`
}

// AuthConfig, TLSConfig and SigningConfig are the webhook's `auth:`,
// `tls:` and `signing:` blocks; package send, which applies them, owns them.
type (
	AuthConfig    = send.AuthConfig
	TLSConfig     = send.TLSConfig
	SigningConfig = send.SigningConfig
)

// State store drivers (state.driver).
const (
	StateSQLite = "sqlite"
	StateMySQL  = "mysql"
)

// The defaults applied to zero values.
const (
	DefaultStatePath        = "rowhook-state.db"
	DefaultRetention        = 7 * 24 * time.Hour
	DefaultBodyLimit        = 64 << 10
	DefaultCleanupInterval  = time.Hour
	DefaultTimeout          = 15 * time.Second
	DefaultConcurrency      = 4
	DefaultMaxResponseBytes = 1 << 20
	DefaultPauseAfter       = time.Hour
	DefaultPauseFor         = 5 * time.Minute
	DefaultCircuitFailures  = 5
	DefaultXMLRoot          = "event"
)

// Content types, modes and orderings.
const (
	ContentJSON = send.ContentJSON
	ContentForm = send.ContentForm
	ContentXML  = send.ContentXML
	ContentText = send.ContentText
	ContentSOAP = send.ContentSOAP

	ModeImmediate = "immediate"
	ModeScheduled = "scheduled"

	OrderingNone      = "none"
	OrderingPerRecord = "per_record"
)

// WithDefaults returns c with every zero setting replaced by its default.
func (c Config) WithDefaults() Config {
	s := &c.State
	if s.Driver == "" {
		s.Driver = StateSQLite
	}
	if s.Path == "" {
		s.Path = DefaultStatePath
	}
	if s.Retention == 0 {
		s.Retention = DefaultRetention
	}
	if s.BodyLimit == 0 {
		s.BodyLimit = DefaultBodyLimit
	}
	if s.CleanupInterval == 0 {
		s.CleanupInterval = DefaultCleanupInterval
	}
	c.Log = c.Log.withDefaults()
	d := &c.Delivery
	if d.Timeout == 0 {
		d.Timeout = DefaultTimeout
	}
	d.Retry = d.Retry.merge(RetryConfig{MaxAttempts: 10, InitialInterval: 2 * time.Second, MaxInterval: time.Hour})
	d.Writeback = d.Writeback.merge(RetryConfig{MaxAttempts: 5, InitialInterval: time.Second, MaxInterval: time.Minute})
	if d.Concurrency == 0 {
		d.Concurrency = DefaultConcurrency
	}
	if d.MaxResponseBytes == 0 {
		d.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if d.PauseAfter == 0 {
		d.PauseAfter = DefaultPauseAfter
	}
	if d.PauseFor == 0 {
		d.PauseFor = DefaultPauseFor
	}
	if d.Circuit.FailureThreshold == 0 {
		d.Circuit.FailureThreshold = DefaultCircuitFailures
	}
	hooks := make(map[string]WebhookConfig, len(c.Webhooks))
	for name, w := range c.Webhooks {
		hooks[name] = w.withDefaults(*d)
	}
	c.Webhooks = hooks
	return c
}

func (r RetryConfig) merge(def RetryConfig) RetryConfig {
	if r.MaxAttempts == 0 {
		r.MaxAttempts = def.MaxAttempts
	}
	if r.InitialInterval == 0 {
		r.InitialInterval = def.InitialInterval
	}
	if r.MaxInterval == 0 {
		r.MaxInterval = def.MaxInterval
	}
	return r
}

func (w WebhookConfig) withDefaults(d DeliveryConfig) WebhookConfig {
	if w.Method == "" {
		w.Method = "POST"
	}
	w.Method = strings.ToUpper(w.Method)
	if w.ContentType == "" {
		w.ContentType = ContentJSON
	}
	if w.Auth.Type == "" {
		w.Auth.Type = "none"
	}
	if w.Auth.Type == "api_key" && w.Auth.In == "" {
		w.Auth.In = "header"
	}
	if w.Timeout == 0 {
		w.Timeout = d.Timeout
	}
	if w.Mode == "" {
		w.Mode = ModeImmediate
	}
	if w.Ordering == "" {
		w.Ordering = OrderingNone
	}
	if w.Concurrency == 0 {
		w.Concurrency = d.Concurrency
	}
	if w.XMLRoot == "" {
		w.XMLRoot = DefaultXMLRoot
	}
	w.Retry = w.Retry.merge(d.Retry)
	if w.Circuit.FailureThreshold == 0 {
		w.Circuit.FailureThreshold = d.Circuit.FailureThreshold
	}
	return w
}

// StatePath returns the state file's path, relative paths taken from the
// directory of configFile (the working directory when configFile is empty).
func (c Config) StatePath(configFile string) string {
	p := c.State.Path
	if p == "" {
		p = DefaultStatePath
	}
	if filepath.IsAbs(p) || configFile == "" {
		return p
	}
	return filepath.Join(filepath.Dir(configFile), p)
}

var validMethods = map[string]bool{"GET": true, "POST": true, "PUT": true, "PATCH": true, "DELETE": true}

// Validate checks the configuration; errors are *yamlconf.PathError naming
// the key ("webhooks.erp.url").
func (c Config) Validate() error {
	var errs []error
	add := func(path, format string, args ...any) {
		errs = append(errs, yamlconf.Errf(path, format, args...))
	}
	c = c.WithDefaults()
	errs = append(errs, c.Log.validate()...)
	switch c.State.Driver {
	case StateSQLite:
		if c.State.DSN != "" {
			add("state.dsn", "is for driver mysql; driver sqlite keeps its state in state.path")
		}
	case StateMySQL:
		if c.State.DSN == "" {
			add("state.dsn", "missing: driver mysql needs the state schema (user:password@tcp(host:3306)/rowhook_state)")
		}
	default:
		add("state.driver", "unknown driver %q (sqlite or mysql)", c.State.Driver)
	}
	if c.State.Retention < 0 {
		add("state.retention", "must not be negative")
	}
	if c.State.BodyLimit < 0 {
		add("state.body_limit", "must not be negative")
	}
	if c.State.CleanupInterval < 0 {
		add("state.cleanup_interval", "must not be negative")
	}
	validateRetry := func(path string, r RetryConfig) {
		if r.MaxAttempts < 1 {
			add(path+".max_attempts", "must be at least 1, got %d", r.MaxAttempts)
		}
		if r.InitialInterval < 0 {
			add(path+".initial_interval", "must not be negative")
		}
		if r.MaxInterval < r.InitialInterval {
			add(path+".max_interval", "%s is less than initial_interval %s", r.MaxInterval, r.InitialInterval)
		}
	}
	validateRetry("delivery.retry", c.Delivery.Retry)
	validateRetry("delivery.writeback", c.Delivery.Writeback)
	if c.Delivery.Timeout < 0 {
		add("delivery.timeout", "must not be negative")
	}
	if c.Delivery.Concurrency < 0 {
		add("delivery.concurrency", "must not be negative")
	}
	if c.Delivery.MaxResponseBytes < 0 {
		add("delivery.max_response_bytes", "must not be negative")
	}
	if c.Delivery.PauseFor < 0 {
		add("delivery.pause_for", "must not be negative")
	}
	if n := c.Delivery.Circuit.FailureThreshold; n < 1 {
		add("delivery.circuit.failure_threshold", "must be at least 1, got %d", n)
	}
	for i, h := range c.Admin.Subscriptions.AllowedHosts {
		if strings.TrimSpace(h) == "" {
			add(fmt.Sprintf("admin.subscriptions.allowed_hosts[%d]", i), "empty host")
		}
	}
	if s := c.Admin.Subscriptions.Signing.Secret; s != "" {
		if _, err := send.DecodeSecret(s); err != nil {
			add("admin.subscriptions.signing.secret", "%v", err)
		}
	}
	names := make([]string, 0, len(c.Webhooks))
	for n := range c.Webhooks {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		errs = append(errs, c.Webhooks[name].validate("webhooks."+name)...)
	}
	return errors.Join(errs...)
}

func (w WebhookConfig) validate(p string) []error {
	var errs []error
	add := func(path, format string, args ...any) {
		errs = append(errs, yamlconf.Errf(p+path, format, args...))
	}
	if w.URL == "" {
		add(".url", "missing")
	} else if err := send.CheckURLTemplate(w.URL); err != nil {
		add(".url", "%v", err)
	}
	if !validMethods[w.Method] {
		add(".method", "unknown method %q (GET, POST, PUT, PATCH, DELETE)", w.Method)
	}
	switch w.ContentType {
	case ContentJSON, ContentForm, ContentXML, ContentText, ContentSOAP:
	default:
		add(".content_type", "unknown content type %q (json, form, xml, text, soap)", w.ContentType)
	}
	if w.ContentType == ContentXML && !send.ValidXMLName(w.XMLRoot) {
		add(".xml_root", "%q is not an XML element name", w.XMLRoot)
	}
	for k := range w.Headers {
		if !validHeaderName(k) {
			add(".headers."+k, "%q is not a valid header name", k)
		}
	}
	a := w.Auth
	switch a.Type {
	case "none":
	case "basic":
		if a.Username == "" {
			add(".auth.username", "missing (auth type basic)")
		}
	case "bearer":
		if a.Token == "" {
			add(".auth.token", "missing (auth type bearer); if it comes from ${VAR}, is the variable set?")
		}
	case "api_key":
		if a.Name == "" {
			add(".auth.name", "missing (auth type api_key): the header or query parameter name")
		}
		if a.Value == "" {
			add(".auth.value", "missing (auth type api_key)")
		}
		if a.In != "header" && a.In != "query" {
			add(".auth.in", "must be header or query, got %q", a.In)
		}
	case "oauth2_client_credentials":
		if a.ClientID == "" {
			add(".auth.client_id", "missing (auth type oauth2_client_credentials)")
		}
		if a.TokenURL == "" {
			add(".auth.token_url", "missing (auth type oauth2_client_credentials)")
		} else if u, err := url.Parse(a.TokenURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			add(".auth.token_url", "not an http(s) URL: %q", a.TokenURL)
		}
	default:
		add(".auth.type", "unknown auth type %q (none, basic, bearer, api_key, oauth2_client_credentials)", a.Type)
	}
	if f := w.TLS.CAFile; f != "" {
		if pem, err := os.ReadFile(f); err != nil {
			add(".tls.ca_file", "%v", err)
		} else if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			add(".tls.ca_file", "no PEM certificate in %s", f)
		}
	}
	if (w.TLS.ClientCertFile == "") != (w.TLS.ClientKeyFile == "") {
		add(".tls.client_cert_file", "client_cert_file and client_key_file go together")
	}
	if w.Timeout < 0 {
		add(".timeout", "must not be negative")
	}
	switch w.Mode {
	case ModeImmediate:
		if w.Schedule != "" {
			add(".schedule", "set, but mode is immediate (add mode: scheduled)")
		}
	case ModeScheduled:
		if w.Schedule == "" {
			add(".schedule", "missing (mode scheduled): \"every 5m\" or a cron expression")
		} else if _, err := ParseSchedule(w.Schedule); err != nil {
			add(".schedule", "%v", err)
		}
	default:
		add(".mode", "unknown mode %q (immediate, scheduled)", w.Mode)
	}
	if w.Timezone != "" {
		if _, err := time.LoadLocation(w.Timezone); err != nil {
			add(".timezone", "%v", err)
		}
	}
	if w.Retry.MaxAttempts < 1 {
		add(".retry.max_attempts", "must be at least 1, got %d", w.Retry.MaxAttempts)
	}
	if w.Retry.InitialInterval < 0 {
		add(".retry.initial_interval", "must not be negative")
	}
	if w.Retry.MaxInterval < w.Retry.InitialInterval {
		add(".retry.max_interval", "%s is less than initial_interval %s", w.Retry.MaxInterval, w.Retry.InitialInterval)
	}
	if w.Signing.Secret != "" {
		if _, err := send.DecodeSecret(w.Signing.Secret); err != nil {
			add(".signing.secret", "%v", err)
		}
	}
	if w.RateLimit != "" {
		if _, _, err := parseRate(w.RateLimit); err != nil {
			add(".rate_limit", "%v", err)
		}
	}
	if w.Ordering != OrderingNone && w.Ordering != OrderingPerRecord {
		add(".ordering", "unknown ordering %q (none, per_record)", w.Ordering)
	}
	if w.Concurrency < 0 {
		add(".concurrency", "must not be negative")
	}
	if n := w.Circuit.FailureThreshold; n < 1 {
		add(".circuit.failure_threshold", "must be at least 1, got %d", n)
	}
	return errs
}

// parseRate parses "50/s", "100/m", "10/h" or "5/500ms".
func parseRate(s string) (rate.Limit, int, error) {
	n, per, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return 0, 0, fmt.Errorf("rate %q: want N/s, N/m or N/h", s)
	}
	count, err := strconv.ParseFloat(strings.TrimSpace(n), 64)
	if err != nil || count <= 0 {
		return 0, 0, fmt.Errorf("rate %q: %q is not a positive number", s, n)
	}
	var d time.Duration
	switch per = strings.TrimSpace(per); per {
	case "s":
		d = time.Second
	case "m":
		d = time.Minute
	case "h":
		d = time.Hour
	default:
		d, err = time.ParseDuration(per)
		if err != nil || d <= 0 {
			return 0, 0, fmt.Errorf("rate %q: unknown period %q (s, m, h or a duration)", s, per)
		}
	}
	burst := int(count)
	if burst < 1 {
		burst = 1
	}
	return rate.Limit(count / d.Seconds()), burst, nil
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r >= 0x7f || strings.ContainsRune("()<>@,;:\\\"/[]?={}", r) {
			return false
		}
	}
	return true
}
