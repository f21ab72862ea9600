package soap

import (
	"errors"

	"net/url"
	"reflect"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/rowhook/rowhook/internal/yamlconf"
)

// DefaultWSDLRefresh is how often a WSDL fetched over HTTP is fetched again
// when wsdl_refresh is not set. WSDL files are read once unless
// wsdl_refresh is set.
const DefaultWSDLRefresh = time.Hour

// Config is a SOAP webhook's `soap:` block.
//
//	soap:
//	  wsdl: https://erp.example.com/Orders.asmx?WSDL   # or a file path
//	  operation: CreateOrder
//	  soap_version: "1.2"           # default: the first port's binding
//	  endpoint: https://erp-2.example.com/Orders.asmx  # default: soap:address
//	  wsdl_refresh: 1h
//	  params:
//	    order.number: row.potential_no
//	    order.amount: row.amount
//	    order.lines: body.lines
//	  auth:
//	    basic: {username: rowhook, password: ${ERP_PASSWORD}}
//	    ws_security: {username: rowhook, password: ${ERP_WS_PASSWORD}, password_type: PasswordDigest}
type Config struct {
	// WSDL is an http(s) URL, a file:// URL or a file path (relative paths
	// are taken from the configuration file's directory).
	WSDL string `yaml:"wsdl"`
	// Operation names the operation to call.
	Operation string `yaml:"operation"`
	// SOAPVersion is "1.1" or "1.2"; empty picks the binding of the first
	// port that offers the operation.
	SOAPVersion string `yaml:"soap_version"`
	// Params maps parameter paths ("order.customer.name") to expr
	// expressions over row, old, body and event.
	Params map[string]string `yaml:"params"`
	// Endpoint overrides the WSDL's soap:address.
	Endpoint string `yaml:"endpoint"`
	// WSDLRefresh is how often the WSDL is loaded again (default 1h for
	// URLs, never for files; negative never).
	WSDLRefresh time.Duration `yaml:"wsdl_refresh"`
	// Auth holds the credentials.
	Auth AuthConfig `yaml:"auth"`
}

// AuthConfig is the `soap.auth` block.
type AuthConfig struct {
	// Basic sends HTTP Basic credentials with calls and WSDL fetches.
	Basic *BasicAuth `yaml:"basic"`
	// WSSecurity adds a WS-Security UsernameToken header to calls.
	WSSecurity *WSSecurityConfig `yaml:"ws_security"`
}

// BasicAuth is HTTP Basic authentication.
type BasicAuth struct {
	Username string `yaml:"username"`
	Password string `yaml:"password"`
}

// WSSecurityConfig is a WS-Security UsernameToken.
type WSSecurityConfig struct {
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// PasswordType is PasswordDigest (default) or PasswordText.
	PasswordType string `yaml:"password_type"`
	// TimestampTTL, when set, adds a wsu:Timestamp that expires after it.
	TimestampTTL time.Duration `yaml:"timestamp_ttl"`
}

// Secrets lists the passwords, for redaction from logs and errors.
func (c Config) Secrets() []string {
	var out []string
	if b := c.Auth.Basic; b != nil && b.Password != "" {
		out = append(out, b.Password)
	}
	if w := c.Auth.WSSecurity; w != nil && w.Password != "" {
		out = append(out, w.Password)
	}
	return out
}

// DecodeConfig decodes a `soap:` block (the dispatcher keeps it as a
// yaml.Node); unknown keys are errors naming the key under path.
func DecodeConfig(node *yaml.Node, path string) (Config, error) {
	var c Config
	if node == nil || node.Kind == 0 {
		return c, yamlconf.Errf(path, "missing: content_type soap needs a soap: block with wsdl and operation")
	}
	if errs := yamlconf.UnknownKeys(node, reflect.TypeOf(c), path); len(errs) > 0 {
		return c, errors.Join(errs...)
	}
	if err := node.Decode(&c); err != nil {
		return c, yamlconf.Errf(path, "%v", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	return c, nil
}

// Validate checks the block on its own; path is its place in the
// configuration ("webhooks.erp.soap"). CheckService checks it against the
// loaded WSDL.
func (c Config) Validate(path string) error {
	var errs []error
	add := func(p, format string, args ...any) {
		errs = append(errs, yamlconf.Errf(path+p, format, args...))
	}
	if strings.TrimSpace(c.WSDL) == "" {
		add(".wsdl", "missing: the WSDL's URL or file path")
	} else if _, err := normalizeLocation(c.WSDL); err != nil {
		add(".wsdl", "%v", err)
	}
	if strings.TrimSpace(c.Operation) == "" {
		add(".operation", "missing: the operation to call (list them with: rowhook soap operations --wsdl %s)", c.WSDL)
	}
	switch c.SOAPVersion {
	case "", V11, V12:
	default:
		add(".soap_version", "must be 1.1 or 1.2, got %q", c.SOAPVersion)
	}
	if c.Endpoint != "" {
		if u, err := url.Parse(c.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add(".endpoint", "not an http(s) URL: %q", showLocation(c.Endpoint))
		}
	}
	for _, k := range sortedKeys(c.Params) {
		p := path + ".params." + k
		if k == "" || strings.HasPrefix(k, ".") || strings.HasSuffix(k, ".") || strings.Contains(k, "..") {
			errs = append(errs, yamlconf.Errf(p, "bad parameter path %q (names joined by dots: order.customer.name)", k))
			continue
		}
		if strings.TrimSpace(c.Params[k]) == "" {
			errs = append(errs, yamlconf.Errf(p, "empty expression (use '\"\"' for an empty string, nil for no value)"))
			continue
		}
		if _, err := compileParam(p, c.Params[k]); err != nil {
			errs = append(errs, err)
		}
	}
	if b := c.Auth.Basic; b != nil && b.Username == "" {
		add(".auth.basic.username", "missing")
	}
	if w := c.Auth.WSSecurity; w != nil {
		if w.Username == "" {
			add(".auth.ws_security.username", "missing")
		}
		if w.Password == "" {
			add(".auth.ws_security.password", "missing; if it comes from ${VAR}, is the variable set?")
		}
		switch w.PasswordType {
		case "", PasswordDigest, PasswordText:
		default:
			add(".auth.ws_security.password_type", "must be PasswordDigest or PasswordText, got %q", w.PasswordType)
		}
		if w.TimestampTTL < 0 {
			add(".auth.ws_security.timestamp_ttl", "must not be negative")
		}
	}
	return errors.Join(errs...)
}

// CheckService checks the block against a loaded WSDL: the operation
// exists (in the SOAP version asked for), every mapped parameter exists,
// and every required parameter is mapped. Errors name the key under path
// and list what exists.
func (c Config) CheckService(svc *Service, path string) error {
	op, err := svc.Operation(c.Operation, c.SOAPVersion)
	if err != nil {
		p := path + ".operation"
		if errors.Is(err, ErrUnknownOperation) && c.SOAPVersion != "" && strings.Contains(err.Error(), "offers it in") {
			p = path + ".soap_version"
		}
		return yamlconf.Errf(p, "%v", err)
	}
	params, err := op.Params()
	if err != nil {
		return yamlconf.Errf(path+".operation", "%v", err)
	}
	var errs []error
	mapped := map[string]bool{}
	for _, k := range sortedKeys(c.Params) {
		if _, err := ParamAt(params, k); err != nil {
			errs = append(errs, yamlconf.Errf(path+".params."+k, "operation %s: %v", op.Name, err))
			continue
		}
		mapped[k] = true
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if missing := requiredUnmapped(params, mapped, ""); len(missing) > 0 {
		return yamlconf.Errf(path+".params", "operation %s: required parameters not mapped: %s (map them, e.g. %s: row.some_column)", op.Name, strings.Join(missing, ", "), missing[0])
	}
	if c.Endpoint == "" && op.Endpoint == "" {
		return yamlconf.Errf(path+".endpoint", "operation %s: the WSDL gives no soap:address for binding %s: set endpoint", op.Name, op.Binding)
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// security builds the WS-Security header writer, nil when not configured.
func (c Config) security() *Security {
	w := c.Auth.WSSecurity
	if w == nil {
		return nil
	}
	t := w.PasswordType
	if t == "" {
		t = PasswordDigest
	}
	return &Security{Username: w.Username, Password: w.Password, Type: t, TTL: w.TimestampTTL}
}

func (c Config) refreshEvery() time.Duration {
	switch {
	case c.WSDLRefresh < 0:
		return 0
	case c.WSDLRefresh > 0:
		return c.WSDLRefresh
	case isRemote(c.WSDL):
		return DefaultWSDLRefresh
	}
	return 0
}
