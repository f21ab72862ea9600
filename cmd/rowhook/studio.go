package main

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/dispatch"
	"github.com/rowhook/rowhook/internal/adminui"
	"github.com/rowhook/rowhook/internal/studio"
)

func init() {
	register(command{name: "studio", summary: "serve the rule studio offline over binlog files: write a rule, see what it would send (sends nothing)", run: runStudio})
}

// studioFeed is the pipeline's binlog handler that also keeps each
// transaction's changes in the studio's ring (the reader's other handler
// interfaces are promoted from the embedded handler).
type studioFeed struct {
	*pipelineHandler
	ring *studio.Ring
}

// HandleTransaction keeps tx's changes, then runs the pipeline on it.
func (f *studioFeed) HandleTransaction(ctx context.Context, tx *cdc.Transaction) error {
	f.ring.Add(tx)
	return f.pipelineHandler.HandleTransaction(ctx, tx)
}

// mountStudio mounts the studio's API on mux behind the admin token when
// studio.enabled, and returns the ring the reader must fill (nil when off).
func mountStudio(mux *routes, cfg *config, src *sql.DB, encoders map[string]dispatch.EncoderFactory) *studio.Ring {
	if !cfg.Studio.Enabled {
		return nil
	}
	ring := studio.NewRing(cfg.Studio)
	h := newStudio(cfg, src, encoders, ring).Handler(ring)
	mux.protected("POST /studio/try", h)
	mux.protected("GET /studio/changes", h)
	mux.protected("GET /studio/meta", h)
	return ring
}

func newStudio(cfg *config, src *sql.DB, encoders map[string]dispatch.EncoderFactory, ring *studio.Ring) *studio.Studio {
	d := cfg.Dispatch.WithDefaults()
	return studio.New(studio.Deps{
		Rules: cfg.Rules, Webhooks: d.Webhooks, Delivery: d.Delivery, Encoders: encoders, Source: src,
		Changes: func() []cdc.Change { return ring.Changes(nil) }, Columns: ring.ColumnsFor,
	})
}

func runStudio(ctx context.Context, args []string, io stdio) error {
	fs := flag.NewFlagSet("studio", flag.ContinueOnError)
	fs.SetOutput(io.err)
	configPath := fs.String("config", "", "the rowhook config file: its webhooks, bodies and source.include/exclude (required)")
	var binlogs stringList
	fs.Var(&binlogs, "binlog", "a binlog file, oldest first (repeatable; more files may follow as arguments)")
	listen := fs.String("listen", "127.0.0.1:9790", "address to serve the studio on")
	fs.Usage = func() {
		fmt.Fprintln(io.err, "Usage: rowhook studio --config FILE --binlog FILE... [--listen 127.0.0.1:9790]")
		fmt.Fprintln(io.err)
		fmt.Fprintln(io.err, "Reads the binlog files as rowhook replay does, keeps the changes of the tables the config's")
		fmt.Fprintln(io.err, "studio: section names (every included table when it names none; its size, max_bytes and")
		fmt.Fprintln(io.err, "redact apply; enabled is not needed here) and serves the rule studio at http://LISTEN/ui/studio.html:")
		fmt.Fprintln(io.err, "write a rule and see which changes it matches, each body and the request that would be sent.")
		fmt.Fprintln(io.err, "Nothing is sent, stored or written back, and no database is contacted. Off loopback, every")
		fmt.Fprintln(io.err, "route but the page's static files needs admin.token as Authorization: Bearer.")
		fmt.Fprintln(io.err)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return usagef("studio: %v", err)
	}
	binlogs = append(binlogs, fs.Args()...)
	if *configPath == "" {
		return usagef("studio: --config FILE is required")
	}
	if len(binlogs) == 0 {
		return usagef("studio: name at least one binlog file with --binlog")
	}
	cfg, doc, err := loadConfigAll(ctx, *configPath)
	if err != nil {
		return err
	}
	// studio.enabled is for run; here its other keys must hold anyway.
	sc := cfg.Studio
	sc.Enabled = true
	if err := doc.Locate(sc.Validate()); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(io.err, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ring := studio.NewRing(sc)
	dcfg := cdc.DecoderConfig{Flavor: cfg.Source.Flavor, Filter: cdc.NewFilter(cfg.Source.Include, cfg.Source.Exclude), Logger: logger}
	var txs int
	err = cdc.ReadFiles(ctx, binlogs, dcfg, cdc.FileRange{}, func(tx *cdc.Transaction) error {
		txs++
		ring.Add(tx)
		return nil
	}, nil)
	if err != nil {
		return fmt.Errorf("studio: %w", err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("studio: listen %s: %w", *listen, err)
	}
	open := isLoopback(*listen)
	token := cfg.Dispatch.Admin.Token
	mux := newRoutes(func(h http.Handler) http.Handler { return bearerOnly(open, token, h) })
	api := newStudio(cfg, nil, nil, ring).Handler(ring)
	mux.protected("POST /studio/try", api)
	mux.protected("GET /studio/changes", api)
	mux.protected("GET /studio/meta", api)
	ui := adminui.Handler(adminui.Options{Token: token, Open: open, Logger: logger, Status: func(context.Context) adminui.Status {
		st := adminui.Status{Version: version + " (studio, offline)"}
		for _, r := range cfg.Rules.Rules {
			st.Rules = append(st.Rules, adminui.RuleStatus{Name: r.Name, Table: r.Table, On: r.On, Event: r.Event, Webhooks: r.Webhooks})
		}
		return st
	}})
	mux.public("/ui/", ui)
	mux.protected("/ui/api/", ui)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(io.err, "studio: %d transactions read, %d changes kept (%d bytes); open http://%s/ui/studio.html\n",
		txs, len(ring.Changes(nil)), ring.Bytes(), ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("studio: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
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
