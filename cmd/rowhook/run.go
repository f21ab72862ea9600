package main

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"

	"github.com/rowhook/rowhook/internal/pipeline"
)

func init() {
	register(command{name: "run", summary: "run rowhook: binlog → rules → durable delivery → writeback", example: []string{"rowhook run --config /etc/rowhook/rowhook.yaml --log-format json"}, run: runRun})
}

func runRun(ctx context.Context, args []string, io stdio) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(io.err)
	configPath := fs.String("config", "", "rowhook configuration file (required)")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprintln(io.err, "Usage: rowhook run --config FILE [--log-format text|json] [--log-level info]")
		fmt.Fprintln(io.err)
		fmt.Fprintln(io.err, "Reads the source's binlog, evaluates the rules, delivers events durably and writes")
		fmt.Fprintln(io.err, "responses back. Serves /healthz, /readyz, /metrics, the admin API and the perform list on")
		fmt.Fprintln(io.err, "http.listen. Stops cleanly on SIGINT/SIGTERM: reading stops, in-flight deliveries drain,")
		fmt.Fprintln(io.err, "the checkpoint is flushed. SIGHUP or POST /admin/reload reloads the config (docs/reload.md); a source")
		fmt.Fprintln(io.err, "out of reach at start is retried (/readyz says why). With ha.enabled, several processes share one config:")
		fmt.Fprintln(io.err, "one is active, the others wait as standbys (readyz 503) for the lock on ha.dsn; see docs/ha.md.")
		fmt.Fprintln(io.err, "A first start (no state) stores its source.start position as the checkpoint before it is ready;")
		fmt.Fprintln(io.err, "a state that exists but holds no rowhook state (an empty file) is refused: see rowhook position --set.")
		fmt.Fprintln(io.err, "Logs (stderr): durations in seconds (key_seconds), the admin page URL at start, successful deliveries")
		fmt.Fprintln(io.err, "as log.delivery_success says (default: a summary per webhook per minute), what was flushed at stop;")
		fmt.Fprintln(io.err, "see docs/deploy.md, Logs.")
		fmt.Fprintln(io.err)
		fs.PrintDefaults()
	}
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	if *configPath == "" {
		return usagef("run: --config is required")
	}
	logger, err := pipeline.NewLogger(io.err, *logFormat, *logLevel)
	if err != nil {
		return usagef("run: %v", err)
	}
	cfg, _, err := pipeline.Load(ctx, *configPath)
	if err != nil {
		return err
	}
	o := pipeline.Options{Dir: filepath.Dir(*configPath), Logger: logger, Version: version, Hangup: pipeline.Hangup(ctx)}
	if cfg.HA.Enabled {
		return pipeline.RunHA(ctx, cfg, o)
	}
	return pipeline.Serve(ctx, *configPath, cfg, o)
}
