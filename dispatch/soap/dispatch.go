package soap

import (
	"context"
	"errors"
	"net/http"
	"sort"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/rowhook/rowhook/dispatch"
	"github.com/rowhook/rowhook/dispatch/send"
	"github.com/rowhook/rowhook/rules"
)

// Registry builds the SOAP webhooks of a dispatcher (content_type: soap)
// and keeps their WSDLs fresh. Wire it as
//
//	reg := soap.NewRegistry(soap.Deps{Client: c, Logger: log, BaseDir: dir})
//	deps.Encoders = map[string]dispatch.EncoderFactory{dispatch.ContentSOAP: reg.Factory(ctx)}
//	g.Go(func() error { return reg.Run(ctx) })
type Registry struct {
	deps  Deps
	mu    sync.Mutex
	hooks map[string]*Webhook
}

// NewRegistry returns an empty Registry; deps.Path is set per webhook.
func NewRegistry(deps Deps) *Registry {
	return &Registry{deps: deps, hooks: map[string]*Webhook{}}
}

// Factory returns the dispatcher's EncoderFactory for content_type soap.
// Each webhook's WSDL is loaded (under ctx) when the dispatcher is built,
// so an unreachable WSDL or a mapping that does not fit it fails start-up
// with an error naming webhooks.<name>.soap.
func (r *Registry) Factory(ctx context.Context) dispatch.EncoderFactory {
	return func(name string, cfg dispatch.WebhookConfig) (send.Codec, error) {
		path := "webhooks." + name + ".soap"
		c, err := DecodeConfig(&cfg.SOAP, path)
		if err != nil {
			return nil, err
		}
		deps := r.deps
		deps.Path = path
		if deps.Logger != nil {
			deps.Logger = deps.Logger.With("webhook", name)
		}
		w, err := New(ctx, c, deps)
		if err != nil {
			return nil, err
		}
		r.mu.Lock()
		r.hooks[name] = w
		r.mu.Unlock()
		return &Encoder{w: w}, nil
	}
}

// Webhook returns the SOAP webhook built for name, or nil.
func (r *Registry) Webhook(name string) *Webhook {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.hooks[name]
}

// Run refreshes every webhook's WSDL until ctx is cancelled; a failed
// refresh affects only its own webhook (it keeps its last good copy).
func (r *Registry) Run(ctx context.Context) error {
	r.mu.Lock()
	names := make([]string, 0, len(r.hooks))
	for n := range r.hooks {
		names = append(names, n)
	}
	hooks := r.hooks
	r.mu.Unlock()
	sort.Strings(names)
	g, ctx := errgroup.WithContext(ctx)
	for _, n := range names {
		w := hooks[n]
		g.Go(func() error { return w.Run(ctx) })
	}
	return g.Wait()
}

// Encoder is the dispatcher's view of a SOAP webhook, a send.Codec: Encode
// builds the stored request; Authorize, CheckResponse and Secrets act on
// every attempt. Endpoint and ResponseTree serve rowhook's wiring and
// writeback.
type Encoder struct{ w *Webhook }

var _ send.Codec = (*Encoder)(nil)

// Encode builds the envelope of ev (without WS-Security: see Authorize).
func (e *Encoder) Encode(ev *rules.Event) (send.Payload, error) {
	req, err := e.w.Encode(ev)
	if err != nil {
		return send.Payload{}, err
	}
	return send.Payload{ContentType: req.ContentType, Body: req.Body, Headers: req.Headers}, nil
}

// Webhook returns the underlying SOAP webhook.
func (e *Encoder) Webhook() *Webhook { return e.w }

// Endpoint is the URL to POST to when the webhook has no url: the soap
// endpoint setting or the WSDL's soap:address.
func (e *Encoder) Endpoint() string { return e.w.Endpoint() }

// Authorize adds HTTP Basic and the WS-Security header to one attempt.
func (e *Encoder) Authorize(_ context.Context, req *http.Request) error { return e.w.Authorize(req) }

// CheckResponse returns a *Fault or *HTTPError for a failed attempt (use
// errors.As and Permanent), nil for a SOAP success.
func (e *Encoder) CheckResponse(status int, header http.Header, body []byte) error {
	_, err := e.w.CheckResponse(status, header, body)
	if errors.Is(err, ErrNotSOAP) && status >= 200 && status < 300 {
		return nil // delivered; the body is not SOAP, which writeback reports
	}
	return err
}

// ResponseTree parses a successful response into the tree writeback
// addresses as response.soap.
func (e *Encoder) ResponseTree(status int, header http.Header, body []byte) (map[string]any, error) {
	return e.w.CheckResponse(status, header, body)
}

// Secrets lists the passwords to redact.
func (e *Encoder) Secrets() []string { return e.w.Secrets() }

// ValidateConfig checks the soap block of every content_type soap webhook
// of cfg without loading WSDLs (for rowhook check --offline); errors are
// *yamlconf.PathError values under webhooks.<name>.soap.
func ValidateConfig(cfg dispatch.Config) error {
	var errs []error
	for _, name := range sortedKeys(cfg.Webhooks) {
		w := cfg.Webhooks[name]
		if w.ContentType != dispatch.ContentSOAP {
			continue
		}
		path := "webhooks." + name + ".soap"
		c, err := DecodeConfig(&w.SOAP, path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		errs = append(errs, c.Validate(path))
	}
	return errors.Join(errs...)
}

// CheckConfig is ValidateConfig plus loading every WSDL and checking each
// mapping against it (rowhook check).
func CheckConfig(ctx context.Context, cfg dispatch.Config, deps Deps) error {
	if err := ValidateConfig(cfg); err != nil {
		return err
	}
	var errs []error
	for _, name := range sortedKeys(cfg.Webhooks) {
		w := cfg.Webhooks[name]
		if w.ContentType != dispatch.ContentSOAP {
			continue
		}
		d := deps
		d.Path = "webhooks." + name + ".soap"
		c, _ := DecodeConfig(&w.SOAP, d.Path)
		if _, err := New(ctx, c, d); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
