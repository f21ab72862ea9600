package writeback

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"
	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rowhook/rowhook/cdc"
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
	// DSN), checked at start-up for keeping statement annotations. Empty
	// means unknown: mode auto then uses the marker table.
	ReplicaDSN string
}

// Writer applies rules' writeback mappings on the primary. It is safe for
// concurrent use.
type Writer struct {
	cfg     Config
	db      *sqlx.DB
	logger  *slog.Logger
	metrics *metrics
	mode    Mode
	marker  string // schema.table, in marker mode
	upsert  string // the marker statement, in marker mode
	plans   map[string]*plan
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
	db, err := connect(ctx, dcfg, cfg.MaxOpenConns)
	if err != nil {
		return nil, err
	}
	w := &Writer{cfg: cfg, db: db, logger: logger, plans: map[string]*plan{}}
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
	logger.Info("writeback ready", "mode", string(w.mode), "rules", len(w.plans), "primary", dcfg.Addr)
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
	dcfg, err := ParseDSN(cfg.DSN)
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
// connect opens a pool to the primary; see connectTo.
func connect(ctx context.Context, dcfg *mysql.Config, maxOpen int) (*sqlx.DB, error) {
	return connectTo(ctx, "primary", dcfg, maxOpen)
}

// connectTo opens a pool and pings it; what names the server in errors
// ("primary", or the replica and the setting it comes from).
func connectTo(ctx context.Context, what string, dcfg *mysql.Config, maxOpen int) (*sqlx.DB, error) {
	conn, err := mysql.NewConnector(dcfg)
	if err != nil {
		return nil, yamlconf.Errf("writeback.dsn", "%v", err)
	}
	sdb := sql.OpenDB(conn)
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
func (w *Writer) Mode() Mode { return w.mode }

// MarkerTable is the marker table as schema.table in marker mode, "" otherwise.
func (w *Writer) MarkerTable() string { return w.marker }

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
	tx, err := w.db.BeginTxx(ctx, nil)
	if err != nil {
		return classify("begin", p.table, err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if w.mode == ModeMarker {
		if _, err := tx.ExecContext(ctx, tag+w.upsert, markerSlot(deliveryID), truncateRunes(deliveryID, 191)); err != nil {
			return classify("write marker "+w.marker, w.marker, err)
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
	if err := tx.Commit(); err != nil {
		return classify("commit", p.table, err)
	}
	w.logger.DebugContext(ctx, "writeback applied", "rule", rule, "table", p.table, "delivery_id", deliveryID, "columns", len(p.sets))
	return nil
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
