package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rowhook/rowhook/dispatch"
	"github.com/rowhook/rowhook/dispatch/sqlitestore"
	"github.com/rowhook/rowhook/internal/mariadbtest"
)

// buildRowhook compiles the rowhook binary (with -race) for subprocess tests.
func buildRowhook(t *testing.T) string {
	t.Helper()
	return buildRowhookBinary(t, true)
}

// buildRowhookBinary compiles rowhook, with the race detector or without.
func buildRowhookBinary(t *testing.T, race bool) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "rowhook")
	args := []string{"build", "-o", bin, "."}
	if race {
		args = []string{"build", "-race", "-o", bin, "."}
	}
	cmd := exec.Command("go", args...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// longFaults reports whether the long fault mode (ROWHOOK_FAULTS=long) is on.
func longFaults() bool { return os.Getenv("ROWHOOK_FAULTS") == "long" }

// rowhookProc is a rowhook run subprocess.
type rowhookProc struct {
	cmd    *exec.Cmd
	exited chan struct{}
	err    error
}

// startRowhook starts `bin run --config cfgPath`, its stderr appended to logs.
func startRowhook(t *testing.T, bin, cfgPath string, logs io.Writer) *rowhookProc {
	t.Helper()
	cmd := exec.Command(bin, "run", "--config", cfgPath)
	cmd.Stderr = logs
	cmd.Stdout = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &rowhookProc{cmd: cmd, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	return p
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *rowhookProc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// stop asks for a clean shutdown (SIGTERM) and waits up to 30s, then kills.
// It returns the exit error (nil on a clean stop).
func (p *rowhookProc) stop() error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return p.err
	case <-time.After(30 * time.Second):
		p.kill()
		return fmt.Errorf("rowhook did not stop within 30s of SIGTERM")
	}
}

// running reports whether the process has not exited.
func (p *rowhookProc) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// freeAddr returns a loopback address nothing listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// gtidSeq returns the sequence number of domain 0 in a MariaDB GTID or
// GTID set ("0-1-42" or "0-1-42,1-2-7").
// It returns 0 when the set has no domain 0.
func gtidSeq(set string) uint64 {
	for _, g := range strings.Split(set, ",") {
		parts := strings.Split(strings.TrimSpace(g), "-")
		if len(parts) == 3 && parts[0] == "0" {
			n, _ := strconv.ParseUint(parts[2], 10, 64)
			return n
		}
	}
	return 0
}

// writtenTx is one committed source transaction: its GTID sequence number
// and how many of its row changes the rule matches.
type writtenTx struct {
	seq      uint64
	matching int
}

// crashWorkload writes a stream of row changes into orders(id, version,
// skip, amount) with batched SQL: multi-row inserts, range updates and
// multi-statement transactions. Rows with skip = 1 do not match the rule.
// It records every transaction's GTID and the (row, version) pairs that
// must be delivered.
type crashWorkload struct {
	rng     *rand.Rand
	nextID  int64
	version []int64 // index id-1 → current version
	changes int

	mu   sync.Mutex
	txs  []writtenTx
	want map[[2]int64]bool
}

func skipRow(id int64) bool { return id%7 == 0 }

// insertSQL inserts n new rows, noting the changes in pending.
func (w *crashWorkload) insertSQL(n int, pending *[][2]int64) string {
	var b strings.Builder
	b.WriteString("INSERT INTO orders (id, version, skip, amount) VALUES ")
	for i := 0; i < n; i++ {
		w.nextID++
		id := w.nextID
		w.version = append(w.version, 1)
		if i > 0 {
			b.WriteByte(',')
		}
		skip := 0
		if skipRow(id) {
			skip = 1
		}
		fmt.Fprintf(&b, "(%d,1,%d,%d.%02d)", id, skip, w.rng.IntN(10000), w.rng.IntN(100))
		*pending = append(*pending, [2]int64{id, 1})
	}
	w.changes += n
	return b.String()
}

// updateSQL bumps the version of up to n existing rows.
func (w *crashWorkload) updateSQL(n int, pending *[][2]int64) string {
	from := 1 + w.rng.Int64N(w.nextID)
	to := min(from+int64(n)-1, w.nextID)
	for id := from; id <= to; id++ {
		w.version[id-1]++
		*pending = append(*pending, [2]int64{id, w.version[id-1]})
	}
	w.changes += int(to - from + 1)
	return fmt.Sprintf("UPDATE orders SET version = version + 1, amount = amount + 1 WHERE id BETWEEN %d AND %d", from, to)
}

// step runs one source transaction on conn.
func (w *crashWorkload) step(ctx context.Context, conn *sql.Conn) error {
	var pending [][2]int64
	var stmts []string
	switch k := w.rng.IntN(100); {
	case k < 45 || w.nextID == 0:
		stmts = append(stmts, w.insertSQL(1+w.rng.IntN(40), &pending))
	case k < 80:
		stmts = append(stmts, w.updateSQL(1+w.rng.IntN(40), &pending))
	default:
		// A multi-statement transaction; it may update rows it inserted.
		stmts = append(stmts, w.insertSQL(1+w.rng.IntN(20), &pending), w.updateSQL(1+w.rng.IntN(20), &pending),
			w.insertSQL(1+w.rng.IntN(10), &pending))
	}
	if len(stmts) == 1 {
		if _, err := conn.ExecContext(ctx, stmts[0]); err != nil {
			return err
		}
	} else {
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		for _, s := range stmts {
			if _, err := tx.ExecContext(ctx, s); err != nil {
				tx.Rollback()
				return err
			}
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	var gtid string
	if err := conn.QueryRowContext(ctx, "SELECT @@last_gtid").Scan(&gtid); err != nil {
		return err
	}
	rec := writtenTx{seq: gtidSeq(gtid)}
	if rec.seq == 0 {
		return fmt.Errorf("no GTID in domain 0 after a transaction: @@last_gtid = %q", gtid)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, k := range pending {
		if !skipRow(k[0]) {
			rec.matching++
			w.want[k] = true
		}
	}
	w.txs = append(w.txs, rec)
	return nil
}

func (w *crashWorkload) snapshot() ([]writtenTx, map[[2]int64]bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.txs), w.want
}

// checkOutbox opens the state file of a stopped rowhook read-only and
// checks that the checkpoint is never ahead of the outbox: every recorded
// transaction at or before the checkpoint's GTID has all its matching
// changes stored as deliveries (event ids start with the GTID). It returns
// the checkpoint's sequence number and the number of stored deliveries.
func checkOutbox(t *testing.T, statePath string, txs []writtenTx) (cpSeq uint64, stored int) {
	t.Helper()
	if _, err := os.Stat(statePath); os.IsNotExist(err) {
		return 0, 0 // killed before the store was created
	}
	st, err := sqlitestore.Open(statePath, sqlitestore.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("open %s read-only after SIGKILL: %v", statePath, err)
	}
	defer st.Close()
	cp, ok, err := st.Checkpoint(context.Background())
	if err != nil {
		t.Fatalf("read checkpoint of %s: %v", statePath, err)
	}
	if !ok {
		return 0, 0
	}
	cpSeq = gtidSeq(cp.GTIDSet)
	perTx := map[uint64]int{}
	for _, d := range outbox(t, statePath) {
		stored++
		gtid, _, _ := strings.Cut(d.EventID, ":")
		perTx[gtidSeq(gtid)]++
	}
	bad := 0
	for _, tx := range txs {
		if tx.seq <= cpSeq && perTx[tx.seq] != tx.matching {
			bad++
			if bad <= 5 {
				t.Errorf("checkpoint %s is ahead of the outbox: transaction 0-1-%d has %d deliveries stored, want %d",
					cp.GTIDSet, tx.seq, perTx[tx.seq], tx.matching)
			}
		}
	}
	return cpSeq, stored
}

// SIGKILL rowhook at random moments while a stream of row changes (multi-
// row inserts, range updates, multi-statement transactions) goes in; after
// each kill the state file is checked read-only (the checkpoint is never
// ahead of the outbox) and rowhook restarted. Every matching change (row
// and version) must be delivered, a change delivered twice only with the
// same webhook-id, and nothing that does not match.
//
// The binary is built without -race: with it, 100,000 deliveries through a
// process restarted 20 times do not fit the package's time budget on two
// cores (the race detector slows rowhook about tenfold). The other fault
// tests, and the rest of the package, run rowhook with -race.
func TestRun_SurvivesSIGKILL(t *testing.T) {
	wantChanges, wantKills := 100_000, 20
	writeRate := 5000.0 // changes per second
	if longFaults() {
		wantChanges, wantKills = 200_000, 100
	}
	bin := buildRowhookBinary(t, false)
	s := mariadbtest.New(t, mariadbtest.Options{})
	schema, db := s.NewSchema(t)
	if _, err := db.Exec("CREATE TABLE orders (id BIGINT PRIMARY KEY, version INT NOT NULL, skip TINYINT NOT NULL, amount DECIMAL(10,2))"); err != nil {
		t.Fatal(err)
	}
	recv := &testReceiver{}
	hs := httptest.NewServer(recv)
	t.Cleanup(hs.Close)

	var start string
	if err := s.DB().QueryRow("SELECT @@gtid_binlog_pos").Scan(&start); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfgPath := writeConfig(t, dir, fmt.Sprintf(`
source:
  dsn: %s
  include: ['%s.*']
  start: 'gtid:%s'
  heartbeat: 1s
  max_backoff: 500ms
http:
  listen: %s
state:
  path: state.db
rules:
  - name: every-order
    table: %s.orders
    on: [insert, update]
    when: 'row.skip == 0'
    event: RowChanged
    webhooks: [sink]
webhooks:
  sink:
    url: %s/orders
    concurrency: 16
    retry: { max_attempts: 20, initial_interval: 50ms, max_interval: 500ms }
`, s.URL(), schema, start, freeAddr(t), schema, hs.URL))
	statePath := filepath.Join(dir, "state.db")

	logs := &syncWriter{}
	proc := startRowhook(t, bin, cfgPath, logs)
	t.Cleanup(func() {
		if proc.running() {
			proc.kill()
		}
	})

	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	w := &crashWorkload{rng: rand.New(rand.NewPCG(seed, 2)), want: map[[2]int64]bool{}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	writerDone := make(chan error, 1)
	began := time.Now()
	var wrote time.Duration
	go func() {
		// Paced, so that the stream lasts through the kills.
		for w.changes < wantChanges {
			if err := w.step(ctx, conn); err != nil {
				writerDone <- fmt.Errorf("workload: %w", err)
				return
			}
			if ahead := time.Duration(float64(w.changes)/writeRate*float64(time.Second)) - time.Since(began); ahead > 0 {
				time.Sleep(ahead)
			}
		}
		wrote = time.Since(began)
		writerDone <- nil
	}()

	kills, checked := 0, 0
	var writerErr error
	writing := true
	rng := rand.New(rand.NewPCG(seed, 1))
	for kills < wantKills {
		time.Sleep(time.Duration(100+rng.IntN(900)) * time.Millisecond)
		proc.kill()
		kills++
		if !proc.running() && proc.err != nil && !strings.Contains(proc.err.Error(), "killed") {
			t.Fatalf("rowhook exited on its own before kill %d: %v\n%s", kills, proc.err, logs.String())
		}
		txs, _ := w.snapshot()
		cpSeq, _ := checkOutbox(t, statePath, txs)
		if cpSeq > 0 {
			checked++
		}
		if t.Failed() {
			t.Fatalf("after kill %d:\n%s", kills, logs.String())
		}
		proc = startRowhook(t, bin, cfgPath, logs)
		if writing {
			select {
			case writerErr = <-writerDone:
				writing = false
			default:
			}
		}
	}
	killsDone := time.Since(began)
	if writing {
		writerErr = <-writerDone
	}
	if writerErr != nil {
		t.Fatal(writerErr)
	}
	txs, want := w.snapshot()
	deadline := time.Now().Add(3 * time.Minute)
	for recv.distinctVersions() < len(want) {
		if time.Now().After(deadline) || !proc.running() {
			t.Logf("rowhook logs:\n%s", logs.String())
			t.Fatalf("delivered %d distinct changes of %d after %d SIGKILLs (rowhook running: %v)", recv.distinctVersions(), len(want), kills, proc.running())
		}
		time.Sleep(100 * time.Millisecond)
	}
	delivered := time.Since(began)
	if err := proc.stop(); err != nil {
		t.Errorf("rowhook stop: %v\n%s", err, logs.String())
	}
	cpSeq, stored := checkOutbox(t, statePath, txs)
	if last := txs[len(txs)-1].seq; cpSeq < last {
		t.Errorf("after a clean stop the checkpoint is at 0-1-%d, before the last transaction 0-1-%d", cpSeq, last)
	}
	if stored != len(want) {
		t.Errorf("outbox holds %d deliveries, want %d (one per matching change)", stored, len(want))
	}
	dups := recv.check(t, want)
	t.Logf("%d row changes in %d transactions written in %s (%.0f changes/s); %d match the rule",
		w.changes, len(txs), wrote.Round(time.Millisecond), float64(w.changes)/wrote.Seconds(), len(want))
	t.Logf("%d SIGKILLs in %s (outbox checked read-only after %d of them); all %d matching changes delivered after %s (%.0f deliveries/s overall); %d redeliveries, all with the same webhook-id",
		kills, killsDone.Round(time.Millisecond), checked, len(want), delivered.Round(time.Millisecond), float64(len(want))/delivered.Seconds(), dups)
}

// outbox returns every delivery of the SQLite state file at path, rows
// and segments alike, read through the store from a copy of the file
// (reading expands segments: the file itself stays as the killed process
// left it).
func outbox(t *testing.T, path string) []dispatch.Delivery {
	t.Helper()
	dir := t.TempDir()
	cp := filepath.Join(dir, "state.db")
	for _, suffix := range []string{"", "-wal"} {
		b, err := os.ReadFile(path + suffix)
		if os.IsNotExist(err) && suffix != "" {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(cp+suffix, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	st, err := sqlitestore.Open(cp, sqlitestore.Options{})
	if err != nil {
		t.Fatalf("open a copy of %s: %v", path, err)
	}
	defer st.Close()
	var out []dispatch.Delivery
	f := dispatch.Filter{Limit: 10_000}
	for {
		ds, err := st.List(context.Background(), f)
		if err != nil {
			t.Fatalf("read outbox of %s: %v", path, err)
		}
		if len(ds) == 0 {
			return out
		}
		out = append(out, ds...)
		f.AfterSeq = ds[len(ds)-1].Seq
	}
}
