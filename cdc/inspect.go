package cdc

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// ErrInspect: the source is not set up for rowhook. Always wrapped in an
// *InspectionError listing each problem and its fix.
var ErrInspect = errors.New("cdc: source not ready for rowhook")

// Inspection is what the start-up check found on the source.
type Inspection struct {
	Flavor  string
	Version string
	// ServerID is the source's own server_id.
	ServerID uint32
	// IsReplica is true when the source replicates from another server.
	IsReplica       bool
	BinlogFormat    string
	RowImage        string
	RowMetadata     string
	LogSlaveUpdates bool
	// GTID is true when the source writes GTIDs (always on MariaDB).
	GTID bool
	// Annotations is true when row events carry their statement text
	// (MariaDB binlog_annotate_row_events, MySQL binlog_rows_query_log_events).
	Annotations bool
	// Warnings are problems that do not stop rowhook.
	Warnings []string
}

// InspectionError lists everything wrong with the source's settings.
type InspectionError struct {
	Source   string
	Problems []string
}

func (e *InspectionError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "cdc: source %s is not ready for rowhook:", e.Source)
	for _, p := range e.Problems {
		b.WriteString("\n  - ")
		b.WriteString(p)
	}
	return b.String()
}

// Unwrap makes errors.Is(err, ErrInspect) true.
func (e *InspectionError) Unwrap() error { return ErrInspect }

// Inspect connects to the source and checks, like gh-ost does, every setting
// rowhook depends on: binary logging in ROW format with FULL row images and
// FULL row metadata, log_slave_updates on a replica, and the grants. It
// returns an *InspectionError naming each problem and the exact change that
// fixes it.
func (r *Reader) Inspect(ctx context.Context) (*Inspection, error) {
	db, err := r.DB()
	if err != nil {
		return nil, err
	}
	var version string
	var serverID uint32
	var logBin string
	if err := db.QueryRowContext(ctx, "/* rowhook */ SELECT VERSION(), @@server_id, @@log_bin").Scan(&version, &serverID, &logBin); err != nil {
		return nil, fmt.Errorf("cdc: connect to source %s: %w", r.src.Redacted(), err)
	}
	in := &Inspection{Version: version, ServerID: serverID, Flavor: mysql.MySQLFlavor}
	if strings.Contains(strings.ToLower(version), "mariadb") {
		in.Flavor = mysql.MariaDBFlavor
	}
	if r.cfg.Flavor != "" && r.cfg.Flavor != in.Flavor {
		return nil, fmt.Errorf("cdc: source.flavor is %s but %s is %s (version %s)", r.cfg.Flavor, r.src.Redacted(), in.Flavor, version)
	}
	cnf := "[mariadbd]"
	if in.Flavor == mysql.MySQLFlavor {
		cnf = "[mysqld]"
	}
	var problems []string
	if logBin != "1" && !strings.EqualFold(logBin, "ON") {
		problems = append(problems, fmt.Sprintf("binary logging is off: add log_bin=mysql-bin under %s in the server's configuration and restart it", cnf))
	}
	if serverID == r.serverID {
		problems = append(problems, fmt.Sprintf("source.server_id %d equals the source's own server_id: pick another value", serverID))
	}
	variable := func(name string) (string, bool) {
		var v sql.NullString
		if err := db.QueryRowContext(ctx, "/* rowhook */ SELECT @@"+name).Scan(&v); err != nil {
			return "", false
		}
		return v.String, true
	}
	if v, _ := variable("binlog_format"); !strings.EqualFold(v, "ROW") {
		problems = append(problems, fmt.Sprintf("binlog_format is %s; rowhook needs ROW: run SET GLOBAL binlog_format=ROW and add binlog_format=ROW under %s (sessions already open keep the old format until they reconnect)", v, cnf))
	} else {
		in.BinlogFormat = v
	}
	if v, _ := variable("binlog_row_image"); !strings.EqualFold(v, "FULL") {
		problems = append(problems, fmt.Sprintf("binlog_row_image is %s; rowhook needs FULL (complete before and after images): SET GLOBAL binlog_row_image=FULL and binlog_row_image=FULL under %s", v, cnf))
	} else {
		in.RowImage = v
	}
	if v, ok := variable("binlog_row_metadata"); !ok {
		msg := fmt.Sprintf("this server (%s) has no binlog_row_metadata: column names cannot be read from the binlog; use MariaDB ≥ 10.5 or MySQL ≥ 8.0.1", version)
		if r.cfg.AllowMissingMetadata {
			in.Warnings = append(in.Warnings, msg+" (allow_missing_metadata: names come from the current schema)")
		} else {
			problems = append(problems, msg+", or set source.allow_missing_metadata: true to take names from the current schema")
		}
	} else if !strings.EqualFold(v, "FULL") {
		in.RowMetadata = v
		msg := fmt.Sprintf("binlog_row_metadata is %s; rowhook needs FULL so rows keep the column names they were written with: SET GLOBAL binlog_row_metadata=FULL and binlog_row_metadata=FULL under %s", v, cnf)
		if r.cfg.AllowMissingMetadata {
			in.Warnings = append(in.Warnings, msg+" (allow_missing_metadata: names come from the current schema meanwhile)")
		} else {
			problems = append(problems, msg+" (or set source.allow_missing_metadata: true to take names from the current schema)")
		}
	} else {
		in.RowMetadata = v
	}
	in.IsReplica = r.isReplica(ctx, db, in.Flavor)
	if v, _ := variable("log_slave_updates"); v == "1" || strings.EqualFold(v, "ON") {
		in.LogSlaveUpdates = true
	} else if in.IsReplica {
		problems = append(problems, fmt.Sprintf("this source is a replica but log_slave_updates is OFF, so what it replicates never reaches its binlog: add log_slave_updates=ON under %s and restart it", cnf))
	}
	if in.Flavor == mysql.MariaDBFlavor {
		in.GTID = true
		if v, _ := variable("binlog_annotate_row_events"); v == "1" || strings.EqualFold(v, "ON") {
			in.Annotations = true
		}
		if in.IsReplica {
			if v, _ := variable("replicate_annotate_row_events"); v != "1" && !strings.EqualFold(v, "ON") {
				in.Annotations = false
			}
		}
	} else {
		if v, _ := variable("gtid_mode"); strings.EqualFold(v, "ON") {
			in.GTID = true
		}
		if v, _ := variable("binlog_rows_query_log_events"); v == "1" || strings.EqualFold(v, "ON") {
			in.Annotations = true
		}
	}
	if p := r.checkGrants(ctx, db, in.Flavor); p != "" {
		problems = append(problems, p)
	}
	r.mu.Lock()
	r.flavor = in.Flavor
	r.inspection = in
	r.mu.Unlock()
	if len(problems) > 0 {
		return in, &InspectionError{Source: r.src.Redacted(), Problems: problems}
	}
	return in, nil
}

func (r *Reader) isReplica(ctx context.Context, db *sql.DB, flavor string) bool {
	queries := []string{"SHOW SLAVE STATUS"}
	if flavor == mysql.MySQLFlavor {
		queries = []string{"SHOW REPLICA STATUS", "SHOW SLAVE STATUS"}
	}
	for _, q := range queries {
		rows, err := db.QueryContext(ctx, "/* rowhook */ "+q)
		if err != nil {
			continue
		}
		has := rows.Next()
		rows.Close()
		return has
	}
	return false
}

var grantOnAll = regexp.MustCompile(`(?i)^GRANT (.+) ON \*\.\* TO `)

// checkGrants returns a problem when the user lacks what reading the binlog
// needs: REPLICATION SLAVE (the dump itself) and REPLICATION CLIENT / BINLOG
// MONITOR (SHOW MASTER STATUS, SHOW BINARY LOGS).
func (r *Reader) checkGrants(ctx context.Context, db *sql.DB, flavor string) string {
	rows, err := db.QueryContext(ctx, "/* rowhook */ SHOW GRANTS")
	if err != nil {
		return ""
	}
	defer rows.Close()
	var slave, client, viaRole bool
	for rows.Next() {
		var g string
		if rows.Scan(&g) != nil {
			continue
		}
		m := grantOnAll.FindStringSubmatch(g)
		if m == nil {
			if strings.HasPrefix(strings.ToUpper(g), "GRANT `") || strings.HasPrefix(strings.ToUpper(g), "GRANT '") {
				viaRole = true // a role grant: its privileges are not listed here
			}
			continue
		}
		privs := strings.ToUpper(m[1])
		if strings.Contains(privs, "ALL PRIVILEGES") {
			slave, client = true, true
		}
		if strings.Contains(privs, "REPLICATION SLAVE") {
			slave = true
		}
		if strings.Contains(privs, "REPLICATION CLIENT") || strings.Contains(privs, "BINLOG MONITOR") || strings.Contains(privs, "SUPER") {
			client = true
		}
	}
	if slave && client {
		return ""
	}
	if viaRole {
		return ""
	}
	var missing []string
	if !slave {
		missing = append(missing, "REPLICATION SLAVE")
	}
	if !client {
		if flavor == mysql.MariaDBFlavor {
			missing = append(missing, "BINLOG MONITOR")
		} else {
			missing = append(missing, "REPLICATION CLIENT")
		}
	}
	return fmt.Sprintf("user %q lacks %s: run GRANT %s, SELECT ON *.* TO '%s'@'%%' (adjust the host) on the source",
		r.src.User, strings.Join(missing, " and "), strings.Join(missing, ", "), r.src.User)
}
