package main

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rowhook/rowhook/dispatch"
	"github.com/rowhook/rowhook/internal/cli"
	"github.com/rowhook/rowhook/internal/pipeline"
)

func init() {
	register(command{name: "deliveries", summary: "list deliveries and show one with its attempts (from the state store)", example: []string{"rowhook deliveries list --config rowhook.yaml --status dead --since 24h", "rowhook deliveries show msg_2fq7xbkk3tqz4rnwy5cvhm6e --config rowhook.yaml"}, run: runDeliveries})
	register(command{name: "redeliver", summary: "re-run deliveries by id, or all failed/dead ones since a time", example: []string{"rowhook redeliver --config rowhook.yaml msg_2fq7xbkk3tqz4rnwy5cvhm6e", "rowhook redeliver --config rowhook.yaml --status dead --since 24h --webhook erp", "rowhook redeliver --rerender --config rowhook.yaml msg_2fq7xbkk3tqz4rnwy5cvhm6e"}, run: runRedeliver})
}

// stateFlags locates the state store: --state, or state.path from --config.
type stateFlags struct {
	state, config string
}

func (s *stateFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&s.state, "state", "", "state store file (default: state.path from --config)")
	fs.StringVar(&s.config, "config", "", "rowhook config file, to find the state store and admin settings")
}

// open returns the store and, when --config was given, the dispatch config
// (pipeline.OpenStateFile).
func (s *stateFlags) open(ctx context.Context, cmd string) (dispatch.Store, *dispatch.Config, error) {
	if s.state == "" && s.config == "" {
		return nil, nil, usagef("%s: give --state FILE or --config FILE", cmd)
	}
	return pipeline.OpenStateFile(ctx, s.state, s.config)
}

func runDeliveries(ctx context.Context, args []string, io stdio) error {
	usage := func() { // each subcommand's usage and flags
		runDeliveriesList(ctx, []string{"--help"}, io)
		fmt.Fprintln(io.err)
		runDeliveriesShow(ctx, []string{"--help"}, io)
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		usage()
		if len(args) == 0 {
			return usagef("deliveries: list or show?")
		}
		return nil
	}
	switch args[0] {
	case "list":
		return runDeliveriesList(ctx, args[1:], io)
	case "show":
		return runDeliveriesShow(ctx, args[1:], io)
	}
	usage()
	return usagef("deliveries: unknown subcommand %q (list, show)", args[0])
}

// interleave lets flags follow positional arguments ("show ID --json").
func interleave(args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if strings.HasPrefix(a, "-") {
			flags = append(flags, a)
			if !strings.Contains(a, "=") && i+1 < len(args) && takesValue(a) {
				flags = append(flags, args[i+1])
				i++
			}
			continue
		}
		pos = append(pos, a)
	}
	return append(flags, pos...)
}

func takesValue(flagArg string) bool {
	switch strings.TrimLeft(flagArg, "-") {
	case "json", "force", "rerender", "h", "help":
		return false
	}
	return true
}

func runDeliveriesList(ctx context.Context, args []string, io stdio) error {
	fs := flag.NewFlagSet("deliveries list", flag.ContinueOnError)
	fs.SetOutput(io.err)
	var sf stateFlags
	sf.register(fs)
	webhook := fs.String("webhook", "", "only this webhook (\"subscription\" for subscriptions)")
	status := fs.String("status", "", "only this status: pending, ok, failed or dead")
	since := fs.String("since", "", "only deliveries created since: a duration back (1h, 24h) or an RFC 3339 time")
	limit := fs.Int("limit", 100, "at most this many, newest first")
	search := fs.String("search", "", "only deliveries whose record key (crm.vtiger_potential:101), event id or delivery id is this")
	asJSON := fs.Bool("json", false, "one JSON object per line")
	fs.Usage = func() {
		fmt.Fprintln(io.err, "Usage: rowhook deliveries list [--webhook W] [--status pending|ok|failed|dead] [--since 1h] [--limit N] [--json] (--state FILE | --config FILE)")
		fs.PrintDefaults()
	}
	if help, err := parseFlags(fs, interleave(args)); help || err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("deliveries list: unexpected argument %q", fs.Arg(0))
	}
	f := dispatch.Filter{Webhook: *webhook, Status: dispatch.Status(*status), Limit: *limit, Search: *search}
	if f.Status != "" && !dispatch.ValidStatus(f.Status) {
		return usagef("deliveries list: --status %q: want pending, ok, failed or dead", *status)
	}
	if *limit < 1 {
		return usagef("deliveries list: --limit must be at least 1")
	}
	var err error
	if f.Since, err = dispatch.ParseSince(*since, time.Now()); err != nil {
		return usagef("deliveries list: --%v", err)
	}
	st, dc, err := sf.open(ctx, "deliveries list")
	if err != nil {
		return err
	}
	defer st.Close()
	ds, err := st.List(ctx, f)
	if err != nil {
		return err
	}
	bodyLimit := 0
	if dc != nil {
		bodyLimit = dc.State.BodyLimit
	}
	if *asJSON {
		enc := json.NewEncoder(io.out)
		for _, d := range ds {
			if err := enc.Encode(dispatch.ViewDelivery(d, nil, bodyLimit)); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(io.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tWEBHOOK\tEVENT\tATTEMPTS\tLAST\tCREATED")
	for _, d := range ds {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", d.ID, d.Status, cli.WebhookName(d), d.Event, d.Attempts,
			cli.LastOutcome(d), d.CreatedAt.Local().Format("2006-01-02 15:04:05"))
	}
	return tw.Flush()
}

func runDeliveriesShow(ctx context.Context, args []string, io stdio) error {
	fs := flag.NewFlagSet("deliveries show", flag.ContinueOnError)
	fs.SetOutput(io.err)
	var sf stateFlags
	sf.register(fs)
	asJSON := fs.Bool("json", false, "print the delivery and its log as JSON")
	fs.Usage = func() {
		fmt.Fprintln(io.err, "Usage: rowhook deliveries show ID [--json] (--state FILE | --config FILE)")
		fs.PrintDefaults()
	}
	if help, err := parseFlags(fs, interleave(args)); help || err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("deliveries show: give one delivery id")
	}
	st, dc, err := sf.open(ctx, "deliveries show")
	if err != nil {
		return err
	}
	defer st.Close()
	d, log, err := st.Get(ctx, fs.Arg(0))
	if err != nil {
		return err
	}
	bodyLimit := 0
	if dc != nil {
		bodyLimit = dc.State.BodyLimit
	}
	v := dispatch.ViewDelivery(d, log, bodyLimit)
	if *asJSON {
		enc := json.NewEncoder(io.out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	cli.PrintDelivery(io.out, v)
	return nil
}

func runRedeliver(ctx context.Context, args []string, io stdio) error {
	fs := flag.NewFlagSet("redeliver", flag.ContinueOnError)
	fs.SetOutput(io.err)
	var sf stateFlags
	sf.register(fs)
	status := fs.String("status", "", "re-run every delivery with this status: failed, dead (or ok)")
	since := fs.String("since", "", "with --status: only deliveries created since (1h, 24h, or an RFC 3339 time)")
	webhook := fs.String("webhook", "", "with --status: only this webhook")
	force := fs.Bool("force", false, "with --state and no --config: re-run without checking admin.allow_redeliver")
	rerender := fs.Bool("rerender", false, "with ids and --config: build each request again from the event's binlog transaction with the config's rules and webhooks (needs source.dsn)")
	fs.Usage = func() {
		fmt.Fprintln(io.err, "Usage: rowhook redeliver ID... (--config FILE | --state FILE --force)")
		fmt.Fprintln(io.err, "       rowhook redeliver --rerender ID... --config FILE")
		fmt.Fprintln(io.err, "       rowhook redeliver --status dead [--since 24h] [--webhook W] (--config FILE | --state FILE --force)")
		fmt.Fprintln(io.err)
		fmt.Fprintln(io.err, "Makes deliveries pending again; a running rowhook sends them within a second. Re-runs need")
		fmt.Fprintln(io.err, "admin.allow_redeliver: true in the config, and are recorded in each delivery's log.")
		fmt.Fprintln(io.err, cli.RedeliverNote)
		fmt.Fprintln(io.err, "Prints each re-queued delivery: ID<TAB>METHOD URL.")
		fmt.Fprintln(io.err)
		fs.PrintDefaults()
	}
	if help, err := parseFlags(fs, interleave(args)); help || err != nil {
		return err
	}
	ids := fs.Args()
	if *rerender {
		return runRerender(ctx, sf, ids, *status != "" || *since != "" || *webhook != "" || *force, io)
	}
	if len(ids) == 0 && *status == "" {
		return usagef("redeliver: give delivery ids or --status")
	}
	if len(ids) > 0 && (*status != "" || *since != "" || *webhook != "") {
		return usagef("redeliver: give either ids or --status/--since/--webhook, not both")
	}
	f := dispatch.Filter{Webhook: *webhook, Status: dispatch.Status(*status)}
	if f.Status != "" && (!dispatch.ValidStatus(f.Status) || f.Status == dispatch.StatusPending) {
		return usagef("redeliver: --status %q: want failed, dead or ok", *status)
	}
	var err error
	if f.Since, err = dispatch.ParseSince(*since, time.Now()); err != nil {
		return usagef("redeliver: --%v", err)
	}
	if sf.config == "" && !*force {
		return usagef("redeliver: give --config (to check admin.allow_redeliver), or --state with --force")
	}
	st, dc, err := sf.open(ctx, "redeliver")
	if err != nil {
		return err
	}
	defer st.Close()
	if dc != nil && !dc.Admin.AllowRedeliver {
		return dispatch.ErrRedeliverDisabled
	}
	done, err := st.Redeliver(ctx, ids, f, time.Now(), cliActor())
	if err != nil {
		return err
	}
	if err := cli.PrintRequeued(ctx, io.out, st, done); err != nil {
		return err
	}
	if skipped := len(ids) - len(done); len(ids) > 0 && skipped > 0 {
		fmt.Fprintf(io.err, "rowhook: %d of %d already pending, left alone\n", skipped, len(ids))
	}
	fmt.Fprintf(io.err, "rowhook: %d deliveries re-queued; each is sent again as stored (method, URL, payload headers, body), with authentication and a fresh signature from the running config\n", len(done))
	return nil
}

func runRerender(ctx context.Context, sf stateFlags, ids []string, filtered bool, io stdio) error {
	if len(ids) == 0 || filtered || sf.config == "" {
		return usagef("redeliver --rerender: give delivery ids and --config (its source, rules and webhooks); not --status, --since, --webhook or --force")
	}
	st, _, err := sf.open(ctx, "redeliver")
	if err != nil {
		return err
	}
	defer st.Close()
	logger := slog.New(slog.NewTextHandler(io.err, &slog.HandlerOptions{Level: slog.LevelWarn, ReplaceAttr: pipeline.DurationSeconds}))
	done, err := pipeline.Rerender(ctx, sf.config, st, ids, cliActor(), logger)
	if perr := cli.PrintRequeued(ctx, io.out, st, done); err != nil || perr != nil {
		return cmp.Or(err, perr)
	}
	fmt.Fprintf(io.err, "rowhook: %d deliveries re-rendered from the binlog with the current config and re-queued\n", len(done))
	return nil
}

func cliActor() string {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return fmt.Sprintf("rowhook redeliver (%s@%s)", name, host)
}
