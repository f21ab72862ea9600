package writeback

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/go-sql-driver/mysql"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/internal/yamlconf"
)

// IsOwnChange reports whether c was written by a rowhook writeback: its
// statement annotation (MariaDB Annotate_rows, MySQL Rows_query) starts with
// Tag. Only the start counts, so a user's statement that merely contains the
// text (in a string literal, say) is not mistaken for rowhook's.
func IsOwnChange(c *cdc.Change) bool {
	return c != nil && strings.HasPrefix(strings.TrimLeft(c.Annotation, " \t\r\n"), Tag+" ")
}

// DeliveryIDOf returns the delivery id in a writeback statement's annotation
// (as tagged: characters outside [A-Za-z0-9-_.:@] read as '_').
func DeliveryIDOf(annotation string) (string, bool) {
	s := strings.TrimLeft(annotation, " \t\r\n")
	if !strings.HasPrefix(s, Tag+" ") {
		return "", false
	}
	s = strings.TrimPrefix(s, Tag+" ")
	id, _, ok := strings.Cut(s, " */")
	return id, ok
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

// settleMode decides between annotate and marker and prepares the marker
// table when needed.
func (w *Writer) settleMode(ctx context.Context, flavor string, dcfg *mysql.Config, replicaDSN string, create bool) error {
	if w.cfg.Mode == ModeMarker {
		w.mode = ModeMarker
		return w.ensureMarker(ctx, dcfg, create)
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
		return fmt.Errorf("%w (writeback.mode is annotate; set it to auto or marker to use the marker table instead):\n  %s", ErrAnnotationsOff, strings.Join(problems, "\n  "))
	case len(problems) > 0:
		w.logger.WarnContext(ctx, "statement annotations unavailable, using the marker table", "problems", strings.Join(problems, "; "))
		w.mode = ModeMarker
		return w.ensureMarker(ctx, dcfg, create)
	case replicaDSN == "" && w.cfg.Mode == ModeAuto:
		w.logger.InfoContext(ctx, "the replica was not given, so whether it keeps annotations is unknown; using the marker table")
		w.mode = ModeMarker
		return w.ensureMarker(ctx, dcfg, create)
	case replicaDSN == "":
		w.logger.WarnContext(ctx, "the replica was not checked for keeping annotations (writeback.mode annotate)")
	}
	w.mode = ModeAnnotate
	return nil
}

// checkPrimary makes sure the writeback session logs annotations: when the
// server's default is off, it turns the session variable on for every
// connection if the user may.
func (w *Writer) checkPrimary(ctx context.Context, flavor string, dcfg *mysql.Config) ([]string, error) {
	v := annotationVar(flavor)
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
	db, err := connect(ctx, ncfg, w.cfg.MaxOpenConns)
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
	rcfg, err := ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("replica DSN: %w", err)
	}
	rcfg.Timeout = w.cfg.ConnectTimeout
	rcfg.ReadTimeout = w.cfg.Timeout
	// The replica is the source rowhook reads: its errors name source.dsn,
	// not the writeback primary.
	db, err := connectTo(ctx, "the source (source.dsn)", rcfg, 1)
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

// ensureMarker finds (or creates) the marker table and checks that the
// writeback user can write to it.
func (w *Writer) ensureMarker(ctx context.Context, dcfg *mysql.Config, create bool) error {
	schema, table := dcfg.DBName, DefaultMarkerTable
	if w.cfg.MarkerTable != "" {
		if s, t, ok := strings.Cut(w.cfg.MarkerTable, "."); ok {
			schema, table = s, t
		} else {
			table = w.cfg.MarkerTable
		}
	}
	if schema == "" {
		return yamlconf.Errf("writeback.marker_table", "names no schema and writeback.dsn names no database; write schema.%s", table)
	}
	id := schema + "." + table
	var user string
	_ = w.db.GetContext(ctx, &user, "/* rowhook */ SELECT CURRENT_USER()")
	grant := fmt.Sprintf("GRANT SELECT, INSERT, UPDATE ON %s.%s TO %s", quoteIdent(schema), quoteIdent(table), sqlUser(user))
	ddl := markerDDL(schema, table)
	sc := &schemaCache{db: w.db, tables: map[string]*tableInfo{}}
	ti, err := sc.table(ctx, schema, table)
	if err != nil {
		return err
	}
	if ti == nil {
		if !create && w.cfg.CreateMarker {
			// rowhook check: run would create it; make sure it may.
			if err := w.canCreate(ctx, schema, table); err != nil {
				return fmt.Errorf("%w: %s does not exist and the writeback user cannot create it (%v); a DBA must run on the primary:\n%s;\n%s;", ErrMarkerMissing, id, err, ddl, grant)
			}
			w.logger.InfoContext(ctx, "marker table missing; rowhook run will create it", "table", id)
			w.marker = id
			return nil
		}
		if !w.cfg.CreateMarker {
			return fmt.Errorf("%w: %s does not exist and writeback.create_marker is off; a DBA must run on the primary:\n%s;\n%s;", ErrMarkerMissing, id, ddl, grant)
		}
		if _, err := w.db.ExecContext(ctx, "/* rowhook */ "+ddl); err != nil {
			return fmt.Errorf("%w: create %s: %v; a DBA must run on the primary:\n%s;\n%s;", ErrMarkerMissing, id, err, ddl, grant)
		}
		w.logger.InfoContext(ctx, "created the marker table", "table", id)
		if ti, err = sc.reload(ctx, schema, table); err != nil {
			return err
		}
	}
	for _, c := range []string{"id", "delivery_id", "at"} {
		if ti == nil || ti.column(c) == nil {
			return yamlconf.Errf("writeback.marker_table", "table %s exists but has no column %s; it is not a rowhook marker table (expected: %s)", id, c, ddl)
		}
	}
	w.marker = id
	w.upsert = fmt.Sprintf("INSERT INTO %s.%s (`id`, `delivery_id`, `at`) VALUES (?, ?, UTC_TIMESTAMP(6)) "+
		"ON DUPLICATE KEY UPDATE `delivery_id` = VALUES(`delivery_id`), `at` = VALUES(`at`)", quoteIdent(schema), quoteIdent(table))
	if err := explain(ctx, w.db, strings.Replace(strings.Replace(w.upsert, "?", "0", 1), "?", "''", 1)); err != nil {
		var me *mysql.MySQLError
		if errors.As(err, &me) && (me.Number == 1142 || me.Number == 1143 || me.Number == 1044) {
			return fmt.Errorf("%w: the writeback user cannot write %s (%s); a DBA must run on the primary:\n%s;", ErrMarkerMissing, id, me.Message, grant)
		}
		return classify("check marker table", id, err)
	}
	return nil
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
