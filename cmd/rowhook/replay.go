package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/internal/pipeline"
	"github.com/rowhook/rowhook/rules"
)

func init() {
	register(command{name: "replay", summary: "run the rules over binlog files on disk and print the events and bodies (sends nothing)", example: []string{"rowhook replay --config rowhook.yaml --binlog mysql-bin.000042 --from 4 > events.jsonl"}, run: runReplay})
}

// replayRecord is one output line of rowhook replay.
type replayRecord struct {
	ID       string     `json:"id"`
	Rule     string     `json:"rule"`
	Event    string     `json:"event"`
	Key      string     `json:"key"`
	Webhooks []string   `json:"webhooks"`
	Once     bool       `json:"once,omitempty"`
	TS       string     `json:"ts"`
	File     string     `json:"file"`
	Pos      uint32     `json:"pos"`
	Body     rules.Body `json:"body"`
}

func runReplay(ctx context.Context, args []string, io stdio) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(io.err)
	configPath := fs.String("config", "", "the rowhook config file whose rules run (required)")
	var binlogs stringList
	fs.Var(&binlogs, "binlog", "a binlog file, oldest first (repeatable; more files may follow as arguments)")
	from := fs.String("from", "", "start at this transaction start: POS in the first file, or FILE:POS")
	to := fs.String("to", "", "stop before the transaction starting at or after POS in the last file, or FILE:POS")
	progress := fs.String("progress", "auto", "progress bar on stderr: auto (when stderr is a terminal), always or never")
	fs.Usage = func() {
		fmt.Fprintln(io.err, "Usage: rowhook replay --config FILE --binlog FILE... [--from POS|FILE:POS] [--to POS|FILE:POS]")
		fmt.Fprintln(io.err)
		fmt.Fprintln(io.err, "Decodes the binlog files as the live reader would, runs the config's rules over every committed")
		fmt.Fprintln(io.err, "transaction (tables filtered by source.include/exclude) and prints one JSON object per event on")
		fmt.Fprintln(io.err, "stdout (keys id, rule, event, key, webhooks, once, ts, file, pos, body). Nothing is sent and no")
		fmt.Fprintln(io.err, "database is contacted: Vtiger bodies contain what the binlog holds, YAML lookups are empty.")
		fmt.Fprintln(io.err, "Settle windows still open at the end are closed as if the source went idle.")
		fmt.Fprintln(io.err)
		fs.PrintDefaults()
	}
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	binlogs = append(binlogs, fs.Args()...)
	if *configPath == "" {
		return usagef("replay: --config FILE is required")
	}
	if len(binlogs) == 0 {
		return usagef("replay: name at least one binlog file with --binlog")
	}
	var rng cdc.FileRange
	var err error
	if rng.FromFile, rng.From, err = parseReplayPos(*from, binlogs[0]); err != nil {
		return usagef("replay: --from: %v", err)
	}
	if rng.ToFile, rng.To, err = parseReplayPos(*to, binlogs[len(binlogs)-1]); err != nil {
		return usagef("replay: --to: %v", err)
	}
	if *from == "" {
		rng.FromFile = ""
	}
	if *to == "" {
		rng.ToFile = ""
	}
	showProgress := false
	switch *progress {
	case "auto":
		showProgress = isTerminal(io.err)
	case "always":
		showProgress = true
	case "never":
	default:
		return usagef("replay: --progress must be auto, always or never")
	}
	cfg, doc, err := pipeline.LoadRules(ctx, *configPath)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(io.err, &slog.HandlerOptions{Level: slog.LevelWarn, ReplaceAttr: pipeline.DurationSeconds}))
	eng, err := rules.New(ctx, cfg.Rules, rules.Deps{Logger: logger})
	if err != nil {
		return doc.Locate(err)
	}
	enc := json.NewEncoder(io.out)
	var bar *progressBar
	if showProgress {
		bar = &progressBar{w: io.err}
		defer bar.done()
	}
	var txs, changes, events int
	emit := func(evs []rules.Event) error {
		for _, ev := range evs {
			events++
			rec := replayRecord{ID: ev.ID, Rule: ev.Rule, Event: ev.Name, Key: ev.Key, Webhooks: ev.Webhooks, Once: ev.Once,
				TS: ev.Timestamp.UTC().Format(time.RFC3339), Body: ev.Body}
			if ev.Change != nil {
				rec.File, rec.Pos = ev.Change.File, ev.Change.Pos
			}
			if rec.Webhooks == nil {
				rec.Webhooks = []string{}
			}
			if bar != nil {
				bar.clear()
			}
			if err := enc.Encode(rec); err != nil {
				return fmt.Errorf("replay: write: %w", err)
			}
		}
		return nil
	}
	dcfg := cdc.DecoderConfig{Flavor: cfg.Source.Flavor, Filter: cdc.NewFilter(cfg.Source.Include, cfg.Source.Exclude), Logger: logger}
	var onProgress func(done, total int64)
	if bar != nil {
		onProgress = bar.update
	}
	var lastTS time.Time
	err = cdc.ReadFiles(ctx, binlogs, dcfg, rng, func(tx *cdc.Transaction) error {
		txs++
		changes += len(tx.Changes)
		lastTS = tx.Timestamp
		evs, err := eng.Process(ctx, tx)
		if err != nil {
			return err
		}
		return emit(evs)
	}, onProgress)
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	// The end of the files is the source going idle: close every window.
	evs, err := eng.Flush(ctx, lastTS.Add(24*time.Hour))
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	if err := emit(evs); err != nil {
		return err
	}
	if bar != nil {
		bar.done()
	}
	fmt.Fprintf(io.err, "replayed %d transactions, %d row changes: %d events\n", txs, changes, events)
	return nil
}

// parseReplayPos reads "POS" (in defaultFile) or "FILE:POS".
func parseReplayPos(s, defaultFile string) (string, uint32, error) {
	if s == "" {
		return "", 0, nil
	}
	file := filepath.Base(defaultFile)
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		file, s = filepath.Base(s[:i]), s[i+1:]
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n < 4 {
		return "", 0, fmt.Errorf("%q is not a binlog position (a byte offset ≥ 4, as in SHOW BINLOG EVENTS)", s)
	}
	return file, uint32(n), nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// progressBar draws "[#####.....]  50%  12.0/24.0 MB" on one line.
type progressBar struct {
	w     io.Writer
	last  time.Time
	shown bool
}

func (p *progressBar) update(done, total int64) {
	if total <= 0 || time.Since(p.last) < 100*time.Millisecond && done < total {
		return
	}
	p.last = time.Now()
	const width = 30
	n := int(done * width / total)
	fmt.Fprintf(p.w, "\r[%s%s] %3d%%  %.1f/%.1f MB", strings.Repeat("#", n), strings.Repeat(".", width-n),
		done*100/total, float64(done)/1e6, float64(total)/1e6)
	p.shown = true
}

// clear erases the bar before other output.
func (p *progressBar) clear() {
	if p.shown {
		fmt.Fprint(p.w, "\r\033[K")
		p.shown = false
	}
}

func (p *progressBar) done() { p.clear() }
