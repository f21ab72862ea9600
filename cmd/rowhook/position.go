package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/internal/pipeline"
)

func init() {
	register(command{name: "position", summary: "show the stored binlog position, or set a new one (recovery after a purge)", example: []string{"rowhook position --config rowhook.yaml", "rowhook position --config rowhook.yaml --set earliest"}, run: runPosition})
}

func runPosition(ctx context.Context, args []string, io stdio) error {
	fs := flag.NewFlagSet("position", flag.ContinueOnError)
	fs.SetOutput(io.err)
	configPath := fs.String("config", "", "rowhook configuration file (required)")
	set := fs.String("set", "", "store a new start position: earliest, current, gtid:SET or file:NAME:POS")
	asJSON := fs.Bool("json", false, "print JSON")
	fs.Usage = func() {
		fmt.Fprintln(io.err, "Usage: rowhook position --config FILE [--set START] [--json]")
		fmt.Fprintln(io.err)
		fmt.Fprintln(io.err, "Without --set: prints the checkpoint in rowhook's state (where `rowhook run` resumes) and the")
		fmt.Fprintln(io.err, "binlogs the source still has, and says whether run would resume from it: it asks the source for the")
		fmt.Fprintln(io.err, "binlog from the checkpoint as run does (by GTID set when it has one). Exit status 1 when not.")
		fmt.Fprintln(io.err)
		fmt.Fprintln(io.err, "With --set: resolves START on the source and stores it as the checkpoint, replacing the old one.")
		fmt.Fprintln(io.err, "This is the recovery after the source purged binlogs rowhook had not read yet: changes between")
		fmt.Fprintln(io.err, "the old checkpoint and the new position are skipped (re-read them from archived binlog files")
		fmt.Fprintln(io.err, "with `rowhook replay`). Deliveries already in the outbox are kept. It is also the recovery for a")
		fmt.Fprintln(io.err, "state that lost its tables (an empty state file): it creates them. Stop rowhook first: a")
		fmt.Fprintln(io.err, "running rowhook answering on http.listen is refused.")
		fmt.Fprintln(io.err)
		fs.PrintDefaults()
	}
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("position: unexpected argument %q", fs.Arg(0))
	}
	if *configPath == "" {
		return usagef("position: --config FILE is required")
	}
	if *set != "" {
		if _, err := cdc.ParseStart(*set); err != nil {
			return usagef("position: --set: %v", err)
		}
	}
	cfg, _, err := pipeline.LoadSource(ctx, *configPath)
	if err != nil {
		return err
	}
	cfgDir := filepath.Dir(*configPath)
	if *set != "" {
		if addr, running := rowhookRunning(ctx, cfg.HTTP.Listen); running {
			return fmt.Errorf("position: a rowhook answers on %s: stop it before setting the position (it would overwrite the new checkpoint with its own)", addr)
		}
	}

	src := cfg.Source
	if *set != "" {
		src.Start = *set
	}
	reader, err := cdc.New(src, cdc.Deps{})
	if err != nil {
		return err
	}
	defer reader.Close()
	insp, err := reader.Inspect(ctx)
	if err != nil {
		return err
	}
	logs, err := reader.BinaryLogs(ctx)
	if err != nil {
		return err
	}

	if *set != "" {
		cp, err := reader.ResolveStart(ctx)
		if err != nil {
			return fmt.Errorf("position: resolve %s on %s: %w", *set, reader.Source().Redacted(), err)
		}
		// A state that lost its tables (an emptied file) is repaired here:
		// this is the recovery run names for it.
		store, err := pipeline.OpenStoreWith(ctx, cfg, cfgDir, pipeline.StoreOptions{Init: true})
		if err != nil {
			return err
		}
		defer store.Close()
		old, had, err := store.Checkpoint(ctx)
		if err != nil {
			return fmt.Errorf("position: read checkpoint from %s: %w", store.Where, err)
		}
		if _, err := store.Commit(ctx, cp, nil); err != nil {
			return fmt.Errorf("position: store checkpoint in %s: %w", store.Where, err)
		}
		if had {
			fmt.Fprintf(io.out, "old checkpoint: %s\n", describeCheckpoint(old))
		}
		fmt.Fprintf(io.out, "new checkpoint: %s (from %s on %s)\n", describeCheckpoint(cp), *set, reader.Source().Redacted())
		fmt.Fprintf(io.out, "stored in %s; `rowhook run` resumes there\n", store.Where)
		return nil
	}

	if !pipeline.IsMySQLState(cfg) {
		if _, err := os.Stat(pipeline.StatePath(cfg, cfgDir)); err != nil {
			return fmt.Errorf("position: state store %s: %w (rowhook run creates it; is the path right?)", pipeline.StatePath(cfg, cfgDir), err)
		}
	}
	store, err := pipeline.OpenStore(ctx, cfg, cfgDir, true)
	if err != nil {
		return err
	}
	defer store.Close()
	cp, had, err := store.Checkpoint(ctx)
	if err != nil {
		return fmt.Errorf("position: read checkpoint from %s: %w", store.Where, err)
	}
	st := positionStatus{State: store.Where, Source: reader.Source().Redacted(), Flavor: insp.Flavor, Binlogs: logs}
	if had {
		st.Checkpoint = &cp
		if st.Resumable, st.Note, err = resumable(ctx, reader, cp, logs); err != nil {
			return fmt.Errorf("position: %w", err)
		}
	} else {
		st.Note = fmt.Sprintf("no checkpoint yet: rowhook run starts at source.start (%s)", cmp.Or(cfg.Source.Start, "current"))
		st.Resumable = true
	}
	if *asJSON {
		enc := json.NewEncoder(io.out)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	fmt.Fprintf(io.out, "state:      %s\n", st.State)
	if st.Checkpoint != nil {
		fmt.Fprintf(io.out, "checkpoint: %s\n", describeCheckpoint(cp))
	} else {
		fmt.Fprintf(io.out, "checkpoint: none\n")
	}
	fmt.Fprintf(io.out, "source:     %s (%s), binlogs %s\n", st.Source, st.Flavor, logRange(logs))
	fmt.Fprintf(io.out, "%s\n", st.Note)
	if !st.Resumable {
		return fmt.Errorf("position: the checkpoint cannot be resumed from; choose a new one with: rowhook position --config %s --set earliest|current|gtid:SET|file:NAME:POS", *configPath)
	}
	return nil
}

type positionStatus struct {
	State      string          `json:"state"`
	Checkpoint *cdc.Checkpoint `json:"checkpoint,omitempty"`
	Source     string          `json:"source"`
	Flavor     string          `json:"flavor"`
	Binlogs    []string        `json:"binlogs"`
	Resumable  bool            `json:"resumable"`
	Note       string          `json:"note"`
}

// resumable says whether `rowhook run` would resume from cp: it asks the
// source for its binlog from cp exactly as run does (by GTID set when cp
// has one, so a purge of files whose transactions cp already holds loses
// nothing) and hangs up at the answer. An error means the source could not
// be asked.
func resumable(ctx context.Context, reader *cdc.Reader, cp cdc.Checkpoint, logs []string) (bool, string, error) {
	by := "file:" + cp.File
	if cp.GTIDSet != "" {
		by = "GTID set " + cp.GTIDSet
	}
	err := reader.CheckResume(ctx, cp)
	var pe *cdc.PurgedError
	switch {
	case err == nil:
		return true, fmt.Sprintf("resumable: the source serves its binlog from the checkpoint (%s); rowhook run resumes there", by), nil
	case errors.As(err, &pe):
		oldest := pe.OldestFile
		if oldest == "" {
			oldest = logRange(logs)
		}
		if pe.OldestGTID != "" {
			oldest += " (starting after GTID " + pe.OldestGTID + ")"
		}
		return false, fmt.Sprintf("NOT resumable: the source purged the binlog after the checkpoint (%s); its oldest binlog is %s (source said: %s)", by, oldest, pe.Cause), nil
	case errors.Is(err, cdc.ErrSource):
		return false, fmt.Sprintf("NOT resumable: the source refuses to send its binlog from the checkpoint (%s): %v", by, err), nil
	}
	return false, "", fmt.Errorf("ask the source whether it serves the checkpoint: %w", err)
}

func describeCheckpoint(cp cdc.Checkpoint) string {
	var parts []string
	if cp.File != "" {
		parts = append(parts, fmt.Sprintf("file:%s:%d", cp.File, cp.Pos))
	}
	if cp.GTIDSet != "" {
		parts = append(parts, "gtid:"+cp.GTIDSet)
	}
	if !cp.Timestamp.IsZero() {
		parts = append(parts, "last commit "+cp.Timestamp.UTC().Format(time.RFC3339))
	}
	if len(parts) == 0 {
		return "(empty)"
	}
	return strings.Join(parts, ", ")
}

// logRange is "oldest … newest" of a binlog list.
func logRange(logs []string) string {
	if len(logs) == 0 {
		return "none"
	}
	return logs[0] + " … " + logs[len(logs)-1]
}

// rowhookRunning reports whether something answers /healthz on listen.
func rowhookRunning(ctx context.Context, listen string) (string, bool) {
	if listen == "" || strings.HasSuffix(listen, ":0") {
		return "", false
	}
	addr := listen
	if strings.HasPrefix(addr, ":") || strings.HasPrefix(addr, "0.0.0.0:") {
		addr = "127.0.0.1" + addr[strings.LastIndex(addr, ":"):]
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/healthz", nil)
	if err != nil {
		return "", false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", false
	}
	resp.Body.Close()
	return addr, true
}
