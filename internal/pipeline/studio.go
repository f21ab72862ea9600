package pipeline

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"log/slog"
	"net/http"
	"strings"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/dispatch"
	"github.com/rowhook/rowhook/internal/adminui"
	"github.com/rowhook/rowhook/internal/studio"
	"github.com/rowhook/rowhook/internal/yamlconf"
)

// studioFeed is the pipeline's binlog handler that also keeps each
// transaction's changes in the studio's ring (the reader's other handler
// interfaces are promoted from the embedded handler).
type studioFeed struct {
	*handler
	ring *studio.Ring
}

// HandleTransaction keeps tx's changes, then runs the pipeline on it.
func (f *studioFeed) HandleTransaction(ctx context.Context, tx *cdc.Transaction) error {
	f.ring.Add(tx)
	return f.handler.HandleTransaction(ctx, tx)
}

// mountStudio mounts the studio's API on mux behind the admin token when
// studio.enabled, and returns the ring the reader must fill (nil when off).
func mountStudio(mux *routes, cfg *Config, src *sql.DB, encoders map[string]dispatch.EncoderFactory) *studio.Ring {
	if !cfg.Studio.Enabled {
		return nil
	}
	ring := studio.NewRing(cfg.Studio)
	mountStudioAPI(mux, newStudio(cfg, src, encoders, ring).Handler(ring))
	return ring
}

func mountStudioAPI(mux *routes, h http.Handler) {
	mux.protected("POST /studio/try", h)
	mux.protected("GET /studio/changes", h)
	mux.protected("GET /studio/meta", h)
}

func newStudio(cfg *Config, src *sql.DB, encoders map[string]dispatch.EncoderFactory, ring *studio.Ring) *studio.Studio {
	d := cfg.Dispatch.WithDefaults()
	return studio.New(studio.Deps{
		Rules: cfg.Rules, Webhooks: d.Webhooks, Delivery: d.Delivery, Encoders: encoders, Source: src,
		Changes: func() []cdc.Change { return ring.Changes(nil) }, Columns: ring.ColumnsFor,
	})
}

// StudioRingFromFiles reads binlog files (oldest first) as rowhook replay
// does and keeps the changes cfg's studio: section names, for `rowhook
// studio`: studio.enabled is for run, but the section's other keys must
// hold here too (located in doc). It returns the ring and the number of
// transactions read.
func StudioRingFromFiles(ctx context.Context, cfg *Config, doc *yamlconf.Doc, files []string, logger *slog.Logger) (*studio.Ring, int, error) {
	sc := cfg.Studio
	sc.Enabled = true
	if err := doc.Locate(sc.Validate()); err != nil {
		return nil, 0, err
	}
	ring := studio.NewRing(sc)
	dcfg := cdc.DecoderConfig{Flavor: cfg.Source.Flavor, Filter: cdc.NewFilter(cfg.Source.Include, cfg.Source.Exclude), Logger: logger}
	txs := 0
	err := cdc.ReadFiles(ctx, files, dcfg, cdc.FileRange{}, func(tx *cdc.Transaction) error {
		txs++
		ring.Add(tx)
		return nil
	}, nil)
	return ring, txs, err
}

// OfflineStudio is the handler `rowhook studio` serves on listen: the
// studio's API over ring (filled from binlog files) and the admin page's
// files, every data route behind admin.token off loopback, as in run.
func OfflineStudio(cfg *Config, ring *studio.Ring, listen, version string, logger *slog.Logger) http.Handler {
	open := isLoopback(listen)
	token := cfg.Dispatch.Admin.Token
	mux := newRoutes(func(h http.Handler) http.Handler { return bearerOnly(open, token, h) })
	mountStudioAPI(mux, newStudio(cfg, nil, nil, ring).Handler(ring))
	ui := adminui.Handler(adminui.Options{Token: token, Open: open, Logger: logger, Status: func(context.Context) adminui.Status {
		return adminui.Status{Version: version + " (studio, offline)", Rules: adminui.NewRuleStatuses(cfg.Rules.Rules)}
	}})
	mux.public("/ui/", ui)
	mux.protected("/ui/api/", ui)
	return mux
}

// bearerOnly is the offline studio's admin token check, the admin API's
// rule: open on loopback, else Authorization: Bearer <admin.token>.
func bearerOnly(open bool, token string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !open {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if token == "" || !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="rowhook"`)
				http.Error(w, "missing or wrong bearer token (admin.token)", http.StatusUnauthorized)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}
