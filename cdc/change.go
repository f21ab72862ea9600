// Package cdc reads a MySQL or MariaDB binlog and turns its row events into
// typed row changes, grouped by transaction and emitted only at commit.
//
// Column names, signedness, ENUM/SET labels and primary keys come from the
// binlog's own TABLE_MAP metadata (binlog_row_metadata=FULL), so a row written
// before an ALTER TABLE keeps the names it had when it was written.
package cdc

import (
	"fmt"
	"time"
)

// Op is the kind of row change.
type Op string

// The row operations.
const (
	OpInsert Op = "insert"
	OpUpdate Op = "update"
	OpDelete Op = "delete"
)

// Row is one row image: column name → value. Values are rendered by
// DecodeValue's rules: int64 / uint64 for integers, Decimal for DECIMAL,
// float32 / float64, string for text, dates, times, ENUM and SET labels,
// Bytes for binary strings, JSON for JSON documents, Bits for BIT, and nil
// for SQL NULL.
type Row map[string]any

// Change is one row change read from the binlog.
type Change struct {
	// ID identifies the change stably across replays: the transaction id
	// and the row's ordinal within the transaction ("0-1-42:3").
	ID     string `json:"id"`
	Schema string `json:"schema"`
	Table  string `json:"table"`
	Op     Op     `json:"op"`
	// Before is the row before an update or delete (nil on insert).
	Before Row `json:"before"`
	// After is the row after an insert or update (nil on delete).
	After Row `json:"after"`
	// Changed lists, in table order, the columns whose values differ between
	// Before and After on an update; on insert and delete it lists every column.
	Changed []string `json:"changed"`
	// PK holds the primary key columns and their values (from After, or
	// Before on delete). Nil when the table has no primary key.
	PK Row `json:"pk"`
	// Columns is the table's column list as written in the binlog.
	Columns []string `json:"-"`
	// PKColumns lists the primary key column names in key order.
	PKColumns []string `json:"-"`

	// GTID is the transaction's GTID ("0-1-42" on MariaDB, "uuid:n" on
	// MySQL), empty when the server does not use GTIDs.
	GTID string `json:"gtid,omitempty"`
	// File and Pos locate the rows event in the source's binlog: Pos is the
	// event's start offset.
	File string `json:"file"`
	Pos  uint32 `json:"pos"`
	// Row is the row's index within its rows event.
	Row int `json:"row"`
	// Seq is the row's ordinal within its transaction, from 0.
	Seq int `json:"seq"`
	// Timestamp is the transaction's commit time from the binlog (second
	// resolution), never the time the change was read.
	Timestamp time.Time `json:"ts"`
	// Tx is the transaction id: the GTID when there is one, otherwise the
	// binlog file and offset of the transaction's first event.
	Tx string `json:"tx"`
	// Annotation is the SQL statement that produced the row, when the source
	// logs it (MariaDB binlog_annotate_row_events, MySQL
	// binlog_rows_query_log_events). Writeback tags its statements there.
	Annotation string `json:"-"`
}

// Key returns the change's record key: "schema.table:" followed by the primary
// key values, used to order and deduplicate per record.
func (c *Change) Key() string {
	k := c.Schema + "." + c.Table + ":"
	for i, col := range c.PKColumns {
		if i > 0 {
			k += ","
		}
		k += fmt.Sprint(c.PK[col])
	}
	return k
}

// Image returns After, or Before on delete: the row a rule looks at.
func (c *Change) Image() Row {
	if c.Op == OpDelete {
		return c.Before
	}
	return c.After
}

// WritebackTag starts the comment every statement of rowhook's writeback
// carries; the reader sees it in the binlog's Annotate_rows / Rows_query
// events (Change.Annotation), and rules skip changes whose statement
// carries it.
const WritebackTag = "/* rowhook writeback"

// Transaction is one committed binlog transaction.
type Transaction struct {
	// ID is the transaction id (see Change.Tx).
	ID string
	// GTID is the transaction's GTID, empty without GTIDs.
	GTID string
	// Timestamp is the commit time from the binlog.
	Timestamp time.Time
	// Changes are the transaction's row changes in binlog order, after
	// include/exclude filters. A transaction with no matching rows (DDL,
	// filtered tables) is still delivered, with no changes, so that the
	// consumer can advance its checkpoint.
	Changes []Change
	// Checkpoint is where to resume to read the transaction after this one.
	Checkpoint Checkpoint

	// applied: the checkpoint being read from already covers this
	// transaction (the source sent it again); the reader skips it.
	applied bool
}

// Checkpoint is a resume point between two transactions. It only ever
// advances at transaction ends.
type Checkpoint struct {
	// Flavor is "mariadb" or "mysql".
	Flavor string `json:"flavor"`
	// File and Pos are the binlog file and the offset just after the
	// transaction's commit event.
	File string `json:"file"`
	Pos  uint32 `json:"pos"`
	// GTIDSet is the executed GTID set including this transaction (MariaDB
	// gtid_binlog_pos form, or MySQL gtid_executed form); empty without GTIDs.
	GTIDSet string `json:"gtid_set,omitempty"`
	// Timestamp is the commit time of the last transaction read.
	Timestamp time.Time `json:"ts"`
}

// IsZero reports whether c holds no position.
func (c Checkpoint) IsZero() bool { return c.File == "" && c.GTIDSet == "" }

// String renders the checkpoint for logs and errors.
func (c Checkpoint) String() string {
	s := fmt.Sprintf("%s:%d", c.File, c.Pos)
	if c.GTIDSet != "" {
		s += " gtid " + c.GTIDSet
	}
	return s
}
