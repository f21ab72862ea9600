// Package dispatch delivers events durably: an outbox in rowhook's state
// store, HTTP delivery with retries, a delivery log, and re-delivery.
package dispatch

// Config is the `webhooks:` part of rowhook's configuration.
type Config struct {
	// Webhooks are the delivery targets, by name.
	Webhooks map[string]WebhookConfig `yaml:"webhooks"`
}

// WebhookConfig is one delivery target.
type WebhookConfig struct {
	URL         string            `yaml:"url"`
	Method      string            `yaml:"method"`
	ContentType string            `yaml:"content_type"`
	Headers     map[string]string `yaml:"headers"`
}
