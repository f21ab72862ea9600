package cdc

import (
	"context"
	crand "crypto/rand"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
	mysqldriver "github.com/go-sql-driver/mysql" // the metadata connection's driver
	pingcap "github.com/pingcap/errors"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rowhook/rowhook/internal/backoff"
)

// More sentinels; see also decoder.go.
var (
	// ErrPurged: the requested position is older than the oldest binlog
	// the source still has. Always wrapped in a *PurgedError.
	ErrPurged = errors.New("cdc: binlog purged")
	// ErrSource: the source refused the replication request for a reason
	// retrying will not fix (unknown GTID, bad file name, access denied or
	// a missing REPLICATION SLAVE grant, no binlog dump at that address).
	ErrSource = errors.New("cdc: source refused replication")
)

// Handler consumes what the reader reads.
type Handler interface {
	// HandleTransaction is called for each committed transaction, in binlog
	// order, including transactions with no (matching) changes. It must
	// return only once the transaction's effects are durable if it persists
	// checkpoints. An error stops the reader and is returned by Run.
	HandleTransaction(ctx context.Context, tx *Transaction) error
	// HandleIdle is called when the source has nothing more to send (a
	// heartbeat arrived between transactions), with the wall clock.
	HandleIdle(ctx context.Context, now time.Time) error
}

// ConnectHandler is a Handler that checks the source on every (re)connection
// of the binlog stream (a server restarted with other settings comes back as
// a reconnection).
type ConnectHandler interface {
	// HandleConnect is called each time the stream (re)connects, before
	// anything read on that connection is handled. An error stops the
	// reader and is returned by Run, as a HandleTransaction error is.
	HandleConnect(ctx context.Context) error
}

// HandlerFunc adapts a function to Handler; idle notifications are ignored.
type HandlerFunc func(ctx context.Context, tx *Transaction) error

// HandleTransaction calls f.
func (f HandlerFunc) HandleTransaction(ctx context.Context, tx *Transaction) error { return f(ctx, tx) }

// HandleIdle does nothing.
func (f HandlerFunc) HandleIdle(context.Context, time.Time) error { return nil }

// Deps are the reader's collaborators.
type Deps struct {
	// Logger receives the reader's logs; nil discards them.
	Logger *slog.Logger
	// Registerer receives the reader's metrics; nil registers none.
	Registerer prometheus.Registerer
}

// Reader reads a source's binlog and hands committed transactions to a
// Handler. Create it with New and start it with Run.
type Reader struct {
	cfg    Config
	src    Source
	filter Filter
	logger *slog.Logger
	m      *metrics

	dbOnce sync.Once
	db     *sql.DB
	dbErr  error

	mu         sync.Mutex
	flavor     string
	pos        Checkpoint
	lastEvent  time.Time // commit timestamp of the last event read
	idleAt     time.Time // wall clock of the last heartbeat while caught up
	caughtUp   bool
	connected  bool
	serverID   uint32
	inspection *Inspection
}

// New validates cfg and returns a reader. It does not connect.
func New(cfg Config, deps Deps) (*Reader, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	src, err := ParseDSN(cfg.DSN)
	if err != nil {
		return nil, err
	}
	logger := deps.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &Reader{
		cfg:    cfg,
		src:    src,
		filter: NewFilter(cfg.Include, cfg.Exclude),
		logger: logger.With("component", "cdc"),
		flavor: cfg.Flavor,
	}
	r.serverID = cfg.ServerID
	if r.serverID == 0 {
		// A random id in the upper half: two rowhook processes (run and tail)
		// must not share one, or the source disconnects the older.
		var b [4]byte
		_, _ = crand.Read(b[:])
		r.serverID = 1<<31 | binary.LittleEndian.Uint32(b[:])&0x7ffffffe
	}
	r.m = newMetrics(deps.Registerer, r)
	return r, nil
}

// Close releases the metadata connection.
func (r *Reader) Close() error {
	if r.db != nil {
		return r.db.Close()
	}
	return nil
}

// DB returns the metadata connection pool to the source (opened on first
// use), for read-only lookups by other components.
func (r *Reader) DB() (*sql.DB, error) {
	r.dbOnce.Do(func() {
		r.db, r.dbErr = sql.Open("mysql", r.src.DriverDSN(""))
		if r.dbErr == nil {
			r.db.SetMaxOpenConns(4)
			r.db.SetConnMaxIdleTime(time.Minute)
		}
	})
	return r.db, r.dbErr
}

// Source returns the parsed source address.
func (r *Reader) Source() Source { return r.src }

// Position returns the checkpoint after the last transaction handed to the
// handler (or the start position before any).
func (r *Reader) Position() Checkpoint {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pos
}

// Connected reports whether the binlog stream is up.
func (r *Reader) Connected() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.connected
}

// Lag is how far behind the source the reader is: the wall clock minus the
// commit time of the last event read, or 0 when the source is idle and every
// event has been read (the last thing received was a heartbeat). Heartbeats
// carry no timestamp and are never used as one.
func (r *Reader) Lag() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lagLocked(time.Now())
}

func (r *Reader) lagLocked(now time.Time) time.Duration {
	if r.caughtUp && r.connected && now.Sub(r.idleAt) < 2*r.cfg.Heartbeat+time.Second {
		return 0
	}
	if r.lastEvent.IsZero() {
		return 0
	}
	lag := now.Sub(r.lastEvent)
	if lag < 0 {
		return 0
	}
	return lag
}

// Run reads the binlog from `from` (the zero Checkpoint: the configured
// start) and hands every committed transaction to h, reconnecting with
// capped backoff when the connection drops and always resuming after the
// last complete transaction, and skipping transactions the checkpoint
// already covers should the source send them again. It returns nil when ctx
// is cancelled, and an error when h fails, the position was purged, or the
// source refuses in a way reconnecting cannot fix (ErrSource).
func (r *Reader) Run(ctx context.Context, from Checkpoint, h Handler) error {
	insp, err := r.Inspect(ctx)
	if err != nil {
		return err
	}
	for _, w := range insp.Warnings {
		r.logger.Warn(w)
	}
	pos := from
	if pos.IsZero() {
		pos, err = r.resolveStart(ctx)
		if err != nil {
			return err
		}
	} else if pos.Flavor != "" && pos.Flavor != insp.Flavor {
		return fmt.Errorf("cdc: checkpoint is for a %s source but %s is %s", pos.Flavor, r.src.Redacted(), insp.Flavor)
	}
	pos.Flavor = insp.Flavor
	r.mu.Lock()
	r.pos = pos
	r.mu.Unlock()
	r.logger.Info("reading binlog", "source", r.src.Redacted(), "flavor", insp.Flavor, "from", pos.String(), "server_id", r.serverID)

	failures := 0
	for {
		progressed, err := r.stream(ctx, h)
		if ctx.Err() != nil {
			return nil
		}
		var he *handlerError
		if errors.As(err, &he) {
			return he.err
		}
		if errors.Is(err, ErrPurged) || errors.Is(err, ErrSource) || errors.Is(err, ErrDecode) ||
			errors.Is(err, ErrNoColumnNames) || errors.Is(err, ErrColumnCount) {
			return err
		}
		if progressed {
			failures = 0
		}
		failures++
		if r.cfg.MaxReconnects > 0 && failures > r.cfg.MaxReconnects {
			return fmt.Errorf("cdc: binlog connection to %s failed %d times in a row: %w", r.src.Redacted(), failures, err)
		}
		wait := reconnectWait(failures, r.cfg.MaxBackoff)
		r.m.reconnects.Inc()
		// The error as one line: logged as a value, go-mysql's traced
		// errors print their stack.
		r.logger.Warn("binlog connection lost; reconnecting", "error", oneLine(err), "attempt", failures, "wait", wait.String(), "resume_at", r.Position().String())
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// reconnectWait is the wait before reconnection attempt n: 200ms doubling
// up to max (default 30s), with equal jitter.
func reconnectWait(attempt int, max time.Duration) time.Duration {
	if max <= 0 {
		max = 30 * time.Second
	}
	return backoff.EqualJitter(backoff.Exponential(attempt, 200*time.Millisecond, max), rand.Float64())
}

type handlerError struct{ err error }

func (e *handlerError) Error() string { return e.err.Error() }

// stream runs one connection until it fails or ctx ends. progressed reports
// whether at least one transaction was handled.
func (r *Reader) stream(ctx context.Context, h Handler) (progressed bool, err error) {
	pos := r.Position()
	flavor := pos.Flavor
	wd := newWatchdog(r.cfg.ReadTimeout)
	defer wd.close()
	st := &streamState{r: r, ctx: ctx, h: h}
	syncer := replication.NewBinlogSyncer(r.syncerConfig(flavor, wd, st))
	// Close waits for go-mysql's reading goroutine, where st runs: st is
	// read below only after it.
	defer syncer.Close()

	var db *sql.DB
	if db, err = r.DB(); err != nil {
		return false, err
	}
	st.dec, err = NewDecoder(DecoderConfig{
		Flavor:               flavor,
		Filter:               r.filter,
		Schema:               newDBSchema(db),
		AllowMissingMetadata: r.cfg.AllowMissingMetadata,
		Logger:               r.logger,
	}, pos.File, pos.GTIDSet)
	if err != nil {
		return false, err
	}
	// Defence in depth: a source that ignores the requested GTID position
	// sends again what the checkpoint covers.
	st.dec.skipApplied = true

	streamer, err := r.startSync(ctx, syncer, pos)
	if err != nil {
		return false, err
	}
	if ch, ok := h.(ConnectHandler); ok {
		if err := ch.HandleConnect(ctx); err != nil {
			if ctx.Err() != nil {
				return false, ctx.Err()
			}
			return false, &handlerError{err}
		}
	}
	r.setConnected(true)
	r.m.connected.Set(1)
	defer func() {
		r.setConnected(false)
		r.m.connected.Set(0)
	}()

	// Events are handled on go-mysql's reading goroutine (st.HandleEvent);
	// the stream only reports how it ended.
	_, err = streamer.GetEvent(ctx)
	syncer.Close()
	r.endResent(&st.resent)
	progressed = st.progressed
	switch {
	case st.err != nil:
		return progressed, st.err
	case ctx.Err() != nil:
		return progressed, ctx.Err()
	case err == nil:
		return progressed, fmt.Errorf("%w: the binlog stream sent an event to an unread channel", ErrSource)
	}
	if serr := wd.stalled(); serr != nil {
		return progressed, serr
	}
	return progressed, r.classify(ctx, err, r.Position())
}

// streamState handles one connection's events, synchronously on the
// goroutine go-mysql reads them on (BinlogSyncerConfig.
// SynchronousEventHandler). Handing each event to the reader through
// go-mysql's channel cost a select, a goroutine switch and a lock per
// event, about a fifth of the CPU of a one-row transaction (rowhook bench
// --only pertx, docs/benchmarks.md). Its fields are the stream's: read by
// stream only after the syncer has closed.
type streamState struct {
	r          *Reader
	ctx        context.Context
	h          Handler
	dec        *Decoder
	resent     resentRun
	progressed bool
	// err is why the stream stopped, when the handler stopped it: go-mysql
	// wraps what HandleEvent returns, which would lose its type.
	err error
}

// HandleEvent implements replication.EventHandler.
func (st *streamState) HandleEvent(ev *replication.BinlogEvent) error {
	if err := st.handle(ev); err != nil {
		st.err = err
		return err
	}
	return nil
}

func (st *streamState) handle(ev *replication.BinlogEvent) error {
	r, ctx, h, dec := st.r, st.ctx, st.h, st.dec
	r.m.events.Inc()
	r.m.bytes.Add(float64(len(ev.RawData)))
	if ev.Header.EventType == replication.HEARTBEAT_EVENT || ev.Header.EventType == replication.HEARTBEAT_LOG_EVENT_V2 {
		if !dec.InTransaction() {
			now := time.Now()
			r.mu.Lock()
			r.caughtUp, r.idleAt = true, now
			r.mu.Unlock()
			if err := h.HandleIdle(ctx, now); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return &handlerError{err}
			}
		}
		return nil
	}
	if ev.Header.Timestamp != 0 && ev.Header.LogPos != 0 {
		r.mu.Lock()
		r.caughtUp = false
		r.lastEvent = time.Unix(int64(ev.Header.Timestamp), 0)
		r.mu.Unlock()
	}
	tx, err := dec.Handle(ev)
	if err != nil || tx == nil {
		return err
	}
	if tx.applied {
		r.skipResent(&st.resent, tx)
		return nil
	}
	r.endResent(&st.resent)
	for i := range tx.Changes {
		r.m.rowsByOp[tx.Changes[i].Op].Inc()
	}
	r.m.transactions.Inc()
	if err := h.HandleTransaction(ctx, tx); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &handlerError{err}
	}
	st.progressed = true
	r.mu.Lock()
	r.pos = tx.Checkpoint
	r.mu.Unlock()
	return nil
}

// syncerConfig is the replication connection Run reads with. Its reads are
// watched by wd (source.read_timeout), not by go-mysql's ReadTimeout.
func (r *Reader) syncerConfig(flavor string, wd *watchdog, h replication.EventHandler) replication.BinlogSyncerConfig {
	scfg := replication.BinlogSyncerConfig{
		ServerID:                r.serverID,
		Flavor:                  flavor,
		Host:                    r.src.Host,
		Port:                    r.src.Port,
		User:                    r.src.User,
		Password:                r.src.Password,
		TimestampStringLocation: time.UTC,
		HeartbeatPeriod:         r.cfg.Heartbeat,
		Dialer:                  wd.Dial,
		DisableRetrySync:        true,
		// With a handler (stream), events are handled as go-mysql parses
		// them and nothing is buffered. Without one (CheckResume), go-mysql
		// parses ahead into a channel of this many events (default 10,240,
		// which while catching up held over a gigabyte of decoded rows:
		// rowhook bench --only rss, docs/benchmarks.md).
		EventCacheCount: 256,
		// rowhook keeps its own GTID set (Decoder); go-mysql's copy of it
		// on every commit event would be thrown away.
		DiscardGTIDSet:          true,
		SynchronousEventHandler: h,
		Logger:                  slog.New(&goMySQLLog{h: r.logger.With("component", "go-mysql").Handler()}),
	}
	if flavor == mysql.MariaDBFlavor {
		scfg.DumpCommandFlag |= replication.BINLOG_SEND_ANNOTATE_ROWS_EVENT
	}
	// Rows of filtered tables are not decoded (only the header is read);
	// the rest go through the fast row decoder (rowdecode.go), which hands
	// what it does not handle to go-mysql.
	var fast *rowDecoder
	if fastRowDecoding {
		fast = newRowDecoder()
	}
	scfg.RowsEventDecodeFunc = rowsDecodeFunc(r.filter, fast)
	return scfg
}

// startSync asks the source for its binlog from pos: by GTID set when pos
// has one, else by file and offset.
func (r *Reader) startSync(ctx context.Context, syncer *replication.BinlogSyncer, pos Checkpoint) (*replication.BinlogStreamer, error) {
	var streamer *replication.BinlogStreamer
	var err error
	if pos.GTIDSet != "" {
		// Parse afresh: StartSyncGTID mutates the set it is given.
		gs, perr := mysql.ParseGTIDSet(pos.Flavor, pos.GTIDSet)
		if perr != nil {
			return nil, fmt.Errorf("%w: bad GTID set %q: %v", ErrSource, pos.GTIDSet, perr)
		}
		streamer, err = syncer.StartSyncGTID(gs)
	} else {
		if perr := r.checkFileExists(ctx, pos); perr != nil {
			return nil, r.classify(ctx, perr, pos)
		}
		streamer, err = syncer.StartSync(mysql.Position{Name: pos.File, Pos: pos.Pos})
	}
	if err != nil {
		return nil, r.classify(ctx, err, pos)
	}
	return streamer, nil
}

func (r *Reader) setConnected(v bool) {
	r.mu.Lock()
	r.connected = v
	r.mu.Unlock()
}

// classify turns a stream error into a purged / refused error where the
// source says so; anything else is a connection problem worth retrying.
func (r *Reader) classify(ctx context.Context, err error, pos Checkpoint) error {
	code, msg, ok := serverError(err)
	if !ok {
		return err
	}
	switch code {
	case mysql.ER_MASTER_FATAL_ERROR_READING_BINLOG:
		lower := strings.ToLower(msg)
		if strings.Contains(lower, "purged") || strings.Contains(lower, "could not find first log file") || strings.Contains(lower, "could not find gtid state") {
			return r.purgedError(ctx, pos, errors.New(msg))
		}
		return fmt.Errorf("%w: %s (reading from %s): %s", ErrSource, r.src.Redacted(), pos.String(), msg)
	case mysql.ER_ACCESS_DENIED_ERROR, mysql.ER_SPECIFIC_ACCESS_DENIED_ERROR:
		return r.accessError(ctx, code, msg)
	case mysql.ER_UNKNOWN_COM_ERROR:
		return fmt.Errorf("%w: %s answered the binlog dump with ERROR %d (%s): it does not serve replication, which a proxy (ProxySQL, MaxScale's readwritesplit, a cloud database gateway) answers so; point source.dsn at the MariaDB/MySQL server itself or at a replica with log_bin on",
			ErrSource, r.src.Redacted(), code, msg)
	}
	return err
}

// serverError returns the server's error number and message carried by err,
// from go-mysql (the binlog connection) or go-sql-driver (the metadata one).
func serverError(err error) (code uint16, msg string, ok bool) {
	var me *mysql.MyError
	if errors.As(err, &me) {
		return me.Code, me.Message, true
	}
	if c, ok := pingcap.Cause(err).(*mysql.MyError); ok {
		return c.Code, c.Message, true
	}
	var de *mysqldriver.MySQLError
	if errors.As(err, &de) {
		return de.Number, de.Message, true
	}
	return 0, "", false
}

// accessError explains an access denial on the binlog connection. The
// server answers a missing REPLICATION SLAVE with the same ERROR 1045 as a
// wrong password (MariaDB, at COM_REGISTER_SLAVE); a fresh login tells them
// apart.
func (r *Reader) accessError(ctx context.Context, code uint16, msg string) error {
	if code == mysql.ER_ACCESS_DENIED_ERROR && !r.canLogIn(ctx) {
		return fmt.Errorf("%w: %s refuses to log in user %q (ERROR %d: %s): check the user, password and host in source.dsn, and that the account exists on the source",
			ErrSource, r.src.Redacted(), r.src.User, code, msg)
	}
	monitor := "BINLOG MONITOR"
	if r.Position().Flavor == mysql.MySQLFlavor {
		monitor = "REPLICATION CLIENT"
	}
	return fmt.Errorf("%w: %s denied user %q the binlog (ERROR %d: %s): reading it needs the REPLICATION SLAVE and %s privileges, granted to the user or to its default role: run GRANT REPLICATION SLAVE, %s, SELECT ON *.* TO '%s'@'%%' (adjust the host) on the source",
		ErrSource, r.src.Redacted(), r.src.User, code, msg, monitor, monitor, r.src.User)
}

// canLogIn reports whether a new session can log in with source.dsn; false
// only when the server refuses the login itself.
func (r *Reader) canLogIn(ctx context.Context) bool {
	db, err := sql.Open("mysql", r.src.DriverDSN(""))
	if err != nil {
		return true
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err = db.PingContext(ctx)
	code, _, ok := serverError(err)
	return !ok || code != mysql.ER_ACCESS_DENIED_ERROR
}

// oneLine renders err for a log line: its message without line breaks.
func oneLine(err error) string {
	if err == nil {
		return ""
	}
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", " | ")), " ")
}

// PurgedError says that the binlog needed to resume is gone.
type PurgedError struct {
	// Requested is the position rowhook asked for.
	Requested Checkpoint
	// OldestFile and OldestGTID describe the oldest binlog still on the
	// source (OldestGTID: the GTID state at its start, MariaDB).
	OldestFile string
	OldestGTID string
	// Cause is the server's message.
	Cause string
}

func (e *PurgedError) Error() string {
	oldest := e.OldestFile
	if e.OldestGTID != "" {
		oldest += " (starting after GTID " + e.OldestGTID + ")"
	}
	if oldest == "" {
		oldest = "unknown"
	}
	return fmt.Sprintf("cdc: binlog purged: resume position %s is older than the oldest binlog on the source, %s; the changes in between are no longer available (source said: %s). "+
		"Recover by choosing a new start position and discarding the checkpoint: "+
		"start earliest (everything the source still has), start current (from now on), or gtid:SET / file:NAME:POS; "+
		"changes in the gap can be re-read from archived binlog files with 'rowhook replay --binlog FILE'",
		e.Requested.String(), oldest, e.Cause)
}

// Unwrap makes errors.Is(err, ErrPurged) true.
func (e *PurgedError) Unwrap() error { return ErrPurged }

func (r *Reader) purgedError(ctx context.Context, pos Checkpoint, cause error) error {
	pe := &PurgedError{Requested: pos}
	if cause != nil {
		pe.Cause = cause.Error()
	}
	if logs, err := r.binaryLogs(ctx); err == nil && len(logs) > 0 {
		pe.OldestFile = logs[0]
		if db, err := r.DB(); err == nil {
			rows, err := db.QueryContext(ctx, "/* rowhook */ SHOW BINLOG EVENTS IN '"+strings.ReplaceAll(logs[0], "'", "")+"' LIMIT 5")
			if err == nil {
				cols, _ := rows.Columns()
				for rows.Next() {
					vals := make([]sql.NullString, len(cols))
					ptrs := make([]any, len(cols))
					for i := range vals {
						ptrs[i] = &vals[i]
					}
					if rows.Scan(ptrs...) != nil {
						break
					}
					// Log_name, Pos, Event_type, Server_id, End_log_pos, Info
					if len(vals) >= 6 && (vals[2].String == "Gtid_list" || vals[2].String == "Previous_gtids") {
						pe.OldestGTID = strings.Trim(vals[5].String, "[]")
					}
				}
				rows.Close()
			}
		}
	}
	return pe
}

func (r *Reader) binaryLogs(ctx context.Context) ([]string, error) {
	db, err := r.DB()
	if err != nil {
		return nil, err
	}
	rows, err := db.QueryContext(ctx, "/* rowhook */ SHOW BINARY LOGS")
	if err != nil {
		return nil, fmt.Errorf("show binary logs: %w", err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, fmt.Errorf("show binary logs: %w", err)
		}
		out = append(out, vals[0].String)
	}
	return out, rows.Err()
}

func (r *Reader) checkFileExists(ctx context.Context, pos Checkpoint) error {
	logs, err := r.binaryLogs(ctx)
	if err != nil {
		return err
	}
	for _, l := range logs {
		if l == pos.File {
			return nil
		}
	}
	if len(logs) > 0 && pos.File < logs[0] {
		return r.purgedError(ctx, pos, errors.New("binlog file "+pos.File+" is not on the source"))
	}
	return fmt.Errorf("%w: binlog file %s is not on %s (it has %s … %s)", ErrSource, pos.File, r.src.Redacted(), first(logs), last(logs))
}

func first(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return s[0]
}

func last(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return s[len(s)-1]
}

// resolveStart turns the configured start into a checkpoint.
func (r *Reader) resolveStart(ctx context.Context) (Checkpoint, error) {
	st, err := ParseStart(r.cfg.Start)
	if err != nil {
		return Checkpoint{}, err
	}
	db, err := r.DB()
	if err != nil {
		return Checkpoint{}, err
	}
	r.mu.Lock()
	flavor := r.flavor
	r.mu.Unlock()
	cp := Checkpoint{Flavor: flavor}
	switch st.Kind {
	case StartGTID:
		if _, err := mysql.ParseGTIDSet(flavor, st.GTID); err != nil {
			return cp, fmt.Errorf("cdc: start gtid:%s is not a %s GTID set: %v", st.GTID, flavor, err)
		}
		cp.GTIDSet = st.GTID
	case StartFile:
		cp.File, cp.Pos = st.File, st.Pos
	case StartEarliest:
		logs, err := r.binaryLogs(ctx)
		if err != nil {
			return cp, err
		}
		if len(logs) == 0 {
			return cp, fmt.Errorf("%w: %s has no binary logs: is log_bin on?", ErrSource, r.src.Redacted())
		}
		cp.File, cp.Pos = logs[0], 4
	case StartCurrent:
		file, pos, err := masterStatus(ctx, db)
		if err != nil {
			return cp, err
		}
		cp.File, cp.Pos = file, pos
		var gtid sql.NullString
		q := "SELECT @@gtid_binlog_pos"
		if flavor == mysql.MySQLFlavor {
			q = "SELECT IF(@@gtid_mode = 'ON', @@gtid_executed, '')"
		}
		if err := db.QueryRowContext(ctx, "/* rowhook */ "+q).Scan(&gtid); err != nil {
			return cp, fmt.Errorf("cdc: read current GTID position: %w", err)
		}
		// An empty set on MariaDB would mean "from the beginning": keep the
		// file position instead.
		cp.GTIDSet = strings.ReplaceAll(gtid.String, "\n", "")
	}
	return cp, nil
}

func masterStatus(ctx context.Context, db *sql.DB) (string, uint32, error) {
	rows, err := db.QueryContext(ctx, "/* rowhook */ SHOW MASTER STATUS")
	if err != nil {
		return "", 0, fmt.Errorf("show master status: %w", err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	if !rows.Next() {
		return "", 0, fmt.Errorf("%w: SHOW MASTER STATUS returned nothing: binary logging is off on the source (set log_bin)", ErrSource)
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return "", 0, fmt.Errorf("show master status: %w", err)
	}
	var pos uint32
	fmt.Sscan(vals[1].String, &pos)
	return vals[0].String, pos, nil
}

// resentRun is a run of transactions the source sent although the
// checkpoint covers them: logged when it starts and, counted, when it ends.
type resentRun struct {
	n           int
	first, last string
}

func (r *Reader) skipResent(run *resentRun, tx *Transaction) {
	r.m.skippedApplied.Inc()
	if run.n == 0 {
		run.first = tx.GTID
		r.logger.Warn("the source sent transactions the checkpoint already covers (did it ignore the requested GTID position?); skipping them",
			"gtid", tx.GTID, "checkpoint", r.Position().GTIDSet)
	}
	run.n++
	run.last = tx.GTID
}

func (r *Reader) endResent(run *resentRun) {
	if run.n == 0 {
		return
	}
	r.logger.Warn("skipped transactions the checkpoint already covers", "count", run.n, "first_gtid", run.first, "last_gtid", run.last)
	*run = resentRun{}
}

// goMySQLLog adapts go-mysql's logs to rowhook's. Its info chatter (each
// connection, rotation, close) goes to debug. Errors it also hands to the
// reader, which logs them once where it handles them, go to debug too: the
// stream's read error, "retry sync is disabled" (rowhook retries itself),
// and the KILL of a dump connection the server already ended (ERROR 1094)
// that Close sends. Other errors of go-mysql's do not stop rowhook and are
// warnings. Error values become one line: logged as values, go-mysql's traced
// errors print their stack.
type goMySQLLog struct{ h slog.Handler }

func (g *goMySQLLog) Enabled(ctx context.Context, l slog.Level) bool {
	return g.h.Enabled(ctx, slog.LevelDebug) || (l >= slog.LevelWarn && g.h.Enabled(ctx, slog.LevelWarn))
}

func (g *goMySQLLog) Handle(ctx context.Context, rec slog.Record) error {
	level := g.level(rec)
	if !g.h.Enabled(ctx, level) {
		return nil
	}
	out := slog.NewRecord(rec.Time, level, rec.Message, rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		if err, ok := a.Value.Any().(error); ok {
			a = slog.String(a.Key, oneLine(err))
		}
		out.AddAttrs(a)
		return true
	})
	return g.h.Handle(ctx, out)
}

func (g *goMySQLLog) level(rec slog.Record) slog.Level {
	if rec.Level < slog.LevelWarn {
		return slog.LevelDebug
	}
	switch rec.Message {
	case "retry sync is disabled":
		return slog.LevelDebug
	case "kill connection":
		gone := false
		rec.Attrs(func(a slog.Attr) bool {
			if err, ok := a.Value.Any().(error); ok {
				code, _, ok := serverError(err)
				gone = gone || (ok && code == mysql.ER_NO_SUCH_THREAD) || mysql.ErrorCode(err.Error()) == mysql.ER_NO_SUCH_THREAD
			}
			return true
		})
		if gone {
			return slog.LevelDebug
		}
	case "invalid stream header":
		return slog.LevelWarn
	}
	if rec.Level >= slog.LevelError && rec.PC != 0 {
		// onStream logs the read error it then hands to the reader.
		fr, _ := runtime.CallersFrames([]uintptr{rec.PC}).Next()
		if strings.HasSuffix(fr.Function, "(*BinlogSyncer).onStream") {
			return slog.LevelDebug
		}
	}
	return slog.LevelWarn
}

func (g *goMySQLLog) WithAttrs(a []slog.Attr) slog.Handler {
	return &goMySQLLog{h: g.h.WithAttrs(a)}
}

func (g *goMySQLLog) WithGroup(n string) slog.Handler {
	return &goMySQLLog{h: g.h.WithGroup(n)}
}
