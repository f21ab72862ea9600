package writeback

import (
	"errors"
	"fmt"
	"strings"

	"github.com/go-sql-driver/mysql"
)

// The package's sentinel errors.
var (
	// ErrNoMapping: Apply was called for a rule without a writeback block.
	ErrNoMapping = errors.New("writeback: rule has no writeback mapping")
	// ErrRowNotFound: the key addressed no row on the primary (the record
	// was deleted since the change was read).
	ErrRowNotFound = errors.New("writeback: no row with that key")
	// ErrAnnotationsOff: mode annotate, but a server does not log statement
	// annotations.
	ErrAnnotationsOff = errors.New("writeback: statement annotations are not logged")
	// ErrMarkerMissing: the marker table does not exist and could not be
	// created.
	ErrMarkerMissing = errors.New("writeback: marker table missing")
)

// permanent is implemented by errors that know whether retrying can help.
type permanent interface{ Permanent() bool }

// IsPermanent reports whether retrying err cannot succeed: a value that does
// not fit, a failing expression, a missing row, a constraint or privilege
// error. Connection failures, a primary that is down or read-only, deadlocks,
// lock wait timeouts and timeouts are transient. Unknown errors count as
// transient, so they are retried up to the attempt limit.
func IsPermanent(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrNoMapping) || errors.Is(err, ErrRowNotFound) {
		return true
	}
	var p permanent
	if errors.As(err, &p) {
		return p.Permanent()
	}
	return false
}

// ExprError is a mapping expression that failed at run time (for example a
// field access on a response that is not JSON). It is permanent: the same
// response gives the same failure.
type ExprError struct {
	// Path is the expression's configuration path (rules[3].writeback.set.cf_erp_id).
	Path string
	// Err is expr's error.
	Err error
}

// Error names the expression by its configuration path.
func (e *ExprError) Error() string {
	msg := fmt.Sprintf("writeback: %s: %v", e.Path, e.Err)
	if strings.Contains(msg, "cannot fetch") && strings.Contains(msg, "<nil>") {
		msg += " (the value is missing, e.g. a body that is not JSON; use ?. for optional fields: response.json?.id)"
	}
	return msg
}

// Unwrap returns the expr error.
func (e *ExprError) Unwrap() error { return e.Err }

// Permanent reports true.
func (e *ExprError) Permanent() bool { return true }

// RowNotFoundError is a key that matched no row on the primary.
type RowNotFoundError struct {
	// Table is schema.table.
	Table string
	// Key is the key columns and the values looked up.
	Key map[string]any
}

// Error names the table and the key looked up.
func (e *RowNotFoundError) Error() string {
	return fmt.Sprintf("writeback: %s has no row with %s (deleted since the change was read?)", e.Table, formatKey(e.Key))
}

// Unwrap returns ErrRowNotFound.
func (e *RowNotFoundError) Unwrap() error { return ErrRowNotFound }

// Permanent reports true.
func (e *RowNotFoundError) Permanent() bool { return true }

func formatKey(k map[string]any) string {
	s := ""
	for i, c := range sortedKeys(k) {
		if i > 0 {
			s += " and "
		}
		s += fmt.Sprintf("%s = %s", c, describe(k[c]))
	}
	return s
}

// DBError is a failure talking to the primary: Op says which step (begin,
// update, commit, …), Transient whether a retry may succeed.
type DBError struct {
	// Op is the step that failed.
	Op string
	// Table is schema.table, when known.
	Table string
	// Transient is true for connection loss, a primary that is down or
	// read-only, deadlocks, lock wait timeouts and timeouts.
	Transient bool
	// Err is the driver's error.
	Err error
}

// Error names the step, the table and whether a retry may help.
func (e *DBError) Error() string {
	kind := "permanent"
	if e.Transient {
		kind = "transient"
	}
	if e.Table != "" {
		return fmt.Sprintf("writeback: %s %s (%s): %v", e.Op, e.Table, kind, e.Err)
	}
	return fmt.Sprintf("writeback: %s (%s): %v", e.Op, kind, e.Err)
}

// Unwrap returns the driver's error.
func (e *DBError) Unwrap() error { return e.Err }

// Permanent reports whether retrying cannot help.
func (e *DBError) Permanent() bool { return !e.Transient }

// transientCodes are MariaDB/MySQL server errors worth retrying.
var transientCodes = map[uint16]string{
	1040: "too many connections",
	1053: "server shutdown in progress",
	1205: "lock wait timeout",
	1213: "deadlock",
	1290: "server is read-only (--read-only, e.g. during a failover)",
	1317: "query interrupted",
	1836: "server is in read-only mode",
	1927: "connection killed",
	2006: "server has gone away",
	2013: "lost connection during query",
	1969: "statement timeout",
	3024: "statement timeout",
	1792: "read-only transaction",
	4031: "client idle timeout",
}

// classify wraps a database error for op; nil stays nil.
func classify(op, table string, err error) error {
	if err == nil {
		return nil
	}
	return &DBError{Op: op, Table: table, Transient: isTransient(err), Err: err}
}

// isTransient: server errors by code; every other error (connection
// refused or reset, bad connection, timeouts, EOF) is a failure to reach the
// primary, which a retry may get past. Retrying is bounded by the attempt
// limit; losing the writeback is not.
func isTransient(err error) bool {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		_, ok := transientCodes[me.Number]
		return ok
	}
	return true
}
