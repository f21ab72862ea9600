package writeback

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/internal/mysqldsn"
	"github.com/rowhook/rowhook/internal/yamlconf"
)

// IsOwnChange reports whether c was written by a rowhook writeback: its
// statement annotation (MariaDB Annotate_rows, MySQL Rows_query) starts with
// Tag. Only the start counts, so a user's statement that merely contains the
// text (in a string literal, say) is not mistaken for rowhook's.
func IsOwnChange(c *cdc.Change) bool {
	return c != nil && strings.HasPrefix(strings.TrimLeft(c.Annotation, " \t\r\n"), Tag+" ")
}

// IsOwnTransaction reports whether tx contains a row of the marker table
// ("schema.table", or "table" in any schema): the fallback for servers that
// do not log statement annotations. The source's table filters must let the
// marker table through.
func IsOwnTransaction(tx *cdc.Transaction, markerTable string) bool {
	if tx == nil || markerTable == "" {
		return false
	}
	schema, table, ok := strings.Cut(markerTable, ".")
	if !ok {
		schema, table = "", markerTable
	}
	for i := range tx.Changes {
		c := &tx.Changes[i]
		if c.Table == table && (schema == "" || c.Schema == schema) {
			return true
		}
	}
	return false
}

// annotationVar is the server variable that makes the binlog carry each row
// event's statement text.
func annotationVar(flavor string) string {
	if flavor == "mariadb" {
		return "binlog_annotate_row_events"
	}
	return "binlog_rows_query_log_events"
}

// modeState is how the Writer's writes are recognised now. It changes at
// most once, from annotate to marker, when annotations are found missing.
type modeState struct {
	mode   Mode
	marker string // schema.table, in marker mode
	upsert string // the marker statement, in marker mode
}

// settleMode decides between annotate and marker and prepares the marker
// table when needed.
func (w *Writer) settleMode(ctx context.Context, flavor string, dcfg *mysql.Config, replicaDSN string, create bool) error {
	if w.cfg.Mode == ModeMarker {
		return w.useMarker(ctx, dcfg, create)
	}
	problems, err := w.checkPrimary(ctx, flavor, dcfg)
	if err != nil {
		return err
	}
	if replicaDSN != "" {
		rp, err := w.checkReplica(ctx, replicaDSN)
		if err != nil {
			return err
		}
		problems = append(problems, rp...)
	}
	switch {
	case len(problems) > 0 && w.cfg.Mode == ModeAnnotate:
		return annotationsOff(problems)
	case len(problems) > 0:
		w.logger.WarnContext(ctx, "statement annotations unavailable, using the marker table", "problems", strings.Join(problems, "; "))
		return w.useMarker(ctx, dcfg, create)
	case replicaDSN == "" && w.cfg.Mode == ModeAuto:
		w.logger.InfoContext(ctx, "the replica was not given, so whether it keeps annotations is unknown; using the marker table")
		return w.useMarker(ctx, dcfg, create)
	case replicaDSN == "":
		w.logger.WarnContext(ctx, "the replica was not checked for keeping annotations (writeback.mode annotate)")
	}
	w.state.Store(&modeState{mode: ModeAnnotate})
	if w.cfg.Mode == ModeAuto && !w.cfg.CreateMarker {
		// The fallback is needed only if annotations are lost while
		// running; say now that it is not there.
		if schema, table, err := w.markerName(dcfg); err == nil {
			sc := &schemaCache{db: w.db, tables: map[string]*tableInfo{}}
			if ti, err := sc.table(ctx, schema, table); err == nil && ti == nil {
				w.logger.WarnContext(ctx, "the marker table does not exist and writeback.create_marker is off: if annotations are lost while rowhook runs, it stops instead of switching to the marker table",
					"table", schema+"."+table, "create", markerDDL(schema, table))
			}
		}
	}
	return nil
}

func annotationsOff(problems []string) error {
	return fmt.Errorf("%w (writeback.mode is annotate; set it to auto or marker to use the marker table instead):\n  %s", ErrAnnotationsOff, strings.Join(problems, "\n  "))
}

func (w *Writer) useMarker(ctx context.Context, dcfg *mysql.Config, create bool) error {
	st, err := w.ensureMarker(ctx, dcfg, create)
	if err != nil {
		return err
	}
	w.state.Store(st)
	return nil
}

// Recheck repeats the start-up check that the source keeps the annotations
// of rowhook's writes; the binlog reader calls it on every (re)connection,
// before it hands on anything read on that connection (a server restarted
// with other settings comes back as a reconnection). The writeback
// connections check themselves as they are opened (see Apply).
//
// When a check fails in mode auto, the Writer switches to the marker table
// (creating it if writeback.create_marker allows) before Recheck returns.
// In mode annotate, or when the switch fails, it returns an error naming
// each setting to change, and the Writer refuses to write from then on
// (Failed): rowhook never goes on unprotected. In marker mode it does
// nothing.
func (w *Writer) Recheck(ctx context.Context) error {
	if err := w.Err(); err != nil {
		return err
	}
	if w.Mode() != ModeAnnotate {
		return nil
	}
	problems, err := w.recheckProblems(ctx)
	if err != nil {
		// The settings cannot be confirmed: treat them as wrong.
		problems = append(problems, fmt.Sprintf("could not check that annotations are kept: %v", err))
	}
	if len(problems) == 0 {
		return nil
	}
	return w.switchToMarker(ctx, problems)
}

// recheckProblems runs the annotation checks on the running Writer: one
// writeback connection's session (new ones check themselves) and the
// replica's settings, retrying a failing query briefly.
func (w *Writer) recheckProblems(ctx context.Context) ([]string, error) {
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(500 * time.Millisecond):
			}
		}
		w.refreshExpect(ctx, w.flavor)
		var problems []string
		if p := w.lost.Load(); p != nil {
			problems = append(problems, *p)
		}
		v := annotationVar(w.flavor)
		var on int
		if err = w.db.GetContext(ctx, &on, "/* rowhook */ SELECT @@SESSION."+v); err != nil {
			continue
		}
		if on != 1 && len(problems) == 0 {
			problems = append(problems, fmt.Sprintf("primary %s: a writeback connection has %s OFF; run SET GLOBAL %s = ON and add %s = ON to the primary's my.cnf", w.dcfg.Addr, v, v, v))
		}
		if w.replicaDSN != "" {
			var rp []string
			if rp, err = w.checkReplica(ctx, w.replicaDSN); err != nil {
				continue
			}
			problems = append(problems, rp...)
		}
		return problems, nil
	}
	return nil, err
}

// switchToMarker moves a Writer in annotate mode to the marker table, or,
// in mode annotate or when the marker table cannot be used, fails it.
func (w *Writer) switchToMarker(ctx context.Context, problems []string) error {
	w.switchMu.Lock()
	defer w.switchMu.Unlock()
	if err := w.Err(); err != nil {
		return err
	}
	if w.Mode() != ModeAnnotate {
		return nil
	}
	if w.cfg.Mode == ModeAnnotate {
		err := annotationsOff(problems)
		w.fail(err)
		w.logger.ErrorContext(ctx, "statement annotations lost; writeback stops", "error", err)
		return err
	}
	w.logger.WarnContext(ctx, "statement annotations lost; switching to the marker table", "problems", strings.Join(problems, "; "))
	st, err := w.ensureMarker(ctx, w.dcfg, true)
	if err != nil {
		err = fmt.Errorf("writeback: statement annotations lost (%s) and the marker table cannot be used: %w", strings.Join(problems, "; "), err)
		w.fail(err)
		w.logger.ErrorContext(ctx, "writeback stops", "error", err)
		return err
	}
	w.state.Store(st)
	w.metrics.setMode(ModeMarker)
	w.logger.InfoContext(ctx, "writeback now marks its transactions", "marker_table", st.marker)
	return nil
}

// fail makes the Writer refuse every write from now on with err.
func (w *Writer) fail(err error) {
	w.failOnce.Do(func() {
		w.failErr = err
		close(w.failed)
	})
}

// Failed is closed when the Writer stopped writing because its writes could
// no longer be recognised; Err then says why and what to change. The caller
// should stop the pipeline.
func (w *Writer) Failed() <-chan struct{} { return w.failed }

// Err is why the Writer stopped writing (see Failed), nil while it writes.
func (w *Writer) Err() error {
	select {
	case <-w.failed:
		return w.failErr
	default:
		return nil
	}
}

// Unannotated is told of a transaction whose row changes carry no
// statement annotation at all while the Writer is in annotate mode. That
// means something only while the primary's default logs annotations (so
// every session's rows are expected to carry them): then the source, or a
// server between it and the primary, has stopped keeping them. The settings
// are checked again (Recheck, at most once a minute). A failed check
// switches or fails as Recheck does; the primary's default found off
// explains the transaction (rowhook's own sessions are checked as they
// open); otherwise the loss is unexplained: mode auto switches to the
// marker table, mode annotate logs it once and relies on the recent-writes
// guard.
func (w *Writer) Unannotated(ctx context.Context, tx string) error {
	if w.Mode() != ModeAnnotate || !w.expectAnnotated.Load() {
		return w.Err()
	}
	w.switchMu.Lock()
	due := w.lastRecheck.IsZero() || w.now().Sub(w.lastRecheck) >= time.Minute
	if due {
		w.lastRecheck = w.now()
	}
	w.switchMu.Unlock()
	if !due {
		return nil
	}
	if err := w.Recheck(ctx); err != nil {
		return err
	}
	if w.Mode() != ModeAnnotate || !w.expectAnnotated.Load() {
		return nil
	}
	why := fmt.Sprintf("transaction %s came without statement annotations although every setting checked is on (a server between the primary and the source may drop them)", tx)
	if w.cfg.Mode == ModeAuto {
		return w.switchToMarker(ctx, []string{why})
	}
	if !w.unexplainedLogged.Swap(true) {
		w.logger.WarnContext(ctx, why+"; rowhook's own writes are still recognised by their values", "tx", tx)
	}
	return nil
}

// refreshExpect reads whether the primary's default logs annotations, so
// that every transaction is expected to carry them.
func (w *Writer) refreshExpect(ctx context.Context, flavor string) {
	var on int
	if err := w.db.GetContext(ctx, &on, "/* rowhook */ SELECT @@GLOBAL."+annotationVar(flavor)); err == nil {
		w.expectAnnotated.Store(on == 1)
	}
}

// checkSession runs on every new writeback connection while the Writer is
// in annotate mode: the session must log annotations. When it does not (the
// server restarted with the setting off), it turns it on if the user may,
// and otherwise records the problem so that the next Apply switches to the
// marker table (or fails) before it writes.
func (w *Writer) checkSession(ctx context.Context, conn driver.Conn) error {
	if !w.checking.Load() || w.Mode() != ModeAnnotate {
		return nil
	}
	v := annotationVar(w.flavor)
	q, ok := conn.(driver.QueryerContext)
	e, ok2 := conn.(driver.ExecerContext)
	if !ok || !ok2 {
		return nil
	}
	on, err := sessionFlag(ctx, q, "/* rowhook */ SELECT @@SESSION."+v)
	if err != nil {
		var me *mysql.MySQLError
		if errors.As(err, &me) && me.Number == 1193 {
			p := fmt.Sprintf("primary %s: this server has no %s", w.dcfg.Addr, v)
			w.lost.Store(&p)
			return nil
		}
		return err
	}
	if on {
		return nil
	}
	if _, err := e.ExecContext(ctx, "/* rowhook */ SET SESSION "+v+" = ON", nil); err != nil {
		var me *mysql.MySQLError
		if !errors.As(err, &me) {
			return err
		}
		p := fmt.Sprintf("primary %s: %s is OFF and the writeback user may not turn it on for its session (%v); run SET GLOBAL %s = ON and add %s = ON to the primary's my.cnf", w.dcfg.Addr, v, me.Message, v, v)
		w.lost.Store(&p)
		return nil
	}
	if !w.sessionOnLogged.Swap(true) {
		w.logger.InfoContext(ctx, "the primary's default no longer logs annotations; turned them on for each new writeback connection", "variable", v)
	}
	return nil
}

// sessionFlag reads a 0/1 variable on a raw driver connection.
func sessionFlag(ctx context.Context, q driver.QueryerContext, query string) (bool, error) {
	rows, err := q.QueryContext(ctx, query, nil)
	if err != nil {
		return false, err
	}
	defer rows.Close()
	dest := make([]driver.Value, len(rows.Columns()))
	if err := rows.Next(dest); err != nil {
		return false, err
	}
	return strings.TrimSpace(text(dest[0])) == "1", nil
}

// hookedConnector runs after on every connection it opens.
type hookedConnector struct {
	driver.Connector
	after func(context.Context, driver.Conn) error
}

func (c hookedConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil || c.after == nil {
		return conn, err
	}
	if err := c.after(ctx, conn); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// checkPrimary makes sure the writeback session logs annotations: when the
// server's default is off, it turns the session variable on for every
// connection if the user may.
func (w *Writer) checkPrimary(ctx context.Context, flavor string, dcfg *mysql.Config) ([]string, error) {
	v := annotationVar(flavor)
	w.refreshExpect(ctx, flavor)
	var on int
	if err := w.db.GetContext(ctx, &on, "/* rowhook */ SELECT @@SESSION."+v); err != nil {
		var me *mysql.MySQLError
		if errors.As(err, &me) && me.Number == 1193 { // unknown variable
			return []string{fmt.Sprintf("primary %s: this server has no %s", dcfg.Addr, v)}, nil
		}
		return nil, classify("read primary "+v, "", err)
	}
	if on == 1 {
		return nil, nil
	}
	conn, err := w.db.Conn(ctx)
	if err != nil {
		return nil, classify("connect to primary", "", err)
	}
	_, err = conn.ExecContext(ctx, "/* rowhook */ SET SESSION "+v+" = ON")
	conn.Close()
	if err != nil {
		return []string{fmt.Sprintf("primary %s: %s is OFF and the writeback user may not turn it on for its session (%v); run SET GLOBAL %s = ON and add %s = ON to the primary's my.cnf", dcfg.Addr, v, err, v, v)}, nil
	}
	// Reopen the pool with the session setting on every connection.
	ncfg := dcfg.Clone()
	ncfg.Params[v] = "ON"
	db, err := connect(ctx, ncfg, w.cfg.MaxOpenConns, w.checkSession)
	if err != nil {
		return nil, err
	}
	w.db = db
	w.logger.InfoContext(ctx, "turned on statement annotations for the writeback session", "variable", v)
	return nil, nil
}

// checkReplica checks that the replica rowhook reads keeps the primary's
// annotations in its own binlog. When the "replica" is the primary itself
// (rowhook reading the primary's binlog), the primary check suffices.
func (w *Writer) checkReplica(ctx context.Context, dsn string) ([]string, error) {
	rcfg, err := mysqldsn.Parse(dsn)
	if err != nil {
		return nil, fmt.Errorf("replica DSN: %w", err)
	}
	rcfg.Timeout = w.cfg.ConnectTimeout
	rcfg.ReadTimeout = w.cfg.Timeout
	// The replica is the source rowhook reads: its errors name source.dsn,
	// not the writeback primary.
	db, err := connectTo(ctx, "the source (source.dsn)", rcfg, 1, nil)
	if err != nil {
		return nil, fmt.Errorf("check the replica keeps annotations: %w", err)
	}
	defer db.Close()
	var primaryID, replicaID uint32
	if err := w.db.GetContext(ctx, &primaryID, "/* rowhook */ SELECT @@server_id"); err != nil {
		return nil, classify("read primary server_id", "", err)
	}
	if err := db.GetContext(ctx, &replicaID, "/* rowhook */ SELECT @@server_id"); err != nil {
		return nil, classify("read replica server_id", "", err)
	}
	if primaryID == replicaID {
		return nil, nil
	}
	flavor, err := serverFlavor(ctx, db.DB)
	if err != nil {
		return nil, err
	}
	// Each entry lists a variable's names, newest first (MySQL renamed
	// log_slave_updates in 8.0.26).
	var vars [][]string
	if flavor == "mariadb" {
		vars = [][]string{{"replicate_annotate_row_events"}, {"binlog_annotate_row_events"}, {"log_slave_updates"}}
	} else {
		vars = [][]string{{"binlog_rows_query_log_events"}, {"log_replica_updates", "log_slave_updates"}}
	}
	var problems []string
	for _, names := range vars {
		v := names[0]
		on, known := 0, false
		for _, name := range names {
			err := db.GetContext(ctx, &on, "/* rowhook */ SELECT @@GLOBAL."+name)
			var me *mysql.MySQLError
			if errors.As(err, &me) && me.Number == 1193 { // unknown variable
				continue
			}
			if err != nil {
				return nil, classify("read replica "+name, "", err)
			}
			v, known = name, true
			break
		}
		if !known {
			problems = append(problems, fmt.Sprintf("replica %s: this server has no %s", rcfg.Addr, v))
			continue
		}
		if on != 1 {
			fix := fmt.Sprintf("add %s = ON to the replica's my.cnf and restart it", v)
			if v == "binlog_annotate_row_events" || v == "binlog_rows_query_log_events" {
				fix = fmt.Sprintf("run SET GLOBAL %s = ON on the replica and add it to its my.cnf", v)
			}
			problems = append(problems, fmt.Sprintf("replica %s: %s is OFF (%s)", rcfg.Addr, v, fix))
		}
	}
	return problems, nil
}

// markerDDL is the marker table's definition.
func markerDDL(schema, table string) string {
	return fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s (\n"+
		"  `id` SMALLINT UNSIGNED NOT NULL PRIMARY KEY,\n"+
		"  `delivery_id` VARCHAR(191) NOT NULL,\n"+
		"  `at` DATETIME(6) NOT NULL\n"+
		") ENGINE=InnoDB COMMENT='rowhook: one row written in every writeback transaction'", quoteIdent(schema), quoteIdent(table))
}

// markerName is the marker table's schema and name for the writeback DSN.
func (w *Writer) markerName(dcfg *mysql.Config) (schema, table string, err error) {
	schema, table = dcfg.DBName, DefaultMarkerTable
	if w.cfg.MarkerTable != "" {
		if s, t, ok := strings.Cut(w.cfg.MarkerTable, "."); ok {
			schema, table = s, t
		} else {
			table = w.cfg.MarkerTable
		}
	}
	if schema == "" {
		return "", "", yamlconf.Errf("writeback.marker_table", "names no schema and writeback.dsn names no database; write schema.%s", table)
	}
	return schema, table, nil
}

// ensureMarker finds (or creates) the marker table and checks that the
// writeback user can write to it.
func (w *Writer) ensureMarker(ctx context.Context, dcfg *mysql.Config, create bool) (*modeState, error) {
	schema, table, err := w.markerName(dcfg)
	if err != nil {
		return nil, err
	}
	id := schema + "." + table
	var user string
	_ = w.db.GetContext(ctx, &user, "/* rowhook */ SELECT CURRENT_USER()")
	grant := fmt.Sprintf("GRANT SELECT, INSERT, UPDATE ON %s.%s TO %s", quoteIdent(schema), quoteIdent(table), sqlUser(user))
	ddl := markerDDL(schema, table)
	sc := &schemaCache{db: w.db, tables: map[string]*tableInfo{}}
	ti, err := sc.table(ctx, schema, table)
	if err != nil {
		return nil, err
	}
	if ti == nil {
		if !create && w.cfg.CreateMarker {
			// rowhook check: run would create it; make sure it may.
			if err := w.canCreate(ctx, schema, table); err != nil {
				return nil, fmt.Errorf("%w: %s does not exist and the writeback user cannot create it (%v); a DBA must run on the primary:\n%s;\n%s;", ErrMarkerMissing, id, err, ddl, grant)
			}
			w.logger.InfoContext(ctx, "marker table missing; rowhook run will create it", "table", id)
			return &modeState{mode: ModeMarker, marker: id}, nil
		}
		if !w.cfg.CreateMarker {
			return nil, fmt.Errorf("%w: %s does not exist and writeback.create_marker is off; a DBA must run on the primary:\n%s;\n%s;", ErrMarkerMissing, id, ddl, grant)
		}
		if _, err := w.db.ExecContext(ctx, "/* rowhook */ "+ddl); err != nil {
			return nil, fmt.Errorf("%w: create %s: %v; a DBA must run on the primary:\n%s;\n%s;", ErrMarkerMissing, id, err, ddl, grant)
		}
		w.logger.InfoContext(ctx, "created the marker table", "table", id)
		if ti, err = sc.reload(ctx, schema, table); err != nil {
			return nil, err
		}
	}
	for _, c := range []string{"id", "delivery_id", "at"} {
		if ti == nil || ti.column(c) == nil {
			return nil, yamlconf.Errf("writeback.marker_table", "table %s exists but has no column %s; it is not a rowhook marker table (expected: %s)", id, c, ddl)
		}
	}
	st := &modeState{mode: ModeMarker, marker: id}
	st.upsert = fmt.Sprintf("INSERT INTO %s.%s (`id`, `delivery_id`, `at`) VALUES (?, ?, UTC_TIMESTAMP(6)) "+
		"ON DUPLICATE KEY UPDATE `delivery_id` = VALUES(`delivery_id`), `at` = VALUES(`at`)", quoteIdent(schema), quoteIdent(table))
	if err := explain(ctx, w.db, strings.Replace(strings.Replace(st.upsert, "?", "0", 1), "?", "''", 1)); err != nil {
		var me *mysql.MySQLError
		if errors.As(err, &me) && (me.Number == 1142 || me.Number == 1143 || me.Number == 1044) {
			return nil, fmt.Errorf("%w: the writeback user cannot write %s (%s); a DBA must run on the primary:\n%s;", ErrMarkerMissing, id, me.Message, grant)
		}
		return nil, classify("check marker table", id, err)
	}
	return st, nil
}

// canCreate tells, creating nothing, whether the writeback user may create
// schema.table: a CREATE TABLE with a duplicate column passes the server's
// privilege check and then fails on its definition (1060), while a user
// without the privilege is refused first (1142, 1044).
func (w *Writer) canCreate(ctx context.Context, schema, table string) error {
	name := quoteIdent(schema) + "." + quoteIdent(table)
	_, err := w.db.ExecContext(ctx, "/* rowhook */ CREATE TABLE "+name+" (`id` INT, `id` INT)")
	var me *mysql.MySQLError
	switch {
	case errors.As(err, &me) && me.Number == 1060:
		return nil
	case err == nil: // a server that took the definition: undo it
		_, err = w.db.ExecContext(ctx, "/* rowhook */ DROP TABLE IF EXISTS "+name)
		return err
	case errors.As(err, &me):
		return me
	}
	return classify("check marker table", schema+"."+table, err)
}

// sqlUser turns CURRENT_USER()'s user@host into 'user'@'host'.
func sqlUser(u string) string {
	name, host, ok := strings.Cut(u, "@")
	if u == "" || !ok {
		return "<the writeback user>"
	}
	return fmt.Sprintf("'%s'@'%s'", strings.ReplaceAll(name, "'", "''"), strings.ReplaceAll(host, "'", "''"))
}
