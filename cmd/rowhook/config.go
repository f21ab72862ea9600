package main

import (
	"errors"
	"net"
	"time"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/dispatch"
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
}

// httpConfig is the `http:` section: rowhook's listener.
type httpConfig struct {
	// Listen is the address of /healthz, /readyz, /metrics, the admin API
	// and the perform list. On a non-loopback address the admin API needs
	// admin.token.
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

func defaultConfig() config {
	return config{
		Source:    cdc.DefaultConfig(),
		Writeback: writeback.DefaultConfig(),
		HTTP:      httpConfig{Listen: "127.0.0.1:9788", ReadyMaxLag: 5 * time.Minute},
	}
}

// loadConfig reads the file and validates only the `source:` section, for
// commands that only read the binlog (rowhook tail).
func loadConfig(path string) (*config, *yamlconf.Doc, error) {
	cfg := defaultConfig()
	doc, err := yamlconf.Load(path, &cfg)
	if err != nil {
		return nil, doc, err
	}
	if err := doc.Locate(errors.Join(cfg.Source.Validate())); err != nil {
		return nil, doc, err
	}
	return &cfg, doc, nil
}
