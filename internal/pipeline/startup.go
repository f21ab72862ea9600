package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/dispatch/mysqlstore"
	"github.com/rowhook/rowhook/internal/yamlconf"
	"github.com/rowhook/rowhook/writeback"
)

// Mode says what Inspect may do.
type Mode int

const (
	// ModeRun opens everything for rowhook run: the writeback Writer
	// (creating the marker table if allowed), the state store (creating
	// it if missing) and the reader with its metrics.
	ModeRun Mode = iota
	// ModeCheck inspects the same things and creates nothing
	// (rowhook check).
	ModeCheck
	// ModeOffline is rowhook check --offline: only what needs no
	// server and not the host it runs on (the rules' tables against the
	// source filters).
	ModeOffline
)

// startup is what rowhook inspects before it reads the binlog. rowhook run
// and rowhook check both go through Inspect, so check fails on
// everything run would refuse.
type Startup struct {
	// Reader reads the source; in run mode with its metrics and the
	// marker table let through its filters. nil offline.
	Reader *cdc.Reader
	// Insp is the source's inspection (nil offline).
	Insp *cdc.Inspection
	// wb and store are opened in run mode only (nil otherwise).
	wb    *writeback.Writer
	store *Store
	// Notes say what a check covered and what it did not.
	Notes []string
}

// close releases what Inspect opened.
func (s *Startup) Close() {
	if s.store != nil {
		s.store.Close()
	}
	if s.wb != nil {
		s.wb.Close()
	}
	if s.Reader != nil {
		s.Reader.Close()
	}
}

// Inspect runs the start-up inspection, in this order, stopping at
// the first problem:
//
//  1. every rule's table passes source.include/exclude (a rule the reader
//     never sees never fires);
//  2. the state directory exists and is writable (SQLite; not offline);
//  3. the source (source.dsn): connection, binlog settings, grants
//     (cdc Inspect) — first, so that a source problem is named as one and
//     not as a failure of a later check that also connects there;
//  4. writeback: the primary (writeback.dsn), mode, marker table;
//  5. the state store: run opens (or creates) it, check makes sure run
//     could; a state that exists but holds no rowhook state is refused.
//
// On error, everything opened is closed.
func Inspect(ctx context.Context, cfg *Config, cfgDir string, mode Mode, logger *slog.Logger, reg prometheus.Registerer) (_ *Startup, err error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	su := &Startup{}
	defer func() {
		if err != nil {
			su.Close()
		}
	}()
	if err := checkRuleTables(cfg); err != nil {
		return nil, err
	}
	if mode == ModeOffline {
		// Offline is for checking a config away from where it runs: no
		// server, and not this host's state directory either.
		su.Notes = append(su.Notes, "offline (--offline): the source, the writeback primary, the state store and its directory were not checked, nor columns and lookup queries")
		return su, nil
	}
	if err := checkStateDir(cfg, cfgDir); err != nil {
		return nil, err
	}

	// 3. The source, with a reader that registers nothing: run builds its
	// own below once the marker table is known.
	ir, err := cdc.New(cfg.Source, cdc.Deps{Logger: logger})
	if err != nil {
		return nil, err
	}
	su.Reader = ir
	if su.Insp, err = ir.Inspect(ctx); err != nil {
		return nil, fmt.Errorf("source.dsn: %w", err)
	}
	srcDB, err := ir.DB()
	if err != nil {
		return nil, fmt.Errorf("source.dsn: %w", err)
	}
	su.Notes = append(su.Notes, fmt.Sprintf("source %s checked (%s, binlog settings and grants)", ir.Source().Redacted(), su.Insp.Flavor))
	for _, w := range su.Insp.Warnings {
		su.Notes = append(su.Notes, "warning: "+w)
	}

	// 4. Writeback. The source is known good here, so a failure to reach
	// it from writeback's replica check cannot be mistaken for the
	// primary's.
	src := cfg.Source
	if m := WritebackMappings(cfg); len(m) > 0 {
		wdeps := writeback.Deps{Logger: logger, Registerer: reg, ReplicaDSN: cfg.Source.DSN}
		if mode == ModeCheck {
			if err := writeback.Check(ctx, cfg.Writeback, m, wdeps); err != nil {
				return nil, err
			}
			su.Notes = append(su.Notes, "writeback columns checked against the primary (mode and marker table too)")
		} else {
			if su.wb, err = writeback.New(ctx, cfg.Writeback, m, wdeps); err != nil {
				return nil, err
			}
			src = withMarkerTable(src, su.wb)
		}
	}

	// 5. The state store.
	if mode == ModeCheck {
		note, err := checkState(ctx, cfg, cfgDir)
		if err != nil {
			return nil, err
		}
		su.Notes = append(su.Notes, note)
		if IsMySQLState(cfg) {
			id, err := serverIdentity(ctx, cfg.Dispatch.State.DSN)
			if err != nil {
				return nil, fmt.Errorf("state.dsn: %w", err)
			}
			if err := (&Store{Where: stateID(cfg, cfgDir), server: id}).checkStateServer(ctx, srcDB); err != nil {
				return nil, err
			}
		}
		return su, nil
	}
	if su.store, err = OpenStore(ctx, cfg, cfgDir, false); err != nil {
		return nil, err
	}
	if err := su.store.checkStateServer(ctx, srcDB); err != nil {
		return nil, err
	}

	// The reader run reads with, registered and with its final filters.
	// Inspect again: it is what tells the reader the source's flavor.
	r, err := cdc.New(src, cdc.Deps{Logger: logger, Registerer: reg})
	if err != nil {
		return nil, err
	}
	su.Reader = r
	ir.Close()
	if su.Insp, err = r.Inspect(ctx); err != nil {
		return nil, fmt.Errorf("source.dsn: %w", err)
	}
	return su, nil
}

// withMarkerTable lets the marker table through the source's filters:
// rowhook recognises its own transactions by the marker row,
// so the reader must see that table even when source.include does not
// name it.
func withMarkerTable(src cdc.Config, wb *writeback.Writer) cdc.Config {
	// In every mode, not only marker: the writer switches to the marker
	// table at run time when annotations are lost, and the reader must
	// already see it then.
	marker := ""
	if wb != nil {
		marker = wb.MarkerName()
	}
	if marker == "" {
		return src
	}
	schema, table, ok := strings.Cut(marker, ".")
	if !ok || cdc.NewFilter(src.Include, src.Exclude).Match(schema, table) {
		return src
	}
	if len(src.Include) > 0 {
		src.Include = append(slices.Clip(src.Include), marker)
	}
	src.Exclude = slices.DeleteFunc(slices.Clone(src.Exclude), func(pat string) bool {
		m, _ := path.Match(pat, marker)
		return m
	})
	return src
}

// checkRuleTables refuses a rule on a schema.table that source.include or
// source.exclude keeps from the reader: it would never fire. Rules naming
// a table in any schema, or a glob, are not judged.
func checkRuleTables(cfg *Config) error {
	f := cdc.NewFilter(cfg.Source.Include, cfg.Source.Exclude)
	var errs []error
	for i, r := range cfg.Rules.Rules {
		schema, table, ok := strings.Cut(r.Table, ".")
		if !ok || strings.ContainsAny(r.Table, "*?[\\") || f.Match(schema, table) {
			continue
		}
		why := fmt.Sprintf("source.include (%s) does not let it through", strings.Join(cfg.Source.Include, ", "))
		if cdc.NewFilter(cfg.Source.Include, nil).Match(schema, table) {
			why = fmt.Sprintf("source.exclude (%s) keeps it out", strings.Join(cfg.Source.Exclude, ", "))
		}
		errs = append(errs, yamlconf.Errf(fmt.Sprintf("rules[%d].table", i), "%s is not read from the binlog: %s, so the rule would never fire; add it there or fix the table", r.Table, why))
	}
	return errors.Join(errs...)
}

// checkStateDir makes sure a SQLite state can be created and written: its
// directory exists and accepts new files (the store writes a journal
// beside the file).
func checkStateDir(cfg *Config, cfgDir string) error {
	if IsMySQLState(cfg) {
		return nil
	}
	p := StatePath(cfg, cfgDir)
	dir := filepath.Dir(p)
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("state.path: the directory %s of the state file %s does not exist: create it (rowhook creates the file, not its directory) or fix state.path", dir, p)
	case err != nil:
		return fmt.Errorf("state.path: state directory %s: %w", dir, err)
	case !fi.IsDir():
		return fmt.Errorf("state.path: %s is not a directory", dir)
	}
	f, err := os.CreateTemp(dir, ".rowhook-check-*")
	if err != nil {
		return fmt.Errorf("state.path: the directory of the state file %s is not writable for this user (the store writes its journal there): %w", p, err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// checkState makes sure rowhook run could open the state store, without
// creating or changing it: an existing SQLite file must hold rowhook's
// state, a MySQL state schema must be complete or have none of rowhook's
// tables yet.
func checkState(ctx context.Context, cfg *Config, cfgDir string) (string, error) {
	if !IsMySQLState(cfg) {
		p := StatePath(cfg, cfgDir)
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
			return fmt.Sprintf("state %s: not there yet (a first start; rowhook run creates it)", p), nil
		}
		st, err := OpenStore(ctx, cfg, cfgDir, true)
		if err != nil {
			return "", err
		}
		defer st.Close()
		if sf, err := os.OpenFile(p, os.O_WRONLY, 0); err != nil {
			return "", fmt.Errorf("state.path: the state file is not writable: %w", err)
		} else {
			sf.Close()
		}
		return fmt.Sprintf("state %s checked", p), nil
	}
	st, err := OpenStoreWith(ctx, cfg, cfgDir, StoreOptions{ReadOnly: true, Probe: true})
	if errors.Is(err, mysqlstore.ErrNotCreated) {
		return "state database: no rowhook tables yet (a first start; rowhook run creates them)", nil
	}
	if err != nil {
		return "", err
	}
	defer st.Close()
	return fmt.Sprintf("state %s checked", st.Where), nil
}

// storeStartPosition makes a first start keep its starting point: with no
// checkpoint in the store, it resolves source.start (current, earliest,
// gtid:, file:) on the source and stores that as the checkpoint, before
// rowhook reports ready or reads anything. Without it, a first run
// stopped before its first transaction would leave no checkpoint, and the
// next start would resolve `current` anew and skip everything written in
// between. It returns the checkpoint to read from.
func storeStartPosition(ctx context.Context, r *cdc.Reader, store *Store, logger *slog.Logger) (cdc.Checkpoint, error) {
	cp, ok, err := store.Checkpoint(ctx)
	if err != nil {
		return cp, fmt.Errorf("read checkpoint from %s: %w", store.Where, err)
	}
	if ok {
		return cp, nil
	}
	if cp, err = r.ResolveStart(ctx); err != nil {
		return cp, fmt.Errorf("source.start: %w", err)
	}
	if _, err := store.Commit(ctx, cp, nil); err != nil {
		return cp, fmt.Errorf("store the start position in %s: %w", store.Where, err)
	}
	logger.Info("first start: stored the start position as the checkpoint", "from", cp.String(), "state", store.Where)
	return cp, nil
}
