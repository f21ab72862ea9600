package send

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Content types (a webhook's content_type) with a built-in encoder, and
// soap, whose Codec the SOAP package supplies.
const (
	ContentJSON = "json"
	ContentForm = "form"
	ContentXML  = "xml"
	ContentText = "text"
	ContentSOAP = "soap"
)

// Config is what an Endpoint needs of one webhook (dispatch fills it from
// its WebhookConfig, with the defaults applied).
type Config struct {
	// URL may hold templates: {{ row.col }}, {{ old.col }}, {{ pk.col }},
	// {{ event.name }}, {{ event.rule }}, {{ body.field }}.
	URL string
	// PerDeliveryURL: URL is ignored and each Build names the URL
	// (subscriptions: one endpoint, one URL per subscriber).
	PerDeliveryURL bool
	// Method is the HTTP method.
	Method string
	// Headers are sent with every request.
	Headers map[string]string
	// SecretHeaders names more headers whose values are redacted.
	SecretHeaders []string
	Auth          AuthConfig
	TLS           TLSConfig
	Signing       SigningConfig
	// Timeout bounds one attempt (and one OAuth token request).
	Timeout time.Duration
	// MaxResponseBytes bounds how much of a response is read.
	MaxResponseBytes int
	// BodyLimit bounds the bodies kept in the delivery log (negative: no
	// limit).
	BodyLimit int
	// UserAgent is sent with every request.
	UserAgent string
	// Transport is the HTTP transport (cloned when TLS needs its own
	// settings). Default: http.DefaultTransport's settings.
	Transport *http.Transport
	// Now is the clock of signatures and durations (default time.Now).
	Now func() time.Time
}

// AuthConfig is a webhook's `auth:` block.
type AuthConfig struct {
	// Type is none, basic, bearer, api_key or oauth2_client_credentials.
	Type     string `yaml:"type"`
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	Token    string `yaml:"token"`
	// Name is the api_key header or query parameter name; Value its value;
	// In is header (default) or query.
	Name  string `yaml:"name"`
	Value string `yaml:"value"`
	In    string `yaml:"in"`
	// OAuth2 client credentials.
	ClientID     string            `yaml:"client_id"`
	ClientSecret string            `yaml:"client_secret"`
	TokenURL     string            `yaml:"token_url"`
	Scopes       []string          `yaml:"scopes"`
	Params       map[string]string `yaml:"params"`
}

// TLSConfig is a webhook's `tls:` block.
type TLSConfig struct {
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
	CAFile             string `yaml:"ca_file"`
	ClientCertFile     string `yaml:"client_cert_file"`
	ClientKeyFile      string `yaml:"client_key_file"`
	ServerName         string `yaml:"server_name"`
}

// SigningConfig is a Standard Webhooks signing secret ("whsec_" + base64).
type SigningConfig struct {
	Secret string `yaml:"secret"`
}

// DecodeSecret decodes a Standard Webhooks secret: "whsec_" and base64.
func DecodeSecret(s string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, "whsec_"))
	if err != nil {
		return nil, errors.New("not a Standard Webhooks secret (whsec_ followed by base64)")
	}
	if len(key) < 24 {
		return nil, fmt.Errorf("secret is %d bytes; use at least 24 random bytes", len(key))
	}
	return key, nil
}
