package pipeline

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/rowhook/rowhook/dispatch"
	"github.com/rowhook/rowhook/dispatch/soap"
	"github.com/rowhook/rowhook/internal/yamlconf"
	"github.com/rowhook/rowhook/rules"
)

// Check is rowhook check: the start-up inspection rowhook run does
// (Inspect), creating nothing, then what run checks when it builds its
// parts: the rules against the source's columns, the lookup queries, the
// SOAP webhooks against their WSDLs. offline connects to nothing. It
// returns what was covered and what was not; errors are located in doc.
func Check(ctx context.Context, cfg *Config, doc *yamlconf.Doc, offline bool) ([]string, error) {
	mode := ModeCheck
	if offline {
		mode = ModeOffline
	}
	su, err := Inspect(ctx, cfg, filepath.Dir(doc.File), mode, nil, nil)
	if err != nil {
		return nil, doc.Locate(err)
	}
	defer su.Close()
	var db *sql.DB
	if su.Reader != nil {
		if db, err = su.Reader.DB(); err != nil {
			return nil, err
		}
	}
	if _, err := rules.New(ctx, cfg.Rules, rules.Deps{Source: db}); err != nil {
		return nil, doc.Locate(err)
	}
	notes := su.Notes
	if db != nil {
		if err := checkLookups(ctx, db, cfg.Rules); err != nil {
			return nil, doc.Locate(err)
		}
		notes = append(notes, fmt.Sprintf("columns checked against the source %s", su.Reader.Source().Redacted()))
	}
	if offline {
		if hasSOAP(cfg.Dispatch) {
			notes = append(notes, "SOAP mappings not checked against their WSDLs")
		}
		if len(WritebackMappings(cfg)) > 0 {
			notes = append(notes, "writeback columns not checked")
		}
	} else if hasSOAP(cfg.Dispatch) {
		if err := soap.CheckConfig(ctx, cfg.Dispatch, soap.Deps{BaseDir: filepath.Dir(doc.File)}); err != nil {
			return nil, doc.Locate(err)
		}
		notes = append(notes, "SOAP mappings checked against their WSDLs")
	}
	return notes, nil
}

func hasSOAP(c dispatch.Config) bool {
	for _, w := range c.Webhooks {
		if w.ContentType == dispatch.ContentSOAP {
			return true
		}
	}
	return false
}

// checkLookups prepares every YAML lookup query on the source, so a typo
// in a table or column fails now rather than at the first event.
func checkLookups(ctx context.Context, db *sql.DB, c rules.Config) error {
	var errs []error
	for name, b := range c.Bodies {
		if b.Lookup == "" {
			continue
		}
		q, err := rules.LookupQuery(b.Lookup)
		if err != nil {
			continue // reported by Validate
		}
		stmt, err := db.PrepareContext(ctx, q)
		if err != nil {
			hint := ""
			if strings.Contains(err.Error(), "No database selected") {
				hint = " (write schema.table in the query: rowhook's source connection has no default database)"
			}
			errs = append(errs, yamlconf.Errf("bodies."+name+".lookup", "the source refuses the query: %v%s", err, hint))
			continue
		}
		stmt.Close()
	}
	return errors.Join(errs...)
}
