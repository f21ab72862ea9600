package pipeline

import (
	"context"
	"strings"

	"github.com/rowhook/rowhook/internal/yamlconf"
)

// under reports whether the key path is key or below it.
func under(path string, keys ...string) bool {
	for _, k := range keys {
		if path == k || strings.HasPrefix(path, k+".") || strings.HasPrefix(path, k+"[") {
			return true
		}
	}
	return false
}

// notRules is true for the values the offline rule commands (rowhook test,
// replay) do not use: everything but the rules, their bodies, the Vtiger
// preset and the reader's table filter. A ${VAR} there may be unset.
func notRules(path string) bool {
	return !under(path, "rules", "bodies", "vtiger", "timezone", "source.include", "source.exclude")
}

// notState is true for the values the state commands (rowhook deliveries,
// redeliver) do not use: the source, the writeback primary and the HA
// lock. A ${VAR} there may be unset.
func notState(path string) bool {
	return under(path, "source", "writeback", "ha")
}

// LoadState reads the config for the commands that read or change the
// state store from the command line: it validates the state, admin,
// delivery and webhook settings (the dispatch sections), and the source's, writeback's and HA's ${VAR} need not be set
// (notState).
func LoadState(ctx context.Context, path string) (*Config, *yamlconf.Doc, error) {
	return UntilDone(ctx, "config", func() (*Config, *yamlconf.Doc, error) {
		cfg := DefaultConfig()
		doc, err := decodePartial(path, &cfg, notState)
		if err != nil {
			return nil, doc, err
		}
		if err := doc.Locate(cfg.Dispatch.Validate()); err != nil {
			return nil, doc, err
		}
		return &cfg, doc, nil
	})
}
