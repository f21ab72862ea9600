package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/internal/pipeline"
)

func init() {
	register(command{name: "tail", summary: "print the source's row changes as JSON lines (what rowhook sees)", example: []string{"rowhook tail --source 'mysql://rowhook:secret@replica:3306/' --include 'vtiger.*'"}, run: runTail})
}

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// tailRecord is one output line of rowhook tail.
type tailRecord struct {
	ID      string   `json:"id"`
	Schema  string   `json:"schema"`
	Table   string   `json:"table"`
	Op      cdc.Op   `json:"op"`
	Before  cdc.Row  `json:"before"`
	After   cdc.Row  `json:"after"`
	Changed []string `json:"changed"`
	PK      cdc.Row  `json:"pk"`
	GTID    string   `json:"gtid"`
	File    string   `json:"file"`
	Pos     uint32   `json:"pos"`
	Row     int      `json:"row"`
	TS      string   `json:"ts"`
	Tx      string   `json:"tx"`
}

func runTail(ctx context.Context, args []string, io stdio) error {
	fs := flag.NewFlagSet("tail", flag.ContinueOnError)
	fs.SetOutput(io.err)
	source := fs.String("source", "", "source DSN: mysql://user:password@host:port/ or user:password@tcp(host:port)/ (default: source.dsn from --config)")
	configPath := fs.String("config", "", "read source settings from this rowhook config file")
	flavor := fs.String("flavor", "", "mariadb or mysql (default: detected)")
	start := fs.String("start", "", "where to start without a checkpoint: current, earliest, gtid:SET or file:NAME:POS (default current)")
	checkpoint := fs.String("checkpoint", "", "resume from and save the position in this file")
	serverID := fs.Uint("server-id", 0, "replication server id to register with (default: random)")
	allowMissing := fs.Bool("allow-missing-metadata", false, "take column names from the current schema when binlog_row_metadata is not FULL")
	verbose := fs.Bool("v", false, "debug logs on stderr")
	var include, exclude stringList
	fs.Var(&include, "include", "only tables matching this schema.table glob (repeatable)")
	fs.Var(&exclude, "exclude", "skip tables matching this schema.table glob (repeatable)")
	fs.Usage = func() {
		fmt.Fprintln(io.err, "Usage: rowhook tail --source DSN [--flavor mariadb|mysql] [--start current|earliest|gtid:SET|file:NAME:POS] [--include 'db.tbl*'] [--exclude GLOB] [--checkpoint FILE]")
		fmt.Fprintln(io.err)
		fmt.Fprintln(io.err, "Prints one JSON object per row change on stdout (keys id, schema, table, op, before, after, changed, pk, gtid, file, pos, row, ts, tx),")
		fmt.Fprintln(io.err, "logs on stderr, and stops cleanly on SIGINT.")
		fmt.Fprintln(io.err)
		fs.PrintDefaults()
	}
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("tail: unexpected argument %q", fs.Arg(0))
	}
	cfg := cdc.DefaultConfig()
	if *configPath != "" {
		full, _, err := pipeline.LoadSource(ctx, *configPath)
		if err != nil {
			return err
		}
		cfg = full.Source
	}
	if *source != "" {
		cfg.DSN = *source
	}
	if cfg.DSN == "" {
		return usagef("tail: --source is required (for example --source mysql://rowhook:secret@replica:3306/)")
	}
	if *flavor != "" {
		cfg.Flavor = *flavor
	}
	if *start != "" {
		cfg.Start = *start
	}
	if *serverID != 0 {
		cfg.ServerID = uint32(*serverID)
	}
	if *allowMissing {
		cfg.AllowMissingMetadata = true
	}
	if len(include) > 0 {
		cfg.Include = include
	}
	if len(exclude) > 0 {
		cfg.Exclude = exclude
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(io.err, &slog.HandlerOptions{Level: level, ReplaceAttr: pipeline.DurationSeconds}))
	reader, err := cdc.New(cfg, cdc.Deps{Logger: logger})
	if err != nil {
		return fmt.Errorf("tail: %w", err)
	}
	defer reader.Close()

	var store *cdc.FileCheckpoint
	var from cdc.Checkpoint
	if *checkpoint != "" {
		store = &cdc.FileCheckpoint{Path: *checkpoint}
		cp, ok, err := store.Load()
		if err != nil {
			return err
		}
		if ok {
			from = cp
			logger.Info("resuming from checkpoint", "file", *checkpoint, "position", cp.String())
		}
	}

	out := bufio.NewWriterSize(io.out, 64<<10)
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	var lastSave time.Time
	var pending *cdc.Checkpoint
	save := func() error {
		if store == nil || pending == nil {
			return nil
		}
		if err := store.Save(*pending); err != nil {
			return err
		}
		pending = nil
		lastSave = time.Now()
		return nil
	}
	handler := tailHandler{
		tx: func(ctx context.Context, tx *cdc.Transaction) error {
			for i := range tx.Changes {
				c := &tx.Changes[i]
				if err := enc.Encode(tailRecord{
					ID: c.ID, Schema: c.Schema, Table: c.Table, Op: c.Op, Before: c.Before, After: c.After,
					Changed: c.Changed, PK: c.PK, GTID: c.GTID, File: c.File, Pos: c.Pos, Row: c.Row,
					TS: c.Timestamp.Format(time.RFC3339), Tx: c.Tx,
				}); err != nil {
					return fmt.Errorf("write: %w", err)
				}
			}
			// The checkpoint is saved only after the transaction's lines are
			// written out, so a resume never skips a printed-but-lost change.
			if len(tx.Changes) > 0 || time.Since(lastSave) > time.Second {
				if err := out.Flush(); err != nil {
					return fmt.Errorf("write: %w", err)
				}
			}
			cp := tx.Checkpoint
			pending = &cp
			if time.Since(lastSave) > 500*time.Millisecond {
				return save()
			}
			return nil
		},
		idle: func(ctx context.Context, now time.Time) error {
			if err := out.Flush(); err != nil {
				return fmt.Errorf("write: %w", err)
			}
			return save()
		},
	}
	runErr := reader.Run(ctx, from, handler)
	if err := out.Flush(); err != nil && runErr == nil {
		runErr = fmt.Errorf("write: %w", err)
	}
	if err := save(); err != nil && runErr == nil {
		runErr = err
	}
	return runErr
}

type tailHandler struct {
	tx   func(context.Context, *cdc.Transaction) error
	idle func(context.Context, time.Time) error
}

func (h tailHandler) HandleTransaction(ctx context.Context, tx *cdc.Transaction) error {
	return h.tx(ctx, tx)
}

func (h tailHandler) HandleIdle(ctx context.Context, now time.Time) error { return h.idle(ctx, now) }
