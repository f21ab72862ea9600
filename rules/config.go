// Package rules evaluates integrators' workflow conditions (expr programs) on
// row changes and builds event bodies through named body functions.
package rules

import "github.com/rowhook/rowhook/writeback"

// Config is the `rules:` and `bodies:` part of rowhook's configuration.
type Config struct {
	// Rules are the workflow rules, evaluated in order for each row change.
	Rules []RuleConfig `yaml:"rules"`
	// Bodies are body functions defined in YAML, by name.
	Bodies map[string]BodyConfig `yaml:"bodies"`
}

// RuleConfig is one rule: when a change on Table matches On and When, build
// the body with the Event body function and deliver it to Webhooks.
type RuleConfig struct {
	Name     string   `yaml:"name"`
	Table    string   `yaml:"table"`
	On       []string `yaml:"on"`
	When     string   `yaml:"when"`
	Event    string   `yaml:"event"`
	Webhooks []string `yaml:"webhooks"`
	Once     bool     `yaml:"once"`
	// Writeback maps response values back into CRM columns after a
	// successful delivery; nil when the rule writes nothing back.
	Writeback *writeback.Mapping `yaml:"writeback"`
}

// BodyConfig is a body function defined in YAML: fields mapped by expr, with
// an optional parameterised lookup query on the source.
type BodyConfig struct {
	Lookup string            `yaml:"lookup"`
	Fields map[string]string `yaml:"fields"`
}
