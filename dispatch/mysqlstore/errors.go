package mysqlstore

import (
	"database/sql/driver"
	"encoding/json"
	"errors"
	"net"
	"syscall"

	"github.com/go-sql-driver/mysql"
)

// TransientError wraps a database error that a retry may cure: the
// connection was lost or refused, InnoDB chose the transaction as a
// deadlock victim (1213), a lock wait timed out (1205), the server is
// shutting down or out of connections. The transaction was rolled back,
// except when the connection dropped during COMMIT itself, where its
// outcome is unknown; both are safe to retry because delivery ids make a
// repeated Commit insert nothing twice.
//
// The store does not retry by itself. The dispatcher keeps its contract
// for every store: a failed Commit is sticky (the binlog reader restarts
// from Checkpoint), Record is retried, reads are retried at the next poll.
// Test with errors.As or IsTransient.
type TransientError struct {
	Err error
}

// Error returns the wrapped error's text, marked transient.
func (e *TransientError) Error() string { return e.Err.Error() + " (transient)" }

// Unwrap returns the database error.
func (e *TransientError) Unwrap() error { return e.Err }

// IsTransient reports whether err, or an error it wraps, is a
// *TransientError.
func IsTransient(err error) bool {
	var te *TransientError
	return errors.As(err, &te)
}

// MySQL/MariaDB error numbers that mean "try again".
var transientCodes = map[uint16]bool{
	1040: true, // too many connections
	1053: true, // server shutdown in progress
	1205: true, // lock wait timeout exceeded
	1213: true, // deadlock found when trying to get lock
	1927: true, // MariaDB: connection was killed
	2006: true, // server has gone away
	2013: true, // lost connection during query
}

// classify wraps err in a *TransientError when a retry may cure it.
func classify(err error) error {
	if err == nil || IsTransient(err) {
		return err
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		if transientCodes[me.Number] {
			return &TransientError{Err: err}
		}
		return err
	}
	var ne net.Error
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, mysql.ErrInvalidConn) || errors.As(err, &ne) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return &TransientError{Err: err}
	}
	return err
}

func unmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
