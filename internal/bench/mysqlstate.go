package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/dispatch"
	"github.com/rowhook/rowhook/dispatch/mysqlstore"
	"github.com/rowhook/rowhook/internal/demo"
	"github.com/rowhook/rowhook/internal/mariadb"
	"github.com/rowhook/rowhook/rules"
)

// Goals of the MySQL state store (issue 18).
const (
	stateGoalRate    = 2000 // deliveries/s draining a filled outbox
	stateCommitRate  = 1000 // commits/s of the sustained run
	stateDrainMaxDur = 30 * time.Minute
)

// runState measures a state store other than the default SQLite one
// (rowhook bench --state mysql). The MySQL measure starts its own private
// MariaDB with the settings of a durable HA state server
// (innodb_flush_log_at_trx_commit=1, sync_binlog=1: an fsync per commit),
// where the other measures' server trades them for speed.
func runState(ctx context.Context, o Options) (Report, error) {
	if o.State != "mysql" {
		return Report{}, fmt.Errorf("bench: --state %q: use sqlite (the default measures) or mysql", o.State)
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	srv, err := mariadb.Start(mariadb.Options{ExtraArgs: []string{"--innodb-flush-log-at-trx-commit=1", "--sync-binlog=1"}})
	if err != nil {
		return Report{}, fmt.Errorf("bench: %w", err)
	}
	defer srv.Stop()
	b := &bencher{o: o, srv: srv}
	rep := Report{Machine: machineInfo(ctx, srv.DB()), Rows: o.Rows}
	b.logf("bench: state mysql")
	if o.ProfDir != "" {
		f, err := os.Create(filepath.Join(o.ProfDir, "mysqlstate.pprof"))
		if err != nil {
			return Report{}, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return Report{}, err
		}
		defer pprof.StopCPUProfile()
	}
	res, err := b.mysqlState(ctx)
	if err != nil {
		return Report{}, fmt.Errorf("bench: state mysql: %w", err)
	}
	rep.Results = res
	return rep, nil
}

// mysqlState drains an outbox of min(o.Deliveries, 20,000) deliveries held
// in a MySQL state schema to a local receiver, once for a webhook without
// ordering and once for one with per-record ordering; then it enqueues one
// single-delivery commit at a time at 1,000 commits/s (10 s, 2 s for a
// quick run) while delivering, and reports the backlog (enqueued, not yet
// received) at the end of that run and its maximum.
func (b *bencher) mysqlState(ctx context.Context) ([]Result, error) {
	n := min(b.o.Deliveries, 20_000)
	sustain := 10 * time.Second
	if b.o.Deliveries < 5_000 {
		sustain = 2 * time.Second
	}
	recv, err := startBenchReceiver(false)
	if err != nil {
		return nil, err
	}
	defer recv.Close()
	if _, err := b.srv.DB().ExecContext(ctx, "CREATE DATABASE rowhook_state"); err != nil {
		return nil, err
	}
	st, err := mysqlstore.Open(ctx, b.srv.DSN("rowhook_state"), mysqlstore.Options{})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	// One dispatcher per phase, each with one webhook to the receiver.
	newDispatcher := func(ordering string) (*dispatch.Dispatcher, error) {
		wc := dispatch.WebhookConfig{URL: recv.URL(), Ordering: ordering, Signing: dispatch.SigningConfig{Secret: "whsec_" + demo.RandomBase64(24)}}
		return dispatch.New(dispatch.Config{Webhooks: map[string]dispatch.WebhookConfig{"recv": wc}}, st, dispatch.Deps{
			Logger: slog.New(slog.NewTextHandler(b.o.Log, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	}
	seq := 0
	event := func() rules.Event {
		seq++
		id := int64(seq)
		return rules.Event{
			ID: fmt.Sprintf("0-1-%d:0:bench", seq), Rule: "bench", Name: "RowChanged", Webhooks: []string{"recv"},
			Key: fmt.Sprintf("crm.potential:%d", id), Timestamp: time.Now().UTC(),
			Body: rules.Body{{Name: "op", Value: "insert"}, {Name: "schema", Value: "crm"}, {Name: "table", Value: "potential"},
				{Name: "key", Value: map[string]any{"potentialid": id}},
				{Name: "after", Value: map[string]any{"potentialid": id, "potentialname": "Deal 1", "amount": cdc.Decimal("1250.50")}}},
		}
	}
	cp := func() cdc.Checkpoint { return cdc.Checkpoint{Flavor: "mariadb", GTIDSet: fmt.Sprintf("0-1-%d", seq)} }
	// Delivered means received and recorded: nothing pending any more.
	waitDone := func(total int64, since time.Time) error {
		for {
			if recv.count.Load() >= total {
				var c int
				if err := b.srv.DB().QueryRowContext(ctx, "SELECT COUNT(*) FROM rowhook_state.rowhook_deliveries WHERE status = 'pending'").Scan(&c); err != nil {
					return err
				}
				if c == 0 {
					return nil
				}
			}
			if time.Since(since) > stateDrainMaxDur {
				return fmt.Errorf("%d of %d deliveries after %s", recv.count.Load(), total, stateDrainMaxDur)
			}
			if err := sleepCtx(ctx, time.Millisecond); err != nil {
				return err
			}
		}
	}
	run := func(d *dispatch.Dispatcher) (stop func() error) {
		dctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- d.Run(dctx) }()
		return func() error {
			cancel()
			if err := <-done; err != nil {
				return fmt.Errorf("dispatcher: %w", err)
			}
			return nil
		}
	}
	// drain fills the outbox with n deliveries, 100 per commit, then
	// delivers them: deliveries/s and CPU per delivery of rowhook (the
	// receiver included) and of mariadbd.
	drain := func(ordering string) (rate, cpuUS, dbUS float64, err error) {
		d, err := newDispatcher(ordering)
		if err != nil {
			return 0, 0, 0, err
		}
		b.logf("bench: enqueueing %d deliveries into the MySQL state store", n)
		for i := 0; i < n; i += 100 {
			var evs []rules.Event
			for j := i; j < i+100 && j < n; j++ {
				evs = append(evs, event())
			}
			if err := d.Enqueue(ctx, cp(), evs); err != nil {
				return 0, 0, 0, err
			}
		}
		if err := d.Flush(ctx); err != nil {
			return 0, 0, 0, err
		}
		b.logf("bench: draining %d deliveries (ordering %s)", n, ordering)
		cpu0, db0 := benchCPUTime(), mariadbCPU(b.srv)
		start := time.Now()
		stop := run(d)
		err = waitDone(int64(seq), start)
		wall := time.Since(start)
		cpu, db := benchCPUTime()-cpu0, mariadbCPU(b.srv)-db0
		if serr := stop(); err == nil {
			err = serr
		}
		return float64(n) / wall.Seconds(), float64(cpu.Microseconds()) / float64(n), float64(db.Microseconds()) / float64(n), err
	}
	drainRate, cpuUS, dbUS, err := drain(dispatch.OrderingNone)
	if err != nil {
		return nil, err
	}
	ordRate, ordCPU, ordDB, err := drain(dispatch.OrderingPerRecord)
	if err != nil {
		return nil, err
	}

	// Sustained: stateCommitRate commits/s of one delivery each, paced on
	// the wall clock, while the dispatcher delivers.
	d, err := newDispatcher(dispatch.OrderingNone)
	if err != nil {
		return nil, err
	}
	stop := run(d)
	b.logf("bench: %d commits/s for %s", stateCommitRate, sustain)
	base := int64(seq)
	var maxBacklog int64
	start := time.Now()
	next := start
	for sent := 0; time.Since(start) < sustain; {
		due := int(time.Since(start).Seconds() * stateCommitRate)
		for ; sent < due; sent++ {
			if err := d.Enqueue(ctx, cp(), []rules.Event{event()}); err != nil {
				stop()
				return nil, err
			}
		}
		if backlog := int64(seq) - recv.count.Load(); backlog > maxBacklog {
			maxBacklog = backlog
		}
		next = next.Add(time.Millisecond)
		if err := sleepCtx(ctx, time.Until(next)); err != nil {
			stop()
			return nil, err
		}
	}
	endBacklog := int64(seq) - recv.count.Load()
	maxBacklog = max(maxBacklog, endBacklog)
	sentRate := float64(int64(seq)-base) / time.Since(start).Seconds()
	endAt := time.Now()
	err = d.Flush(ctx)
	if err == nil {
		err = waitDone(int64(seq), endAt)
	}
	drainAfter := time.Since(endAt)
	if serr := stop(); err == nil {
		err = serr
	}
	if err != nil {
		return nil, err
	}
	return []Result{
		goalResult("mysql state: drain deliveries/s", drainRate, "req/s", fmt.Sprintf("≥ %d", stateGoalRate), drainRate >= stateGoalRate),
		{Measure: "mysql state: rowhook CPU per delivery", Value: cpuUS, Unit: "µs"},
		{Measure: "mysql state: mariadbd CPU per delivery", Value: dbUS, Unit: "µs"},
		{Measure: "mysql state: drain per_record deliv/s", Value: ordRate, Unit: "req/s"},
		{Measure: "mysql state: per_record rowhook CPU", Value: ordCPU, Unit: "µs"},
		{Measure: "mysql state: per_record mariadbd CPU", Value: ordDB, Unit: "µs"},
		{Measure: "mysql state: commits/s enqueued", Value: sentRate, Unit: "tx/s"},
		// A backlog of 1 s of commits or more is one that builds.
		goalResult(fmt.Sprintf("mysql state: max backlog at %d/s", stateCommitRate), float64(maxBacklog), "deliv", fmt.Sprintf("< %d", stateCommitRate), maxBacklog < stateCommitRate),
		{Measure: "mysql state: backlog at the end", Value: float64(max(endBacklog, 0)), Unit: "deliv"},
		{Measure: "mysql state: drained after the end", Value: float64(drainAfter.Microseconds()) / 1000, Unit: "ms"},
	}, nil
}

// mariadbCPU is the user+system CPU time the private server has used so
// far (from /proc/PID/stat, in clock ticks of 10 ms); 0 when unknown.
func mariadbCPU(srv *mariadb.Server) time.Duration {
	pid, err := os.ReadFile(filepath.Join(srv.Dir, "mysqld.pid"))
	if err != nil {
		return 0
	}
	stat, err := os.ReadFile("/proc/" + strings.TrimSpace(string(pid)) + "/stat")
	if err != nil {
		return 0
	}
	// The fields after the command name, which is in parentheses.
	s := string(stat)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	k, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+k) * 10 * time.Millisecond
}
