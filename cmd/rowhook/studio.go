package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/rowhook/rowhook/internal/pipeline"
)

func init() {
	register(command{name: "studio", summary: "serve the rule studio offline over binlog files: write a rule, see what it would send (sends nothing)", example: []string{"rowhook studio --config rowhook.yaml --binlog mysql-bin.000042"}, run: runStudio})
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
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	binlogs = append(binlogs, fs.Args()...)
	if *configPath == "" {
		return usagef("studio: --config FILE is required")
	}
	if len(binlogs) == 0 {
		return usagef("studio: name at least one binlog file with --binlog")
	}
	cfg, doc, err := pipeline.Load(ctx, *configPath)
	if err != nil {
		return err
	}
	// studio.enabled is for run; here its other keys must hold anyway.
	logger := slog.New(slog.NewTextHandler(io.err, &slog.HandlerOptions{Level: slog.LevelWarn, ReplaceAttr: pipeline.DurationSeconds}))
	ring, txs, err := pipeline.StudioRingFromFiles(ctx, cfg, doc, binlogs, logger)
	if err != nil {
		return fmt.Errorf("studio: %w", err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("studio: listen %s: %w", *listen, err)
	}
	srv := &http.Server{Handler: pipeline.OfflineStudio(cfg, ring, *listen, version, logger), ReadHeaderTimeout: 10 * time.Second}
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
