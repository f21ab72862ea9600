package main

import (
	"errors"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/dispatch"
	"github.com/rowhook/rowhook/internal/yamlconf"
	"github.com/rowhook/rowhook/rules"
)

// config is rowhook's whole configuration file. Each package owns its part
// and validates it; this file only composes them.
type config struct {
	Source   cdc.Config      `yaml:"source"`
	Rules    rules.Config    `yaml:",inline"`
	Dispatch dispatch.Config `yaml:",inline"`
}

func defaultConfig() config {
	return config{Source: cdc.DefaultConfig()}
}

// loadConfig reads, expands and validates the file at path. Errors name the
// file, line, column and key path.
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
