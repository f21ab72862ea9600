package studio

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/rules"
)

// maxRuleBytes bounds a rule document sent to POST /studio/try.
const maxRuleBytes = 256 << 10

// Handler serves the studio's API (mount every route behind the admin
// token: they return CRM data):
//
//	POST /studio/try      the rule (YAML or JSON) → 200 {scanned, matches, warnings, yaml}
//	                      or 422 {errors: [{line, col, path, message}]}
//	GET  /studio/changes  the recent changes (redacted), oldest first
//	GET  /studio/meta     tables and columns in the ring, helper functions
func (s *Studio) Handler(ring *Ring) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /studio/try", func(w http.ResponseWriter, r *http.Request) {
		src, err := io.ReadAll(io.LimitReader(r.Body, maxRuleBytes+1))
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": "read body: " + err.Error()})
			return
		}
		if len(src) > maxRuleBytes {
			writeJSON(w, http.StatusRequestEntityTooLarge, map[string]any{"error": "rule over 256 KB"})
			return
		}
		res, probs, err := s.Try(r.Context(), src)
		switch {
		case errors.Is(err, ErrBusy):
			w.Header().Set("Retry-After", "1")
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"error": err.Error()})
		case err != nil:
			writeJSON(w, http.StatusInternalServerError, map[string]any{"error": err.Error()})
		case len(probs) > 0:
			writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"errors": probs})
		default:
			writeJSON(w, http.StatusOK, res)
		}
	})
	mux.HandleFunc("GET /studio/changes", func(w http.ResponseWriter, r *http.Request) {
		table := r.URL.Query().Get("table")
		var match func(schema, table string) bool
		if table != "" {
			match = func(s, t string) bool { return s+"."+t == table }
		}
		changes := []cdc.Change{}
		if ring != nil {
			changes = append(changes, ring.Changes(match)...)
		}
		writeJSON(w, http.StatusOK, map[string]any{"changes": changes})
	})
	mux.HandleFunc("GET /studio/meta", func(w http.ResponseWriter, r *http.Request) {
		tables := []TableInfo{}
		if ring != nil {
			tables = ring.Tables()
		}
		bodies := []string{}
		for n := range s.deps.Rules.Bodies {
			bodies = append(bodies, n)
		}
		webhooks := []string{}
		for n := range s.deps.Webhooks {
			webhooks = append(webhooks, n)
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"tables": tables, "helpers": rules.HelperNames(), "bodies": bodies, "webhooks": webhooks,
			"names": []string{"row", "old", "op", "table", "schema", "now"},
		})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
