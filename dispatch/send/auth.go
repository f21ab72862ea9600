package send

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/url"
	"os"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// authenticator adds credentials to a request.
type authenticator interface {
	apply(ctx context.Context, req *http.Request) error
}

type noAuth struct{}

func (noAuth) apply(context.Context, *http.Request) error { return nil }

type basicAuth struct{ user, pass string }

func (a basicAuth) apply(_ context.Context, r *http.Request) error {
	r.SetBasicAuth(a.user, a.pass)
	return nil
}

type bearerAuth struct{ token string }

func (a bearerAuth) apply(_ context.Context, r *http.Request) error {
	r.Header.Set("Authorization", "Bearer "+a.token)
	return nil
}

type apiKeyAuth struct{ name, value, in string }

func (a apiKeyAuth) apply(_ context.Context, r *http.Request) error {
	if a.in == "query" {
		q := r.URL.Query()
		q.Set(a.name, a.value)
		r.URL.RawQuery = q.Encode()
		return nil
	}
	r.Header.Set(a.name, a.value)
	return nil
}

// oauthAuth fetches client-credentials tokens and caches them until they
// expire (oauth2.ReuseTokenSource inside clientcredentials).
type oauthAuth struct{ src oauth2.TokenSource }

func (a oauthAuth) apply(_ context.Context, r *http.Request) error {
	tok, err := a.src.Token()
	if err != nil {
		return fmt.Errorf("oauth2 token: %w", err)
	}
	tok.SetAuthHeader(r)
	return nil
}

// newAuthenticator builds the webhook's authenticator; client is used for
// the token endpoint.
func newAuthenticator(a AuthConfig, client *http.Client) (authenticator, error) {
	switch a.Type {
	case "", "none":
		return noAuth{}, nil
	case "basic":
		return basicAuth{a.Username, a.Password}, nil
	case "bearer":
		return bearerAuth{a.Token}, nil
	case "api_key":
		return apiKeyAuth{a.Name, a.Value, a.In}, nil
	case "oauth2_client_credentials":
		params := url.Values{}
		for k, v := range a.Params {
			params.Set(k, v)
		}
		cc := &clientcredentials.Config{
			ClientID: a.ClientID, ClientSecret: a.ClientSecret, TokenURL: a.TokenURL,
			Scopes: a.Scopes, EndpointParams: params,
		}
		// The token source outlives any one attempt: it is bound to a
		// background context carrying our HTTP client.
		ctx := context.WithValue(context.Background(), oauth2.HTTPClient, client)
		return oauthAuth{oauth2.ReuseTokenSource(nil, cc.TokenSource(ctx))}, nil
	}
	return nil, fmt.Errorf("unknown auth type %q", a.Type)
}

// secrets lists the credential values of a webhook, scrubbed from every
// error message and log line.
func (a AuthConfig) secrets() []string {
	var out []string
	for _, s := range []string{a.Password, a.Token, a.Value, a.ClientSecret} {
		if len(s) >= 4 {
			out = append(out, s)
		}
	}
	return out
}

// tlsConfig builds the TLS client configuration, nil when defaults do.
func (t TLSConfig) tlsConfig() (*tls.Config, error) {
	if !t.InsecureSkipVerify && t.CAFile == "" && t.ClientCertFile == "" && t.ServerName == "" {
		return nil, nil
	}
	c := &tls.Config{InsecureSkipVerify: t.InsecureSkipVerify, ServerName: t.ServerName, MinVersion: tls.VersionTLS12} // #nosec G402 -- operator's explicit choice
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s: no PEM certificate", t.CAFile)
		}
		c.RootCAs = pool
	}
	if t.ClientCertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.ClientCertFile, t.ClientKeyFile)
		if err != nil {
			return nil, fmt.Errorf("load client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}
