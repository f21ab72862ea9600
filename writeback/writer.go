package writeback

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"
	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/internal/mysqldsn"
	"github.com/rowhook/rowhook/internal/yamlconf"
)

// Deps are the Writer's collaborators.
type Deps struct {
	// Logger receives start-up decisions and per-writeback debug lines; nil
	// discards them. Values written are never logged.
	Logger *slog.Logger
	// Registerer receives the writeback metrics; nil means no metrics.
	Registerer prometheus.Registerer
	// ReplicaDSN is the server rowhook reads the binlog from (the `source:`
	// DSN), checked at start-up and by Recheck for keeping statement
	// annotations. Empty means unknown: mode auto then uses the marker table.
	ReplicaDSN string
	// Now is the clock of the recent-writes guard; nil means time.Now.
	Now func() time.Time
}

// Writer applies rules' writeback mappings on the primary. It is safe for
// concurrent use.
type Writer struct {
	cfg     Config
	db      *sqlx.DB
	logger  *slog.Logger
	metrics *metrics
	plans   map[string]*plan
	now     func() time.Time

	// What Recheck and the connection check need.
	flavor string
	// checking is set once New has settled the mode: from then on every
	// new writeback connection checks its session.
	checking   atomic.Bool
	dcfg       *mysql.Config
	replicaDSN string
	markerID   string // the marker table, "" when unknown

	state    atomic.Pointer[modeState]
	switchMu sync.Mutex
	// lost says why a new writeback connection cannot log annotations; the
	// next Apply switches (or fails) before it writes.
	lost        atomic.Pointer[string]
	lastRecheck time.Time
	// expectAnnotated: the primary's default logs annotations, so every
	// transaction should carry them (see Unannotated).
	expectAnnotated   atomic.Bool
	unexplainedLogged atomic.Bool
	failOnce          sync.Once
	failed            chan struct{}
	failErr           error
	sessionOnLogged   atomic.Bool

	// The recent-writes guard (ownwrites.go).
	guards     map[string]map[string]*tableGuard // lower-case schema → table → guard
	own        *recentWrites
	echoLogged atomic.Bool
}

// plan is one rule's compiled mapping.
type plan struct {
	rule  string
	path  string
	table string // schema.table
	when  *vm.Program
	sets  []binding
	keys  []binding
	sql   string // UPDATE … SET … WHERE …, parameters: sets then keys
}

// binding is one column and the expression that gives its value.
type binding struct {
	col  *column
	path string
	prog *vm.Program
}

// New connects to the primary, checks every mapping (by rule name) against
// its information_schema, compiles the expressions and settles how rowhook's
// own writes will be recognised (see Mode). All problems are reported at
// once, as yamlconf path errors naming the rule's block.
func New(ctx context.Context, cfg Config, mappings map[string]*Mapping, deps Deps) (*Writer, error) {
	return open(ctx, cfg, mappings, deps, true)
}

// Check runs New's start-up checks without changing anything (the marker
// table is not created) and closes the connection: for `rowhook check`.
func Check(ctx context.Context, cfg Config, mappings map[string]*Mapping, deps Deps) error {
	deps.Registerer = nil // a check writes nothing worth counting
	w, err := open(ctx, cfg, mappings, deps, false)
	if err != nil {
		return err
	}
	return w.Close()
}

func open(ctx context.Context, cfg Config, mappings map[string]*Mapping, deps Deps, create bool) (*Writer, error) {
	cfg = withDefaults(cfg)
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.DSN == "" {
		return nil, yamlconf.Errf("writeback.dsn", "is required")
	}
	logger := deps.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "writeback")
	dcfg, err := driverConfig(cfg, logger)
	if err != nil {
		return nil, err
	}
	now := deps.Now
	if now == nil {
		now = time.Now
	}
	w := &Writer{cfg: cfg, logger: logger, plans: map[string]*plan{}, now: now, dcfg: dcfg, replicaDSN: deps.ReplicaDSN,
		failed: make(chan struct{}), guards: map[string]map[string]*tableGuard{}, own: newRecentWrites(now)}
	db, err := connect(ctx, dcfg, cfg.MaxOpenConns, w.checkSession)
	if err != nil {
		return nil, err
	}
	w.db = db
	fail := func(err error) (*Writer, error) {
		db.Close()
		if w.db != db {
			w.db.Close()
		}
		return nil, err
	}
	flavor, err := serverFlavor(ctx, db.DB)
	if err != nil {
		return fail(err)
	}

	sc := &schemaCache{db: db, tables: map[string]*tableInfo{}}
	var errs []error
	for _, rule := range sortedKeys(mappings) {
		m := mappings[rule]
		if m == nil {
			continue
		}
		p, err := w.compile(ctx, sc, dcfg.DBName, rule, m)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		w.plans[rule] = p
	}
	if err := errors.Join(errs...); err != nil {
		return fail(err)
	}
	for _, p := range w.plans {
		w.guard(sc, p)
	}
	if schema, table, err := w.markerName(dcfg); err == nil {
		w.markerID = schema + "." + table
	}

	if err := w.settleMode(ctx, flavor, dcfg, deps.ReplicaDSN, create); err != nil {
		return fail(err)
	}
	// settleMode may have reopened the pool with session settings.
	if w.db != db {
		db.Close()
	}
	if w.metrics, err = newMetrics(deps.Registerer); err != nil {
		return fail(err)
	}
	if w.metrics != nil {
		// Each table's series exist from the start at 0: increase() over a
		// series that appears at 1 misses the first failure.
		for _, p := range w.plans {
			for _, o := range []string{"ok", "skipped", "not_found", "conversion_error", "expression_error", "transient_error", "permanent_error"} {
				w.metrics.total.WithLabelValues(p.table, o)
			}
			w.metrics.duration.WithLabelValues(p.table)
		}
	}
	for schema, tables := range w.guards {
		for table := range tables {
			w.metrics.ownSkippedInit(schema + "." + table)
		}
	}
	w.metrics.setMode(w.Mode())
	w.flavor = flavor
	w.checking.Store(true)
	logger.Info("writeback ready", "mode", string(w.Mode()), "rules", len(w.plans), "primary", dcfg.Addr)
	return w, nil
}

// withDefaults fills zero settings from DefaultConfig.
func withDefaults(c Config) Config {
	d := DefaultConfig()
	if c.Mode == "" {
		c.Mode = d.Mode
	}
	if c.Timeout == 0 {
		c.Timeout = d.Timeout
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = d.ConnectTimeout
	}
	if c.LockWaitTimeout == 0 {
		c.LockWaitTimeout = d.LockWaitTimeout
	}
	if c.MaxOpenConns == 0 {
		c.MaxOpenConns = d.MaxOpenConns
	}
	return c
}

// driverConfig is the DSN plus the session rowhook needs: UTC, a strict
// sql_mode (the server refuses rather than truncates, as a second line
// behind the conversions), a short lock wait, found-rows counts.
func driverConfig(cfg Config, logger *slog.Logger) (*mysql.Config, error) {
	dcfg, err := mysqldsn.Parse(cfg.DSN)
	if err != nil {
		return nil, yamlconf.Errf("writeback.dsn", "%v", err)
	}
	if dcfg.Params == nil {
		dcfg.Params = map[string]string{}
	}
	set := func(k, v string) {
		if _, ok := dcfg.Params[k]; !ok {
			dcfg.Params[k] = v
		}
	}
	set("time_zone", "'+00:00'")
	set("sql_mode", "'STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'")
	set("innodb_lock_wait_timeout", fmt.Sprint(int(cfg.LockWaitTimeout/time.Second)))
	dcfg.ClientFoundRows = true
	dcfg.Logger = driverLogger{logger}
	dcfg.InterpolateParams = false
	dcfg.MultiStatements = false
	dcfg.ParseTime = false
	if dcfg.Timeout == 0 {
		dcfg.Timeout = cfg.ConnectTimeout
	}
	if dcfg.ReadTimeout == 0 {
		dcfg.ReadTimeout = cfg.Timeout
	}
	if dcfg.WriteTimeout == 0 {
		dcfg.WriteTimeout = cfg.Timeout
	}
	return dcfg, nil
}

// connect opens a pool on dcfg and pings it; errors name the server and
// user, never the password.
// after, when not nil, runs on every new connection.
func connect(ctx context.Context, dcfg *mysql.Config, maxOpen int, after func(context.Context, driver.Conn) error) (*sqlx.DB, error) {
	return connectTo(ctx, "primary", dcfg, maxOpen, after)
}

// connectTo is connect naming the server in errors as what ("primary", or
// the replica and the setting it comes from).
func connectTo(ctx context.Context, what string, dcfg *mysql.Config, maxOpen int, after func(context.Context, driver.Conn) error) (*sqlx.DB, error) {
	conn, err := mysql.NewConnector(dcfg)
	if err != nil {
		return nil, yamlconf.Errf("writeback.dsn", "%v", err)
	}
	sdb := sql.OpenDB(hookedConnector{Connector: conn, after: after})
	sdb.SetConnMaxIdleTime(time.Minute)
	sdb.SetMaxOpenConns(maxOpen)
	sdb.SetMaxIdleConns(maxOpen)
	if err := sdb.PingContext(ctx); err != nil {
		sdb.Close()
		return nil, classify(fmt.Sprintf("connect to %s %s as %s", what, dcfg.Addr, dcfg.User), "", err)
	}
	return sqlx.NewDb(sdb, "mysql"), nil
}

func serverFlavor(ctx context.Context, db *sql.DB) (string, error) {
	var v string
	if err := db.QueryRowContext(ctx, "/* rowhook */ SELECT VERSION()").Scan(&v); err != nil {
		return "", classify("read server version", "", err)
	}
	if strings.Contains(strings.ToLower(v), "mariadb") {
		return "mariadb", nil
	}
	return "mysql", nil
}

// compile checks one mapping against the database and compiles it.
func (w *Writer) compile(ctx context.Context, sc *schemaCache, defaultDB, rule string, m *Mapping) (*plan, error) {
	path := m.path(rule)
	if err := m.Validate(path); err != nil {
		return nil, err
	}
	m.Path = path
	schema, table, _ := splitTable(m.Table)
	if schema == "" {
		if defaultDB == "" {
			return nil, yamlconf.Errf(path+".table", "%q has no schema and writeback.dsn names no database; write schema.%s", m.Table, m.Table)
		}
		schema = defaultDB
	}
	ti, err := sc.table(ctx, schema, table)
	if err != nil {
		return nil, err
	}
	if ti == nil {
		return nil, yamlconf.Errf(path+".table", "%s", sc.missingTable(ctx, schema, table))
	}
	p := &plan{rule: rule, path: path, table: schema + "." + table}
	var errs []error
	bind := func(kind string, exprs map[string]string) []binding {
		var out []binding
		for _, name := range sortedKeys(exprs) {
			cp := path + "." + kind + "." + name
			col := ti.column(name)
			if col == nil {
				msg := fmt.Sprintf("table %s has no column %s", p.table, name)
				if near := nearMatches(name, ti.names()); len(near) > 0 {
					msg += fmt.Sprintf(" (did you mean %s?)", strings.Join(near, ", "))
				}
				errs = append(errs, yamlconf.Errf(cp, "%s", msg))
				continue
			}
			if err := col.supported(); err != nil {
				errs = append(errs, yamlconf.Errf(cp, "%s: %v", p.table, err))
				continue
			}
			prog, err := compileExpr(cp, exprs[name], false)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			out = append(out, binding{col: col, path: cp, prog: prog})
		}
		return out
	}
	p.sets = bind("set", m.Set)
	p.keys = bind("key", m.Key)
	if m.When != "" {
		prog, err := compileExpr(path+".when", m.When, true)
		if err != nil {
			errs = append(errs, err)
		}
		p.when = prog
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	keyCols := make([]string, len(p.keys))
	for i, k := range p.keys {
		keyCols[i] = k.col.Name
	}
	if !ti.unique(keyCols) {
		return nil, yamlconf.Errf(path+".key", "columns %s are not a primary or unique key of %s, so they could address several rows; use %s", strings.Join(keyCols, ", "), p.table, ti.describeKeys())
	}
	var b strings.Builder
	fmt.Fprintf(&b, "UPDATE %s.%s SET ", quoteIdent(schema), quoteIdent(table))
	for i, s := range p.sets {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s = ?", quoteIdent(s.col.Name))
	}
	b.WriteString(" WHERE ")
	for i, k := range p.keys {
		if i > 0 {
			b.WriteString(" AND ")
		}
		fmt.Fprintf(&b, "%s = ?", quoteIdent(k.col.Name))
	}
	p.sql = b.String()
	// EXPLAIN checks the UPDATE privilege and the statement without
	// running it. It is sent as text with NULLs: a prepared EXPLAIN UPDATE
	// got no answer from MariaDB 10.11.
	if err := explain(ctx, w.db, strings.ReplaceAll(p.sql, "= ?", "= NULL")); err != nil {
		var me *mysql.MySQLError
		if errors.As(err, &me) && (me.Number == 1142 || me.Number == 1143 || me.Number == 1044) {
			return nil, yamlconf.Errf(path+".table", "the writeback user lacks UPDATE on %s: %s (run: GRANT SELECT, UPDATE ON %s.%s TO <the writeback user>)", p.table, me.Message, quoteIdent(schema), quoteIdent(table))
		}
		return nil, classify("check "+path, p.table, err)
	}
	return p, nil
}

// quoteIdent quotes a name that was checked against information_schema.
func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// Mode is how this Writer's writes are recognised in the binlog: ModeAnnotate
// (IsOwnChange) or ModeMarker (IsOwnTransaction with MarkerTable).
// It starts as settled by New and may change once, from annotate to marker,
// when Recheck, Unannotated or a new writeback connection finds annotations
// gone.
func (w *Writer) Mode() Mode {
	if st := w.state.Load(); st != nil {
		return st.mode
	}
	return ""
}

// MarkerTable is the marker table as schema.table in marker mode, "" otherwise.
func (w *Writer) MarkerTable() string {
	if st := w.state.Load(); st != nil {
		return st.marker
	}
	return ""
}

// Has reports whether rule has a writeback mapping.
func (w *Writer) Has(rule string) bool { return w.plans[rule] != nil }

// Close closes the connection pool.
func (w *Writer) Close() error { return w.db.Close() }

// Apply writes the values rule's mapping takes from resp into the row the
// change identifies, in one transaction on the primary tagged with
// deliveryID. A `when` that is false writes nothing and returns nil. It is
// idempotent (the same response sets the same values), so the caller may
// retry it; IsPermanent tells whether retrying can help. ctx bounds the
// whole call, on top of writeback.timeout.
func (w *Writer) Apply(ctx context.Context, deliveryID, rule string, change *cdc.Change, resp Response) (err error) {
	p := w.plans[rule]
	if p == nil {
		return fmt.Errorf("apply rule %q: %w", rule, ErrNoMapping)
	}
	start := time.Now()
	outcome := "ok"
	defer func() {
		if err != nil {
			outcome = outcomeOf(err)
		}
		w.metrics.observe(p.table, outcome, time.Since(start))
	}()
	var row, old map[string]any
	if change != nil {
		row, old = change.Image(), change.Before
		if change.Op == cdc.OpDelete {
			old = nil
		}
	}
	env := NewEnv(resp, row, old)
	if p.when != nil {
		out, err := expr.Run(p.when, env)
		if err != nil {
			return &ExprError{Path: p.path + ".when", Err: err}
		}
		if ok, _ := out.(bool); !ok {
			outcome = "skipped"
			w.logger.DebugContext(ctx, "writeback skipped: when is false", "rule", rule, "delivery_id", deliveryID)
			return nil
		}
	}
	args := make([]any, 0, len(p.sets)+len(p.keys))
	key := map[string]any{}
	for _, group := range [][]binding{p.sets, p.keys} {
		for _, b := range group {
			v, err := expr.Run(b.prog, env)
			if err != nil {
				return &ExprError{Path: b.path, Err: err}
			}
			if v == nil && isKey(b, p.keys) {
				return &ConversionError{Table: p.table, Column: b.col.Name, Value: nil, Type: b.col.ColumnType,
					Reason: "a key expression gave null, which matches no row"}
			}
			cv, err := b.col.convert(p.table, v)
			if err != nil {
				return err
			}
			if isKey(b, p.keys) {
				key[b.col.Name] = cv
			}
			args = append(args, cv)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
	defer cancel()
	tag := tagFor(deliveryID)
	tx, st, err := w.begin(ctx, p.table)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if st.mode == ModeMarker {
		if _, err := tx.ExecContext(ctx, tag+st.upsert, markerSlot(deliveryID), truncateRunes(deliveryID, 191)); err != nil {
			return classify("write marker "+st.marker, st.marker, err)
		}
	}
	res, err := tx.ExecContext(ctx, tag+p.sql, args...)
	if err != nil {
		return classify("update", p.table, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return classify("update", p.table, err)
	}
	if n == 0 {
		return &RowNotFoundError{Table: p.table, Key: key}
	}
	// Remembered before the commit, so the reader cannot see the write
	// first; a failed commit leaves an entry that only expires.
	w.remember(p, args)
	if err := tx.Commit(); err != nil {
		return classify("commit", p.table, err)
	}
	w.logger.DebugContext(ctx, "writeback applied", "rule", rule, "table", p.table, "delivery_id", deliveryID, "columns", len(p.sets))
	return nil
}

// begin starts a writeback transaction in the current mode. A connection
// opened for it that found annotations gone switches the Writer to the
// marker table first (or fails it): nothing is written unrecognisable.
func (w *Writer) begin(ctx context.Context, table string) (*sqlx.Tx, *modeState, error) {
	for attempt := 0; ; attempt++ {
		if err := w.Err(); err != nil {
			return nil, nil, err
		}
		st := w.state.Load()
		tx, err := w.db.BeginTxx(ctx, nil)
		if err != nil {
			return nil, nil, classify("begin", table, err)
		}
		lost := w.lost.Load()
		if st.mode != ModeAnnotate || lost == nil {
			return tx, st, nil
		}
		_ = tx.Rollback()
		if attempt > 0 {
			return nil, nil, fmt.Errorf("writeback: annotations lost and the mode did not change: %s", *lost)
		}
		if err := w.switchToMarker(ctx, []string{*lost}); err != nil {
			return nil, nil, err
		}
	}
}

// remember records the values p's statement bound (sets, then keys) for
// the recent-writes guard.
func (w *Writer) remember(p *plan, args []any) {
	keys := make([]*column, len(p.keys))
	key := map[string]any{}
	for i, k := range p.keys {
		keys[i] = k.col
		key[k.col.Name] = args[len(p.sets)+i]
	}
	row, _ := rowKey(strings.ToLower(p.table), keys, key)
	cols := make(map[string]string, len(p.sets))
	for i, s := range p.sets {
		cols[strings.ToLower(s.col.Name)] = canonical(s.col, args[i])
	}
	w.own.add(row, cols)
}

// guard prepares the recent-writes guard for p's table.
func (w *Writer) guard(sc *schemaCache, p *plan) {
	schema, table, _ := strings.Cut(strings.ToLower(p.table), ".")
	if w.guards[schema] == nil {
		w.guards[schema] = map[string]*tableGuard{}
	}
	g := w.guards[schema][table]
	if g == nil {
		g = &tableGuard{columns: map[string]*column{}, auto: map[string]bool{}}
		if ti := sc.tables[p.table]; ti != nil {
			for _, c := range ti.columns {
				g.columns[strings.ToLower(c.Name)] = c
				if c.Generated || c.OnUpdate {
					g.auto[strings.ToLower(c.Name)] = true
				}
			}
		}
		w.guards[schema][table] = g
	}
	keys := make([]*column, len(p.keys))
	for i, k := range p.keys {
		keys[i] = k.col
		g.columns[strings.ToLower(k.col.Name)] = k.col
	}
	for _, s := range p.sets {
		g.columns[strings.ToLower(s.col.Name)] = s.col
	}
	for _, have := range g.keys {
		if sameColumns(have, keys) {
			return
		}
	}
	g.keys = append(g.keys, keys)
}

func sameColumns(a, b []*column) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !strings.EqualFold(a[i].Name, b[i].Name) {
			return false
		}
	}
	return true
}

func isKey(b binding, keys []binding) bool {
	for _, k := range keys {
		if k.col == b.col {
			return true
		}
	}
	return false
}

// tagFor is the comment that starts every statement of one writeback. The
// delivery id is reduced to a safe alphabet: it must not be able to end the
// comment.
func tagFor(deliveryID string) string {
	return Tag + " " + safeID(deliveryID) + " */ "
}

func safeID(id string) string {
	var b strings.Builder
	for _, r := range id {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', strings.ContainsRune("-_.:@", r):
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
		if b.Len() >= 128 {
			break
		}
	}
	if b.Len() == 0 {
		return "-"
	}
	return b.String()
}

// markerSlots bounds the marker table: deliveries share 256 rows, so
// concurrent writebacks rarely wait on one another's marker row.
const markerSlots = 256

func markerSlot(deliveryID string) int {
	return int(crc32.ChecksumIEEE([]byte(deliveryID)) % markerSlots)
}

// explain runs EXPLAIN on q (no parameters) and discards the plan.
func explain(ctx context.Context, db *sqlx.DB, q string) error {
	rows, err := db.QueryContext(ctx, "/* rowhook */ EXPLAIN "+q)
	if err != nil {
		return err
	}
	for rows.Next() {
	}
	err = rows.Err()
	rows.Close()
	return err
}

// driverLogger sends go-sql-driver's messages (a dropped idle connection,
// say) to the component's logger at debug level instead of stderr.
type driverLogger struct{ l *slog.Logger }

var _ mysql.Logger = driverLogger{}

// Print implements mysql.Logger.
func (d driverLogger) Print(v ...any) {
	d.l.Debug("mysql driver: " + strings.TrimSpace(fmt.Sprint(v...)))
}

// truncateRunes cuts s to at most n characters (the marker's delivery_id is
// VARCHAR(191); it is informational, the row's presence is what counts).
func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}
