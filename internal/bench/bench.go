// Package bench measures rowhook against a private MariaDB: binlog decode,
// catch-up, delivery, latency and memory (rowhook bench).
package bench

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
	"golang.org/x/sync/errgroup"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/dispatch"
	"github.com/rowhook/rowhook/dispatch/sqlitestore"
	"github.com/rowhook/rowhook/internal/demo"
	"github.com/rowhook/rowhook/internal/mariadb"
	"github.com/rowhook/rowhook/internal/pipeline"
	"github.com/rowhook/rowhook/rules"
)

// ChildEnv marks a process the rss measure started: a test binary
// (which cannot run "rowhook run" from its command line) looks for it.
const ChildEnv = "ROWHOOK_BENCH_CHILD"

// Measures are the --only names, in the order they run.
var Measures = []string{"decode", "catchup", "pertx", "deliver", "latency", "rss"}

// Help describes the measures, for 'rowhook bench --help'.
const Help = `Starts a private MariaDB (mariadbd must be installed) and local receivers, and measures:
  decode   binlog rows/s through cdc.Reader vs a bare BinlogSyncer loop (goal ratio ≥ 0.8)
  catchup  rows/s from the start of a binlog (100 rows per transaction) to its end: no row matching,
           10% matching (goal ≥ 50,000), every row enqueued to a scheduled webhook (goals ≥ 100,000
           rows/s, ≥ 0.5× the no-match rate, ≤ 8 µs CPU per delivery beyond the no-match run,
           ≤ 400 bytes of state per pending delivery)
  pertx    the same with one row per transaction, no row matching (goal ≤ 5 µs CPU per transaction)
  deliver  deliveries/s from the outbox vs a bare net/http client (goal ratio ≥ 0.7; --busy keeps one
           core busy meanwhile, for both)
  latency  commit → receiver latency, one row per commit, at 500 and 2,000 commits/s (goals p99 ≤ 10 ms
           and ≤ 20 ms; --rate picks one rate, --busy keeps one core busy meanwhile)
  rss      a 'rowhook run' process holding 1,000,000 pending deliveries: max RSS (goal ≤ 100 MB), the
           time /metrics takes (goal < 100 ms) and the WAL's size against the database's while scraped
With --state mysql it measures the MySQL state store instead (the HA setup): deliveries/s drained
to a local receiver (goal ≥ 2,000) and the backlog at 1,000 commits/s.
`

// Result is one line of the table.
type Result struct {
	Measure string  `json:"measure"`
	Value   float64 `json:"value"`
	Unit    string  `json:"unit"`
	// Goal is the target ("≥ 0.8"), empty when the line has none.
	Goal string `json:"goal,omitempty"`
	// Pass is set for lines with a goal.
	Pass *bool `json:"pass,omitempty"`
}

// Machine describes where the figures were measured.
type Machine struct {
	CPU     string `json:"cpu"`
	Cores   int    `json:"cores"`
	Go      string `json:"go"`
	MariaDB string `json:"mariadb"`
	GOGC    string `json:"gogc"`
	// MemLimit is GOMEMLIMIT, or rowhook's default soft limit.
	MemLimit string `json:"gomemlimit"`
}

// Report is what one run measured, where.
type Report struct {
	Machine Machine  `json:"machine"`
	Rows    int      `json:"rows"`
	Results []Result `json:"results"`
}

// Options are the sizes of one run.
type Options struct {
	Rows       int // binlog rows for decode and catch-up
	Deliveries int // events for the delivery measure
	LatencyN   int // rows inserted per rate for the latency measure
	// LatencyRates are the commit rates of the latency measure (default
	// 500 and 2,000 per second).
	LatencyRates []int
	// Busy keeps one core busy (a spinning child process) during the
	// latency measure.
	Busy    bool
	Pending int // pending deliveries for the rss measure
	// ProfDir receives a CPU profile per in-process measure ("" for none).
	ProfDir string
	// Log receives progress and rowhook's warnings (nil discards them).
	Log io.Writer
	// Version is rowhook's version, for the pipelines the bench starts.
	Version string
	// State "mysql" runs the MySQL state store measure instead (mysqlstate.go).
	State string
}

// Run starts a private MariaDB and runs the measures (only the one named
// only, when not empty), in the order of Measures.
func Run(ctx context.Context, o Options, only string) (Report, error) {
	if _, err := mariadb.Binary(); err != nil {
		return Report{}, fmt.Errorf("bench: the bench starts a private MariaDB and needs its server binaries: install them with 'sudo apt-get install -y mariadb-server' (Debian/Ubuntu) or your system's mariadb-server package, then run it again")
	}
	if o.State != "" && o.State != "sqlite" {
		return runState(ctx, o)
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	srv, err := mariadb.Start(mariadb.Options{})
	if err != nil {
		return Report{}, fmt.Errorf("bench: %w", err)
	}
	defer srv.Stop()
	b := &bencher{o: o, srv: srv}
	rep := Report{Machine: machineInfo(ctx, srv.DB()), Rows: o.Rows}
	for _, m := range Measures {
		if only != "" && only != m {
			continue
		}
		b.logf("bench: %s", m)
		res, err := b.measure(ctx, m)
		if err != nil {
			return Report{}, fmt.Errorf("bench: %s: %w", m, err)
		}
		rep.Results = append(rep.Results, res...)
	}
	return rep, nil
}

// bencher runs the measures against one private server.
type bencher struct {
	o   Options
	srv *mariadb.Server

	binlogOnce bool
	from, end  string // GTID sets before and after the shared binlog
	schemaN    int
	lastDir    string // the directory of the last pipeline started
	// singleFrom and singleEnd are the GTID sets around the single-row
	// binlog (pertx).
	singleFrom, singleEnd string
}

// scheduledYearly is a webhook that sends once a year: what it enqueues
// stays pending.
const scheduledYearly = "    mode: scheduled\n    schedule: '0 0 1 1 *'\n"

// stateBytes is the space the tables of the SQLite state file at path
// use (pages in use, WAL included, free pages not).
func stateBytes(ctx context.Context, path string) (int64, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var n int64
	err = db.QueryRowContext(ctx, `SELECT (page_count - freelist_count) * page_size FROM pragma_page_count, pragma_freelist_count, pragma_page_size`).Scan(&n)
	return n, err
}

func (b *bencher) logf(format string, args ...any) {
	fmt.Fprintf(b.o.Log, format+"\n", args...)
}

func (b *bencher) measure(ctx context.Context, m string) ([]Result, error) {
	if b.o.ProfDir != "" && m != "rss" {
		f, err := os.Create(filepath.Join(b.o.ProfDir, m+".pprof"))
		if err != nil {
			return nil, err
		}
		defer f.Close()
		// The binlog is written before the profile starts.
		if m == "decode" || m == "catchup" {
			if err := b.binlog(ctx); err != nil {
				return nil, err
			}
		}
		if m == "pertx" {
			if err := b.singleBinlog(ctx); err != nil {
				return nil, err
			}
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, err
		}
		defer pprof.StopCPUProfile()
	}
	switch m {
	case "decode":
		return b.decode(ctx)
	case "catchup":
		return b.catchup(ctx)
	case "pertx":
		return b.pertx(ctx)
	case "deliver":
		return b.deliver(ctx)
	case "latency":
		return b.latency(ctx)
	case "rss":
		return b.rss(ctx)
	}
	return nil, fmt.Errorf("unknown measure %q", m)
}

// newSchema creates a fresh database for one measure.
func (b *bencher) newSchema(ctx context.Context) (string, error) {
	b.schemaN++
	name := fmt.Sprintf("bench%d", b.schemaN)
	_, err := b.srv.DB().ExecContext(ctx, "CREATE DATABASE "+name)
	return name, err
}

// benchTable is a Vtiger-like opportunity table (the cdc decode benchmark's).
const benchTable = `CREATE TABLE %s.potential (potentialid INT PRIMARY KEY, potentialname VARCHAR(120), amount DECIMAL(25,8),
	related_to INT, closingdate DATE, sales_stage VARCHAR(200), probability DECIMAL(7,3), modifiedtime DATETIME,
	description TEXT, deleted TINYINT UNSIGNED)`

// fillPotential inserts rows [first, first+n) perTx rows per transaction.
func (b *bencher) fillPotential(ctx context.Context, schema string, first, n, perTx int) error {
	db := b.srv.DB()
	for start := first; start < first+n; start += perTx {
		var sb strings.Builder
		fmt.Fprintf(&sb, "INSERT INTO %s.potential VALUES ", schema)
		for i := start; i < start+perTx && i < first+n; i++ {
			if i > start {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, "(%d, 'Deal %d - 500 seats', %d.50, %d, '2026-12-31', 'Prospecting', 10.000, '2026-11-23 10:00:00', 'Inbound via website', 0)", i+1, i, i*10, i%97)
		}
		if _, err := db.ExecContext(ctx, sb.String()); err != nil {
			return fmt.Errorf("fill %s.potential: %w", schema, err)
		}
	}
	return nil
}

func (b *bencher) gtidPos(ctx context.Context) (string, error) {
	var s string
	err := b.srv.DB().QueryRowContext(ctx, "SELECT @@gtid_binlog_pos").Scan(&s)
	return s, err
}

// binlog writes the shared decode/catch-up binlog once: o.Rows rows of
// bench1.potential, 100 rows per transaction.
func (b *bencher) binlog(ctx context.Context) error {
	if b.binlogOnce {
		return nil
	}
	if _, err := b.srv.DB().ExecContext(ctx, "CREATE DATABASE benchlog"); err != nil {
		return err
	}
	if _, err := b.srv.DB().ExecContext(ctx, fmt.Sprintf(benchTable, "benchlog")); err != nil {
		return err
	}
	var err error
	if b.from, err = b.gtidPos(ctx); err != nil {
		return err
	}
	b.logf("bench: writing %d rows (100 per transaction)", b.o.Rows)
	if err := b.fillPotential(ctx, "benchlog", 0, b.o.Rows, 100); err != nil {
		return err
	}
	if b.end, err = b.gtidPos(ctx); err != nil {
		return err
	}
	// mariadbd goes on flushing what it just wrote for a moment; the
	// first measure would pay for it.
	if err := sleepCtx(ctx, 3*time.Second); err != nil {
		return err
	}
	b.binlogOnce = true
	return nil
}

// decode reads the shared binlog with a bare BinlogSyncer loop that only
// counts rows, and with cdc.Reader (typed, named changes by transaction).
func (b *bencher) decode(ctx context.Context) ([]Result, error) {
	if err := b.binlog(ctx); err != nil {
		return nil, err
	}
	var bare, ours, bareCPU, oursCPU time.Duration
	const runs = 3
	for range runs {
		cpu0 := benchCPUTime()
		d, err := b.bareDecode(ctx)
		if err != nil {
			return nil, fmt.Errorf("bare loop: %w", err)
		}
		cpu1 := benchCPUTime()
		bare, bareCPU = bare+d, bareCPU+cpu1-cpu0
		if d, err = b.readerDecode(ctx); err != nil {
			return nil, fmt.Errorf("cdc.Reader: %w", err)
		}
		ours, oursCPU = ours+d, oursCPU+benchCPUTime()-cpu1
	}
	n := float64(b.o.Rows * runs)
	ratio := bare.Seconds() / ours.Seconds()
	// The machine's other load moves wall-clock rates; the CPU this process
	// spent per row (mariadbd's excluded) moves much less.
	return []Result{
		{Measure: "decode bare BinlogSyncer", Value: n / bare.Seconds(), Unit: "rows/s"},
		{Measure: "decode cdc.Reader", Value: n / ours.Seconds(), Unit: "rows/s"},
		goalResult("decode ratio", ratio, "×", "≥ 0.8", ratio >= 0.8),
		{Measure: "decode CPU bare BinlogSyncer", Value: float64(bareCPU.Nanoseconds()) / n, Unit: "ns/row"},
		{Measure: "decode CPU cdc.Reader", Value: float64(oursCPU.Nanoseconds()) / n, Unit: "ns/row"},
		{Measure: "decode CPU ratio (bare/rowhook)", Value: bareCPU.Seconds() / oursCPU.Seconds(), Unit: "×"},
	}, nil
}

func (b *bencher) bareDecode(ctx context.Context) (time.Duration, error) {
	return b.bareRead(ctx, b.from, b.o.Rows)
}

// bareRead reads the binlog from the GTID set from with a bare
// BinlogSyncer loop until it has seen rows rows.
func (b *bencher) bareRead(ctx context.Context, from string, want int) (time.Duration, error) {
	gs, err := mysql.ParseGTIDSet("mariadb", from)
	if err != nil {
		return 0, err
	}
	syncer := replication.NewBinlogSyncer(replication.BinlogSyncerConfig{
		ServerID: 3_000_000_001, Flavor: "mariadb", Host: b.srv.Host, Port: uint16(b.srv.Port), User: "root",
		TimestampStringLocation: time.UTC, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	defer syncer.Close()
	start := time.Now()
	streamer, err := syncer.StartSyncGTID(gs)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	rows := 0
	for rows < want {
		ev, err := streamer.GetEvent(ctx)
		if err != nil {
			return 0, err
		}
		if re, ok := ev.Event.(*replication.RowsEvent); ok {
			rows += len(re.Rows)
		}
	}
	return time.Since(start), nil
}

func (b *bencher) readerDecode(ctx context.Context) (time.Duration, error) {
	cfg := cdc.DefaultConfig()
	cfg.DSN = b.srv.URL()
	cfg.Include = []string{"benchlog.*"}
	cfg.ServerID = 3_000_000_002
	r, err := cdc.New(cfg, cdc.Deps{Logger: slog.New(slog.NewTextHandler(b.o.Log, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		return 0, err
	}
	defer r.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rows := 0
	start := time.Now()
	err = r.Run(ctx, cdc.Checkpoint{Flavor: "mariadb", GTIDSet: b.from}, cdc.HandlerFunc(func(_ context.Context, tx *cdc.Transaction) error {
		rows += len(tx.Changes)
		if rows >= b.o.Rows {
			cancel()
		}
		return nil
	}))
	if err != nil {
		return 0, err
	}
	if rows < b.o.Rows {
		return 0, fmt.Errorf("read %d rows, want %d", rows, b.o.Rows)
	}
	return time.Since(start), nil
}

// benchConfig is the configuration the pipeline measures run with: one
// rule on one table with the RowChanged body, one webhook.
const benchConfig = `source:
  dsn: %s
  include: ['%s.*']
  start: 'gtid:%s'
  heartbeat: 1s
  server_id: %d
http:
  listen: %s
state:
  path: state.db
rules:
  - name: bench
    table: %s
    on: [insert]
    when: '%s'
    event: RowChanged
    webhooks: [recv]
webhooks:
  recv:
    url: %s
%s`

// startBenchPipeline writes a configuration into a fresh directory and starts
// the same pipeline 'rowhook run' does.
func (b *bencher) startBenchPipeline(ctx context.Context, schema, table, from, when, url, extra string) (*pipeline.Pipeline, func(), error) {
	dir, err := os.MkdirTemp("", "rowhook-bench-")
	if err != nil {
		return nil, nil, err
	}
	b.schemaN++
	b.lastDir = dir
	text := fmt.Sprintf(benchConfig, b.srv.URL(), schema, from, 3_000_000_100+b.schemaN, "127.0.0.1:0", table, when, url, extra)
	path := filepath.Join(dir, "rowhook.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	cfg, _, err := pipeline.Load(ctx, path)
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	logger := slog.New(slog.NewTextHandler(b.o.Log, &slog.HandlerOptions{Level: slog.LevelWarn}))
	pctx, cancel := context.WithCancel(ctx)
	p, err := pipeline.Open(pctx, cfg, pipeline.Options{Dir: dir, Logger: logger, Version: b.o.Version})
	if err == nil {
		p.Start(pctx)
	}
	if err != nil {
		cancel()
		os.RemoveAll(dir)
		return nil, nil, err
	}
	stop := func() {
		cancel()
		if err := p.Wait(); err != nil {
			b.logf("bench: pipeline: %v", err)
		}
		os.RemoveAll(dir)
	}
	return p, stop, nil
}

// catchup starts rowhook at the start of the shared binlog and times it to
// the end (the durable checkpoint covering the last transaction), once with
// no row matching and once with every tenth.
func (b *bencher) catchup(ctx context.Context) ([]Result, error) {
	if err := b.binlog(ctx); err != nil {
		return nil, err
	}
	recv, err := startBenchReceiver(false)
	if err != nil {
		return nil, err
	}
	defer recv.Close()
	end, err := mysql.ParseGTIDSet("mariadb", b.end)
	if err != nil {
		return nil, err
	}
	var out []Result
	var noMatch, noMatchCPU float64
	for _, c := range []struct {
		name, when, extra string
		pct               int
	}{
		{"catch-up 0% matching", "row.potentialid < 0", "", 0},
		{"catch-up 10% matching", "row.potentialid % 10 == 0", "", 10},
		// Every row enqueued durably; the webhook sends once a year, so
		// what is timed is the outbox, not the receiver.
		{"catch-up 100% enqueued", "row.potentialid > 0", scheduledYearly, 100},
	} {
		p, stop, err := b.startBenchPipeline(ctx, "benchlog", "benchlog.potential", b.from, c.when, recv.URL(), c.extra)
		if err != nil {
			return nil, err
		}
		elapsed, cpu, err := runToEnd(ctx, p, end, c.name)
		if err != nil {
			stop()
			return nil, err
		}
		// The counter moves just after the commit that moved the checkpoint.
		want := float64(b.o.Rows * c.pct / 100)
		var enq float64
		for deadline := time.Now().Add(10 * time.Second); ; {
			if enq, err = scrapeMetric(ctx, "http://"+p.Addr()+"/metrics", "rowhook_deliveries_enqueued_total"); err != nil {
				stop()
				return nil, err
			}
			if enq == want || time.Now().After(deadline) {
				break
			}
			if err := sleepCtx(ctx, 10*time.Millisecond); err != nil {
				stop()
				return nil, err
			}
		}
		if enq != want {
			stop()
			return nil, fmt.Errorf("%s: %v deliveries enqueued, want %v", c.name, enq, want)
		}
		rate := float64(b.o.Rows) / elapsed.Seconds()
		cpuPerRow := float64(cpu.Nanoseconds()) / float64(b.o.Rows)
		switch c.pct {
		case 0:
			noMatch, noMatchCPU = rate, cpuPerRow
			out = append(out, Result{Measure: c.name, Value: rate, Unit: "rows/s"})
		case 10:
			out = append(out, goalResult(c.name, rate, "rows/s", "≥ 50,000", rate >= 50_000))
		case 100:
			out = append(out, goalResult(c.name, rate, "rows/s", "≥ 100,000", rate >= 100_000))
			ratio := rate / noMatch
			out = append(out, goalResult("catch-up ratio 100% enqueued / 0% matching", ratio, "×", "≥ 0.5", ratio >= 0.5))
		}
		// rowhook's CPU per row (receiver included, mariadbd not).
		out = append(out, Result{Measure: c.name + " CPU", Value: cpuPerRow, Unit: "ns/row"})
		if c.pct == 100 {
			// What enqueueing adds to reading and matching a row.
			per := cpuPerRow - noMatchCPU
			out = append(out, goalResult("CPU per enqueued delivery (beyond no-match)", per, "ns", "≤ 8,000", per <= 8000))
		}
		if c.pct == 100 {
			used, err := stateBytes(ctx, filepath.Join(b.lastDir, "state.db"))
			if err != nil {
				stop()
				return nil, err
			}
			per := float64(used) / float64(b.o.Rows)
			out = append(out, goalResult("state per pending delivery", per, "bytes", "≤ 400", per <= 400))
		}
		stop()
	}
	return out, nil
}

// runToEnd times pipeline p (just started) until its durable checkpoint
// covers end, and returns the wall time and this process's CPU time.
func runToEnd(ctx context.Context, p *pipeline.Pipeline, end mysql.GTIDSet, name string) (time.Duration, time.Duration, error) {
	// Timed from the end of start-up (config checks, schema reads): the
	// reader is connecting now.
	start, cpu0 := time.Now(), benchCPUTime()
	for {
		cp, _, err := p.State().Checkpoint(ctx)
		if err != nil {
			return 0, 0, err
		}
		if cp.GTIDSet != "" {
			if gs, err := mysql.ParseGTIDSet("mariadb", cp.GTIDSet); err == nil && gs.Contain(end) {
				return time.Since(start), benchCPUTime() - cpu0, nil
			}
		}
		if time.Since(start) > 30*time.Minute {
			return 0, 0, fmt.Errorf("%s: checkpoint at %s after 30m, want %s", name, cp.GTIDSet, end)
		}
		// Each look is a read transaction in this process: often enough
		// to time a run of seconds, rarely enough not to weigh on it.
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return 0, 0, err
		}
	}
}

// deliver sends o.Deliveries requests to a local receiver with a bare
// net/http client and then through rowhook's dispatcher from a filled
// outbox, at the same concurrency (rowhook's default).
func (b *bencher) deliver(ctx context.Context) ([]Result, error) {
	recv, err := startBenchReceiver(false)
	if err != nil {
		return nil, err
	}
	defer recv.Close()
	busy, ratioName := "", "deliver ratio"
	if b.o.Busy {
		stop, err := startBusy()
		if err != nil {
			return nil, err
		}
		defer stop()
		busy, ratioName = ", one core busy", "deliver ratio (one core busy)"
	}
	n := b.o.Deliveries
	conc := dispatch.DefaultConcurrency
	body := []byte(`{"op":"insert","schema":"crm","table":"potential","key":{"potentialid":1},"after":{"potentialid":1,"potentialname":"Deal 1","amount":"1250.50"}}`)

	tr := &http.Transport{MaxIdleConnsPerHost: conc}
	client := &http.Client{Transport: tr}
	start := time.Now()
	var wg sync.WaitGroup
	var next atomic.Int64
	errc := make(chan error, conc)
	for range conc {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				resp, err := client.Post(recv.URL(), "application/json", bytes.NewReader(body))
				if err != nil {
					errc <- err
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	bare := float64(n) / time.Since(start).Seconds()
	tr.CloseIdleConnections()
	select {
	case err := <-errc:
		return nil, fmt.Errorf("bare client: %w", err)
	default:
	}

	dir, err := os.MkdirTemp("", "rowhook-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	st, err := sqlitestore.Open(filepath.Join(dir, "state.db"), sqlitestore.Options{})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	wc := dispatch.WebhookConfig{URL: recv.URL(), Signing: dispatch.SigningConfig{Secret: "whsec_" + demo.RandomBase64(24)}}
	d, err := dispatch.New(dispatch.Config{Webhooks: map[string]dispatch.WebhookConfig{"recv": wc}}, st, dispatch.Deps{
		Logger: slog.New(slog.NewTextHandler(b.o.Log, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		return nil, err
	}
	ts := time.Now().UTC()
	for i := 0; i < n; i += 100 {
		var evs []rules.Event
		for j := i; j < i+100 && j < n; j++ {
			id := int64(j + 1)
			evs = append(evs, rules.Event{
				ID: fmt.Sprintf("0-1-%d:0:bench", j+1), Rule: "bench", Name: "RowChanged", Webhooks: []string{"recv"},
				Key: fmt.Sprintf("crm.potential:%d", id), Timestamp: ts,
				Body: rules.Body{{Name: "op", Value: "insert"}, {Name: "schema", Value: "crm"}, {Name: "table", Value: "potential"},
					{Name: "key", Value: map[string]any{"potentialid": id}},
					{Name: "after", Value: map[string]any{"potentialid": id, "potentialname": "Deal 1", "amount": cdc.Decimal("1250.50")}}},
				Change: &cdc.Change{Op: cdc.OpInsert, After: cdc.Row{"potentialid": id}},
			})
		}
		if err := d.Enqueue(ctx, cdc.Checkpoint{Flavor: "mariadb", GTIDSet: fmt.Sprintf("0-1-%d", i+1)}, evs); err != nil {
			return nil, err
		}
	}
	if err := d.Flush(ctx); err != nil {
		return nil, err
	}
	recv.count.Store(0)
	dctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	start = time.Now()
	go func() { done <- d.Run(dctx) }()
	// Delivered means received and recorded: nothing pending any more.
	for {
		if recv.count.Load() >= int64(n) {
			ds, err := st.Pending(ctx, dispatch.PendingQuery{Webhook: "recv", Limit: 1})
			if err != nil {
				cancel()
				return nil, err
			}
			if len(ds) == 0 {
				break
			}
		}
		if time.Since(start) > 30*time.Minute {
			cancel()
			return nil, fmt.Errorf("%d of %d deliveries after 30m", recv.count.Load(), n)
		}
		if err := sleepCtx(ctx, time.Millisecond); err != nil {
			cancel()
			return nil, err
		}
	}
	ours := float64(n) / time.Since(start).Seconds()
	cancel()
	if err := <-done; err != nil {
		return nil, fmt.Errorf("dispatcher: %w", err)
	}
	ratio := ours / bare
	return []Result{
		{Measure: fmt.Sprintf("deliver bare net/http (%d conns%s)", conc, busy), Value: bare, Unit: "req/s"},
		{Measure: fmt.Sprintf("deliver rowhook (%d conns%s)", conc, busy), Value: ours, Unit: "req/s"},
		goalResult(ratioName, ratio, "×", "≥ 0.7", ratio >= 0.7),
	}, nil
}

// latency inserts one row per commit at 1,000 rows/s while rowhook runs;
// each row carries its insert time (the server's NOW(6)) and the receiver
// subtracts it from the arrival time.
func (b *bencher) latency(ctx context.Context) ([]Result, error) {
	rates := b.o.LatencyRates
	if len(rates) == 0 {
		rates = []int{500, 2000}
	}
	if b.o.Busy {
		stop, err := startBusy()
		if err != nil {
			return nil, err
		}
		defer stop()
	}
	var out []Result
	for _, rate := range rates {
		res, err := b.latencyAt(ctx, rate)
		if err != nil {
			return nil, fmt.Errorf("%d commits/s: %w", rate, err)
		}
		out = append(out, res...)
	}
	return out, nil
}

// latencyAt inserts o.LatencyN rows, one per commit, at rate commits/s
// and measures how long after its commit each reaches the receiver.
func (b *bencher) latencyAt(ctx context.Context, rate int) ([]Result, error) {
	schema, err := b.newSchema(ctx)
	if err != nil {
		return nil, err
	}
	db := b.srv.DB()
	if _, err := db.ExecContext(ctx, fmt.Sprintf("CREATE TABLE %s.lat (id INT PRIMARY KEY, sent_us BIGINT NOT NULL, note VARCHAR(60))", schema)); err != nil {
		return nil, err
	}
	from, err := b.gtidPos(ctx)
	if err != nil {
		return nil, err
	}
	recv, err := startBenchReceiver(true)
	if err != nil {
		return nil, err
	}
	defer recv.Close()
	p, stop, err := b.startBenchPipeline(ctx, schema, schema+".lat", from, "row.id > 0", recv.URL(), "")
	if err != nil {
		return nil, err
	}
	defer stop()
	if err := demo.WaitHTTP(ctx, "http://"+p.Addr()+"/readyz", 30*time.Second); err != nil {
		return nil, fmt.Errorf("rowhook not ready: %w", err)
	}
	// A bare BinlogSyncer on the same binlog notes when each row reaches a
	// binlog client at all: the part of the latency rowhook cannot change.
	arrivals := &latencySet{ms: map[int64]float64{}}
	actx, stopArrivals := context.WithCancel(ctx)
	arrivalsDone := make(chan error, 1)
	go func() { arrivalsDone <- b.binlogArrivals(actx, from, schema, arrivals) }()
	// And a cdc.Reader alone (typed changes by transaction, no rules, no
	// outbox): the reader's share.
	readerArrivals := &latencySet{ms: map[int64]float64{}}
	readerDone := make(chan error, 1)
	go func() { readerDone <- b.readerArrivals(actx, from, schema, readerArrivals) }()
	defer func() {
		stopArrivals()
		<-arrivalsDone
		<-readerDone
	}()
	ins := fmt.Sprintf("INSERT INTO %s.lat VALUES (?, CAST(UNIX_TIMESTAMP(NOW(6)) * 1000000 AS SIGNED), 'latency probe')", schema)
	// A short warm-up (connections, TABLE_MAP cache) is not counted.
	warm := max(b.o.LatencyN/20, 10)
	total := warm + b.o.LatencyN
	// Commits are paced by one clock and spread over four connections, so
	// one slow commit does not delay the ones after it.
	ids := make(chan int, total)
	g, gctx := errgroup.WithContext(ctx)
	for range 4 {
		g.Go(func() error {
			conn, err := db.Conn(gctx)
			if err != nil {
				return err
			}
			defer conn.Close()
			for id := range ids {
				if _, err := conn.ExecContext(gctx, ins, id); err != nil {
					return err
				}
			}
			return nil
		})
	}
	start := time.Now()
	interval := time.Second / time.Duration(rate)
	for i := range total {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		ids <- i + 1
	}
	close(ids)
	if err := g.Wait(); err != nil {
		return nil, err
	}
	achieved := float64(total) / time.Since(start).Seconds()
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for recv.count.Load() < int64(total) {
		if err := sleepCtx(wctx, 5*time.Millisecond); err != nil {
			return nil, fmt.Errorf("%d of %d deliveries arrived: %w", recv.count.Load(), total, err)
		}
	}
	lat := recv.set.after(warm)
	if len(lat) == 0 {
		return nil, errors.New("no latencies recorded")
	}
	for arrivals.count() < total {
		if err := sleepCtx(wctx, 5*time.Millisecond); err != nil {
			return nil, fmt.Errorf("bare binlog client saw %d of %d rows: %w", arrivals.count(), total, err)
		}
	}
	for readerArrivals.count() < total {
		if err := sleepCtx(wctx, 5*time.Millisecond); err != nil {
			return nil, fmt.Errorf("cdc.Reader saw %d of %d rows: %w", readerArrivals.count(), total, err)
		}
	}
	arr, rarr := arrivals.after(warm), readerArrivals.after(warm)
	p99 := percentile(lat, 0.99)
	goal := 20.0
	if rate <= 500 {
		goal = 10
	}
	at := fmt.Sprintf(" (%s commits/s)", formatCount(rate))
	if b.o.Busy {
		at = fmt.Sprintf(" (%s commits/s, one core busy)", formatCount(rate))
	}
	return []Result{
		{Measure: "latency commit rate achieved" + at, Value: achieved, Unit: "commits/s"},
		{Measure: "latency p50" + at, Value: percentile(lat, 0.50), Unit: "ms"},
		{Measure: "latency p95" + at, Value: percentile(lat, 0.95), Unit: "ms"},
		goalResult("latency p99"+at, p99, "ms", fmt.Sprintf("≤ %v", goal), p99 <= goal),
		{Measure: "binlog arrival p50, bare client" + at, Value: percentile(arr, 0.50), Unit: "ms"},
		{Measure: "binlog arrival p99, bare client" + at, Value: percentile(arr, 0.99), Unit: "ms"},
		{Measure: "cdc.Reader arrival p50" + at, Value: percentile(rarr, 0.50), Unit: "ms"},
		{Measure: "cdc.Reader arrival p99" + at, Value: percentile(rarr, 0.99), Unit: "ms"},
	}, nil
}

// startBusy keeps one core busy with a spinning child process (outside
// this process, so its CPU is not counted as rowhook's) until stop.
func startBusy() (stop func(), err error) {
	cmd := exec.Command("/bin/sh", "-c", "while :; do :; done")
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the busy loop: %w", err)
	}
	return func() {
		cmd.Process.Kill()
		cmd.Wait()
	}, nil
}

// readerArrivals runs a cdc.Reader on schema.lat from "from" and records
// how long after its insert each row was handed to the handler.
func (b *bencher) readerArrivals(ctx context.Context, from, schema string, set *latencySet) error {
	cfg := cdc.DefaultConfig()
	cfg.DSN = b.srv.URL()
	cfg.Include = []string{schema + ".lat"}
	cfg.ServerID = 3_000_000_004
	r, err := cdc.New(cfg, cdc.Deps{Logger: slog.New(slog.NewTextHandler(b.o.Log, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		return err
	}
	defer r.Close()
	return r.Run(ctx, cdc.Checkpoint{Flavor: "mariadb", GTIDSet: from}, cdc.HandlerFunc(func(_ context.Context, tx *cdc.Transaction) error {
		now := time.Now()
		for _, c := range tx.Changes {
			id, ok1 := toInt64(c.After["id"])
			sent, ok2 := toInt64(c.After["sent_us"])
			if ok1 && ok2 {
				set.add(id, float64(now.UnixMicro()-sent)/1000)
			}
		}
		return nil
	}))
}

// binlogArrivals reads the binlog from "from" with a bare BinlogSyncer and
// records, per row of schema.lat, how long after its insert it arrived.
func (b *bencher) binlogArrivals(ctx context.Context, from, schema string, set *latencySet) error {
	gs, err := mysql.ParseGTIDSet("mariadb", from)
	if err != nil {
		return err
	}
	syncer := replication.NewBinlogSyncer(replication.BinlogSyncerConfig{
		ServerID: 3_000_000_003, Flavor: "mariadb", Host: b.srv.Host, Port: uint16(b.srv.Port), User: "root",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	defer syncer.Close()
	streamer, err := syncer.StartSyncGTID(gs)
	if err != nil {
		return err
	}
	for {
		ev, err := streamer.GetEvent(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		now := time.Now()
		re, ok := ev.Event.(*replication.RowsEvent)
		if !ok || re.Table == nil || string(re.Table.Schema) != schema || string(re.Table.Table) != "lat" {
			continue
		}
		for _, row := range re.Rows {
			if len(row) < 2 {
				continue
			}
			id, ok1 := toInt64(row[0])
			sent, ok2 := toInt64(row[1])
			if ok1 && ok2 {
				set.add(id, float64(now.UnixMicro()-sent)/1000)
			}
		}
	}
}

func toInt64(v any) (int64, bool) {
	switch v := v.(type) {
	case int32:
		return int64(v), true
	case int64:
		return v, true
	case int:
		return int64(v), true
	}
	return 0, false
}

// latencySet holds one latency per row id (the first seen).
type latencySet struct {
	mu sync.Mutex
	ms map[int64]float64
}

func (s *latencySet) add(id int64, ms float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.ms[id]; !dup {
		s.ms[id] = ms
	}
}

func (s *latencySet) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.ms)
}

// after returns the latencies of rows with ids above skip, sorted.
func (s *latencySet) after(skip int) []float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]float64, 0, len(s.ms))
	for id, ms := range s.ms {
		if id > int64(skip) {
			out = append(out, ms)
		}
	}
	slices.Sort(out)
	return out
}

// percentile is the nearest-rank percentile of sorted values.
func percentile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// rss fills a binlog with o.Pending matching rows, runs 'rowhook run' as a
// child process on it with the webhook held (a yearly schedule, so every
// delivery stays pending) and reads the child's peak RSS: the bench's own
// memory (receivers, profiles, the filled binlog's client) is not counted.
func (b *bencher) rss(ctx context.Context) ([]Result, error) {
	schema, err := b.newSchema(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := b.srv.DB().ExecContext(ctx, fmt.Sprintf(benchTable, schema)); err != nil {
		return nil, err
	}
	from, err := b.gtidPos(ctx)
	if err != nil {
		return nil, err
	}
	b.logf("bench: writing %d rows for the rss measure", b.o.Pending)
	if err := b.fillPotential(ctx, schema, 0, b.o.Pending, 100); err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "rowhook-bench-rss-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	listen, err := benchFreeAddr()
	if err != nil {
		return nil, err
	}
	b.schemaN++
	text := fmt.Sprintf(benchConfig, b.srv.URL(), schema, from, 3_000_000_100+b.schemaN, listen, schema+".potential", "row.potentialid > 0",
		"http://127.0.0.1:9/unreachable", scheduledYearly)
	cfgPath := filepath.Join(dir, "rowhook.yaml")
	if err := os.WriteFile(cfgPath, []byte(text), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, exe, "run", "--config", cfgPath, "--log-level", "warn")
	cmd.Env = append(os.Environ(), ChildEnv+"=1")
	cmd.Stdout, cmd.Stderr = b.o.Log, b.o.Log
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}()
	start := time.Now()
	metrics := "http://" + listen + "/metrics"
	for {
		select {
		case err := <-exited:
			exited <- err
			return nil, fmt.Errorf("rowhook run exited early: %v", err)
		default:
		}
		enq, err := scrapeMetric(ctx, metrics, "rowhook_deliveries_enqueued_total")
		if err == nil && enq >= float64(b.o.Pending) {
			break
		}
		if time.Since(start) > 30*time.Minute {
			return nil, fmt.Errorf("%v of %d deliveries enqueued after 30m", enq, b.o.Pending)
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return nil, err
		}
	}
	// Let the dispatcher look at its queue with everything in it.
	if err := sleepCtx(ctx, 2*time.Second); err != nil {
		return nil, err
	}
	hwm, err := procStatusKB(cmd.Process.Pid, "VmHWM")
	if err != nil {
		return nil, err
	}
	rss, err := procStatusKB(cmd.Process.Pid, "VmRSS")
	if err != nil {
		return nil, err
	}
	mb := float64(hwm) / 1024
	// /metrics with the outbox full: the slowest of ten scrapes.
	var slowest time.Duration
	for range 10 {
		t0 := time.Now()
		resp, err := http.Get(metrics)
		if err != nil {
			return nil, fmt.Errorf("scrape /metrics with %d pending: %w", b.o.Pending, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("scrape /metrics with %d pending: HTTP %d", b.o.Pending, resp.StatusCode)
		}
		slowest = max(slowest, time.Since(t0))
	}
	ms := float64(slowest.Microseconds()) / 1000
	// The WAL after filling while /metrics was scraped every 100 ms.
	dbSize, walSize := fileSize(filepath.Join(dir, "state.db")), fileSize(filepath.Join(dir, "state.db-wal"))
	walRatio := float64(walSize) / float64(max(dbSize, 1))
	// The peak is reached while catching up; the resident size once the
	// queue is full and the reader idle is what holding the queue costs.
	return []Result{
		goalResult(fmt.Sprintf("max RSS, %d pending", b.o.Pending), mb, "MiB", "≤ 100", mb <= 100),
		{Measure: fmt.Sprintf("RSS when idle, %d pending", b.o.Pending), Value: float64(rss) / 1024, Unit: "MiB"},
		goalResult(fmt.Sprintf("/metrics, slowest of 10, %d pending", b.o.Pending), ms, "ms", "< 100", ms < 100),
		{Measure: "state file size", Value: float64(dbSize) / (1 << 20), Unit: "MiB"},
		goalResult("WAL size / state file size", walRatio, "×", "< 2", walRatio < 2),
	}, nil
}

// fileSize is the size of the file at path, 0 when it is missing.
func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// benchReceiver is a fast local webhook receiver: it counts requests and,
// when asked, records each body's after.sent_us against its arrival time.
type benchReceiver struct {
	srv   *http.Server
	ln    net.Listener
	count atomic.Int64

	parse bool
	set   latencySet // row id → ms
}

func startBenchReceiver(parse bool) (*benchReceiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &benchReceiver{ln: ln, parse: parse, set: latencySet{ms: map[int64]float64{}}}
	r.srv = &http.Server{Handler: r}
	go r.srv.Serve(ln)
	return r, nil
}

func (r *benchReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	now := time.Now()
	body, _ := io.ReadAll(req.Body)
	if r.parse {
		var ev struct {
			After struct {
				ID     int64 `json:"id"`
				SentUS int64 `json:"sent_us"`
			} `json:"after"`
		}
		if json.Unmarshal(body, &ev) == nil && ev.After.SentUS > 0 {
			r.set.add(ev.After.ID, float64(now.UnixMicro()-ev.After.SentUS)/1000)
		}
	}
	r.count.Add(1)
	w.WriteHeader(http.StatusOK)
}

func (r *benchReceiver) URL() string { return "http://" + r.ln.Addr().String() + "/hook" }

func (r *benchReceiver) Close() { r.srv.Close() }

func goalResult(name string, v float64, unit, goal string, pass bool) Result {
	return Result{Measure: name, Value: v, Unit: unit, Goal: goal, Pass: &pass}
}

// scrapeMetric sums the samples of one metric in a Prometheus text page.
func scrapeMetric(ctx context.Context, url, name string) (float64, error) {
	b, err := demo.GetBody(ctx, url)
	if err != nil {
		return 0, err
	}
	var sum float64
	found := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (rest != "" && rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		f := strings.Fields(rest[strings.LastIndexByte(rest, '}')+1:])
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return 0, fmt.Errorf("metric %s: %w", name, err)
		}
		sum += v
		found = true
	}
	if !found {
		return 0, fmt.Errorf("metric %s not in %s", name, url)
	}
	return sum, nil
}

// benchCPUTime is the process's user+system CPU time so far.
func benchCPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procStatusKB reads one kB field of /proc/PID/status.
func procStatusKB(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read process status: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				return strconv.ParseInt(f[0], 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

func benchFreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// machineInfo describes the machine; unknown parts read "unknown".
func machineInfo(ctx context.Context, db *sql.DB) Machine {
	m := Machine{CPU: "unknown", Cores: runtime.NumCPU(), Go: runtime.Version(), MariaDB: "unknown", GOGC: os.Getenv("GOGC")}
	if m.GOGC == "" {
		m.GOGC = "400 (rowhook's default)"
	}
	if m.MemLimit = os.Getenv("GOMEMLIMIT"); m.MemLimit == "" {
		m.MemLimit = fmt.Sprintf("%dMiB (rowhook's default)", pipeline.DefaultMemoryLimit>>20)
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	var v string
	if err := db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&v); err == nil {
		m.MariaDB = v
	}
	return m
}

// PrintTable prints rep as the table rowhook bench shows.
func PrintTable(w io.Writer, rep Report) {
	m := rep.Machine
	fmt.Fprintf(w, "machine: %s, %d cores, %s, MariaDB %s, GOGC %s, GOMEMLIMIT %s\n", m.CPU, m.Cores, m.Go, m.MariaDB, m.GOGC, m.MemLimit)
	fmt.Fprintf(w, "binlog: %d rows, 100 per transaction\n\n", rep.Rows)
	width := 38
	for _, r := range rep.Results {
		width = max(width, len(r.Measure))
	}
	fmt.Fprintf(w, "%-*s %14s %-9s %-10s %s\n", width, "measure", "value", "unit", "goal", "result")
	for _, r := range rep.Results {
		goal, res := "-", "-"
		if r.Goal != "" {
			goal, res = r.Goal, "FAIL"
			if *r.Pass {
				res = "pass"
			}
		}
		fmt.Fprintf(w, "%-*s %14s %-9s %-10s %s\n", width, r.Measure, formatFigure(r.Value), r.Unit, goal, res)
	}
}

// formatCount is n with thousands separators.
func formatCount(n int) string {
	if n < 1000 {
		return strconv.Itoa(n)
	}
	return formatFigure(float64(n))
}

func formatFigure(v float64) string {
	if v < 0 {
		return "-" + formatFigure(-v)
	}
	if v < 1000 {
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	s := strconv.FormatInt(int64(v+0.5), 10)
	var sb strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			sb.WriteByte(',')
		}
		sb.WriteRune(c)
	}
	return sb.String()
}
