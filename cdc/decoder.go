package cdc

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
)

// Errors the decoder and reader return. Test with errors.Is.
var (
	// ErrNoColumnNames: a TABLE_MAP carries no column names and no schema
	// source can supply them.
	ErrNoColumnNames = errors.New("cdc: no column names")
	// ErrColumnCount: the binlog and the current schema disagree on a table's
	// column count, so names cannot be taken from the schema.
	ErrColumnCount = errors.New("cdc: column count mismatch")
	// ErrDecode: a row could not be decoded.
	ErrDecode = errors.New("cdc: decode")
)

// SchemaSource describes tables from the source's current schema. The decoder
// asks it only for tables whose TABLE_MAP lacks names, and on MariaDB for
// tables that may have JSON columns. Implementations cache.
type SchemaSource interface {
	// Table returns the table's current columns, or nil when unknown.
	Table(schema, table string) (*TableInfo, error)
	// Invalidate forgets what is cached for schema.table ("" table: the whole
	// schema), after DDL.
	Invalidate(schema, table string)
}

// DecoderConfig configures a Decoder.
type DecoderConfig struct {
	// Flavor is "mariadb" or "mysql".
	Flavor string
	// Filter selects tables; the zero Filter passes every table.
	Filter Filter
	// Schema supplies column names when the binlog lacks them, and JSON
	// columns on MariaDB; nil means none (offline replay).
	Schema SchemaSource
	// AllowMissingMetadata permits taking names from Schema, with a warning.
	AllowMissingMetadata bool
	// Logger receives warnings; nil discards them.
	Logger *slog.Logger
}

// Decoder turns binlog events into committed transactions. It is not safe
// for concurrent use. Feed it every event in order with Handle.
type Decoder struct {
	cfg    DecoderConfig
	logger *slog.Logger

	file   string
	gtids  mysql.GTIDSet
	tables map[uint64]*table
	warned map[string]bool
	// skipApplied marks a transaction whose GTID gtids already holds (a
	// source re-sending what the checkpoint covers) and keeps it out of
	// gtids, so the set never moves back. The live reader sets it; a
	// replay re-reads on purpose and does not.
	skipApplied bool

	// The transaction being read.
	inTx       bool
	standalone bool
	txGTID     string
	// txMaria is txGTID parsed, when the transaction began with a MariaDB
	// GTID event (txMariaOK): commit needs no parsing then.
	txMaria    mysql.MariadbGTID
	txMariaOK  bool
	txFile     string
	txStart    uint32
	changes    []Change
	annotation string
}

// NewDecoder returns a decoder positioned at the start of file, with gtidSet
// (may be "") as the executed set before the first event it will see.
func NewDecoder(cfg DecoderConfig, file string, gtidSet string) (*Decoder, error) {
	if cfg.Flavor == "" {
		cfg.Flavor = mysql.MariaDBFlavor
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	gs, err := mysql.ParseGTIDSet(cfg.Flavor, gtidSet)
	if err != nil {
		return nil, fmt.Errorf("cdc: parse GTID set %q: %w", gtidSet, err)
	}
	return &Decoder{cfg: cfg, logger: logger, file: file, gtids: gs, tables: map[uint64]*table{}, warned: map[string]bool{}}, nil
}

// InTransaction reports whether a transaction has begun and not committed.
func (d *Decoder) InTransaction() bool { return d.inTx }

// Handle consumes one event. It returns a transaction when ev commits one,
// nil otherwise.
func (d *Decoder) Handle(ev *replication.BinlogEvent) (*Transaction, error) {
	h := ev.Header
	switch e := ev.Event.(type) {
	case *replication.RotateEvent:
		d.file = string(e.NextLogName)
		return nil, nil
	case *replication.MariadbGTIDListEvent:
		// The GTID state at the start of a binlog file: seeds the executed set
		// when reading began by file position with no set given.
		if d.gtids.IsEmpty() {
			for _, g := range e.GTIDs {
				_ = d.gtids.Update(g.String())
			}
		}
		return nil, nil
	case *replication.PreviousGTIDsEvent:
		if d.gtids.IsEmpty() && e.GTIDSets != "" {
			if gs, err := mysql.ParseMysqlGTIDSet(e.GTIDSets); err == nil {
				d.gtids = gs
			}
		}
		return nil, nil
	case *replication.MariadbGTIDEvent:
		d.begin(h, mariadbGTIDString(&e.GTID))
		d.txMaria, d.txMariaOK = e.GTID, true
		d.standalone = e.IsStandalone() || e.IsDDL()
		return nil, nil
	case *replication.GTIDEvent:
		d.begin(h, mysqlGTID(e))
		// MySQL DDL has no BEGIN/XID: the QUERY after the GTID commits it.
		d.standalone = true
		return nil, nil
	case *replication.QueryEvent:
		return d.query(h, e)
	case *replication.MariadbAnnotateRowsEvent:
		d.annotation = string(e.Query)
		return nil, nil
	case *replication.RowsQueryEvent:
		d.annotation = string(e.Query)
		return nil, nil
	case *replication.RowsEvent:
		if !d.inTx {
			// Rows outside BEGIN: a server without GTIDs writing a
			// non-transactional table. Treat the rows as their own transaction.
			d.begin(h, "")
		}
		d.standalone = false
		return nil, d.rows(h, e)
	case *replication.XIDEvent:
		if !d.inTx {
			return nil, nil
		}
		return d.commit(h), nil
	}
	return nil, nil
}

func mysqlGTID(e *replication.GTIDEvent) string {
	u, err := uuidString(e.SID)
	if err != nil {
		return ""
	}
	return u + ":" + strconv.FormatInt(e.GNO, 10)
}

func uuidString(b []byte) (string, error) {
	if len(b) != 16 {
		return "", fmt.Errorf("bad SID length %d", len(b))
	}
	const hexd = "0123456789abcdef"
	var s strings.Builder
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			s.WriteByte('-')
		}
		s.WriteByte(hexd[c>>4])
		s.WriteByte(hexd[c&15])
	}
	return s.String(), nil
}

func (d *Decoder) begin(h *replication.EventHeader, gtid string) {
	d.inTx = true
	d.standalone = false
	d.txGTID = gtid
	d.txMariaOK = false
	d.txFile = d.file
	d.txStart = startPos(h)
	d.changes = d.changes[:0]
	d.annotation = ""
}

func startPos(h *replication.EventHeader) uint32 {
	if h.LogPos >= h.EventSize {
		return h.LogPos - h.EventSize
	}
	return 0
}

func (d *Decoder) query(h *replication.EventHeader, e *replication.QueryEvent) (*Transaction, error) {
	q := bytes.TrimSpace(e.Query)
	switch {
	case bytes.EqualFold(q, []byte("BEGIN")):
		if !d.inTx {
			d.begin(h, "")
		}
		d.standalone = false
		return nil, nil
	case bytes.EqualFold(q, []byte("COMMIT")):
		// Non-transactional tables (MyISAM, Aria) end with a COMMIT query
		// instead of an XID event.
		if d.inTx {
			return d.commit(h), nil
		}
		return nil, nil
	case bytes.EqualFold(q, []byte("ROLLBACK")):
		// Only reaches the binlog for non-transactional changes that could
		// not be undone; the row events before it did happen.
		if d.inTx {
			return d.commit(h), nil
		}
		return nil, nil
	}
	// DDL (or another statement logged as a query): schema may have changed.
	if d.cfg.Schema != nil {
		// The query's default schema need not be the altered table's.
		d.cfg.Schema.Invalidate("", "")
	}
	if !d.inTx {
		d.begin(h, "")
		d.standalone = true
	}
	if d.standalone {
		return d.commit(h), nil
	}
	return nil, nil
}

func (d *Decoder) commit(h *replication.EventHeader) *Transaction {
	applied := d.skipApplied && d.txGTID != "" && d.holds(d.txGTID)
	if d.txGTID != "" && !applied {
		if err := d.addTxGTID(); err != nil {
			d.logger.Warn("cdc: cannot add GTID to the executed set", "gtid", d.txGTID, "error", oneLine(err))
		}
	}
	id := d.txGTID
	if id == "" {
		id = d.txFile + ":" + strconv.FormatUint(uint64(d.txStart), 10)
	}
	ts := time.Unix(int64(h.Timestamp), 0).UTC()
	tx := &Transaction{
		ID:        id,
		GTID:      d.txGTID,
		Timestamp: ts,
		Checkpoint: Checkpoint{
			Flavor:    d.cfg.Flavor,
			File:      d.file,
			Pos:       h.LogPos,
			GTIDSet:   gtidSetString(d.gtids),
			Timestamp: ts,
		},
		applied: applied,
	}
	if len(d.changes) > 0 {
		// Hand the slice over instead of copying (a Change is large); the
		// next transaction starts a new one sized like this one.
		tx.Changes = d.changes
		d.changes = make([]Change, 0, len(tx.Changes))
		for i := range tx.Changes {
			c := &tx.Changes[i]
			c.Tx = id
			c.ID = id + ":" + strconv.Itoa(c.Seq)
			c.Timestamp = ts
		}
	}
	d.inTx = false
	d.standalone = false
	d.txGTID = ""
	d.annotation = ""
	return tx
}

// holds reports whether the executed set already contains gtid. On MariaDB
// the set is a position, one GTID per domain: a GTID is held when its domain
// is at the same server's GTID with an equal or higher sequence number. A
// lower number from another server is not held: with gtid_strict_mode off a
// domain's numbers may go back after a failover, and those transactions are
// new. Delivering a transaction twice is recoverable (event ids repeat);
// skipping a new one is not.
func (d *Decoder) holds(gtid string) bool {
	switch set := d.gtids.(type) {
	case *mysql.MariadbGTIDSet:
		if d.txMariaOK && gtid == d.txGTID {
			cur, ok := set.Sets[d.txMaria.DomainID]
			return ok && cur.ServerID == d.txMaria.ServerID && cur.SequenceNumber >= d.txMaria.SequenceNumber
		}
		g, err := mysql.ParseMariadbGTID(gtid)
		if err != nil {
			return false
		}
		cur, ok := set.Sets[g.DomainID]
		return ok && cur.ServerID == g.ServerID && cur.SequenceNumber >= g.SequenceNumber
	case *mysql.MysqlGTIDSet:
		g, err := mysql.ParseMysqlGTIDSet(gtid)
		if err != nil {
			return false
		}
		return set.Contain(g)
	}
	return false
}

// addTxGTID adds the transaction's GTID to the executed set.
func (d *Decoder) addTxGTID() error {
	if set, ok := d.gtids.(*mysql.MariadbGTIDSet); ok && d.txMariaOK {
		g := d.txMaria
		return set.AddSet(&g)
	}
	return d.gtids.Update(d.txGTID)
}

// mariadbGTIDString is g.String() without fmt (once per transaction).
func mariadbGTIDString(g *mysql.MariadbGTID) string {
	if g.DomainID == 0 && g.ServerID == 0 && g.SequenceNumber == 0 {
		return ""
	}
	var b [64]byte
	return string(appendMariadbGTID(b[:0], g))
}

func appendMariadbGTID(b []byte, g *mysql.MariadbGTID) []byte {
	b = strconv.AppendUint(b, uint64(g.DomainID), 10)
	b = append(b, '-')
	b = strconv.AppendUint(b, uint64(g.ServerID), 10)
	b = append(b, '-')
	return strconv.AppendUint(b, g.SequenceNumber, 10)
}

// gtidSetString is set.String(): for the usual one-domain MariaDB set it
// formats the one GTID itself, without the general path's slices, sort
// and fmt (once per transaction, for its checkpoint).
func gtidSetString(set mysql.GTIDSet) string {
	if ms, ok := set.(*mysql.MariadbGTIDSet); ok && len(ms.Sets) == 1 {
		for _, g := range ms.Sets {
			return mariadbGTIDString(g)
		}
	}
	return set.String()
}

func (d *Decoder) tableFor(e *replication.RowsEvent) (*table, error) {
	tme := e.Table
	if t, ok := d.tables[e.TableID]; ok && (t.tme == tme || sameTableMap(t.tme, tme)) {
		t.tme = tme
		return t, nil
	}
	schema, name := string(tme.Schema), string(tme.Table)
	var hint *TableInfo
	hasNames := len(tme.ColumnName) == int(tme.ColumnCount)
	if d.cfg.Schema != nil && (!hasNames || (d.cfg.Flavor == mysql.MariaDBFlavor && mayHoldJSON(tme))) {
		info, err := d.cfg.Schema.Table(schema, name)
		if err != nil {
			d.logger.Warn("cdc: cannot read table schema", "table", schema+"."+name, "error", oneLine(err))
		} else {
			hint = info
		}
	}
	if !hasNames {
		if !d.cfg.AllowMissingMetadata && d.cfg.Schema != nil {
			return nil, fmt.Errorf("%w: %s.%s: the binlog's TABLE_MAP has no column names (binlog_row_metadata is not FULL); set binlog_row_metadata=FULL on the source, or allow_missing_metadata: true to take names from the current schema",
				ErrNoColumnNames, schema, name)
		}
		key := schema + "." + name
		if !d.warned[key] {
			d.warned[key] = true
			d.logger.Warn("cdc: binlog has no column names for table; naming columns from the current schema (rows written before an ALTER may be misnamed): set binlog_row_metadata=FULL", "table", key)
		}
	}
	t, err := newTable(tme, d.cfg.Flavor, hint)
	if err != nil {
		return nil, err
	}
	d.tables[e.TableID] = t
	return t, nil
}

// sameTableMap reports whether two TABLE_MAP events describe the same table
// layout, so the converters built for one serve the other.
func sameTableMap(a, b *replication.TableMapEvent) bool {
	if a == nil || b == nil || a.ColumnCount != b.ColumnCount || !bytes.Equal(a.Schema, b.Schema) || !bytes.Equal(a.Table, b.Table) ||
		!bytes.Equal(a.ColumnType, b.ColumnType) || len(a.ColumnName) != len(b.ColumnName) {
		return false
	}
	for i := range a.ColumnMeta {
		if a.ColumnMeta[i] != b.ColumnMeta[i] {
			return false
		}
	}
	for i := range a.ColumnName {
		if !bytes.Equal(a.ColumnName[i], b.ColumnName[i]) {
			return false
		}
	}
	// Collations decide binary vs text, labels render ENUM and SET, the key
	// is the record key: an ALTER that changes only these keeps the table
	// id's layout but must not keep its converters.
	return bytes.Equal(a.SignednessBitmap, b.SignednessBitmap) &&
		slices.Equal(a.DefaultCharset, b.DefaultCharset) && slices.Equal(a.ColumnCharset, b.ColumnCharset) &&
		slices.Equal(a.EnumSetDefaultCharset, b.EnumSetDefaultCharset) && slices.Equal(a.EnumSetColumnCharset, b.EnumSetColumnCharset) &&
		sameLabels(a.EnumStrValue, b.EnumStrValue) && sameLabels(a.SetStrValue, b.SetStrValue) &&
		slices.Equal(a.PrimaryKey, b.PrimaryKey)
}

func sameLabels(a, b [][][]byte) bool {
	return slices.EqualFunc(a, b, func(x, y [][]byte) bool { return slices.EqualFunc(x, y, bytes.Equal) })
}

// mayHoldJSON reports whether a MariaDB table has a LONGTEXT/LONGBLOB column,
// the storage of MariaDB's JSON type, which only the schema can tell apart.
func mayHoldJSON(tme *replication.TableMapEvent) bool {
	for i, t := range tme.ColumnType {
		if t == mysql.MYSQL_TYPE_BLOB && tme.ColumnMeta[i] == 4 {
			return true
		}
	}
	return false
}

func (d *Decoder) rows(h *replication.EventHeader, e *replication.RowsEvent) error {
	if e.Table == nil {
		return nil
	}
	schema, name := string(e.Table.Schema), string(e.Table.Table)
	if !d.cfg.Filter.Match(schema, name) {
		return nil
	}
	t, err := d.tableFor(e)
	if err != nil {
		return err
	}
	var op Op
	switch e.Type() {
	case replication.EnumRowsEventTypeInsert:
		op = OpInsert
	case replication.EnumRowsEventTypeUpdate:
		op = OpUpdate
	case replication.EnumRowsEventTypeDelete:
		op = OpDelete
	default:
		return nil
	}
	pos := startPos(h)
	step := 1
	if op == OpUpdate {
		step = 2
	}
	for r := 0; r+step-1 < len(e.Rows); r += step {
		c := Change{
			Schema:     schema,
			Table:      name,
			Op:         op,
			Columns:    t.columns,
			PKColumns:  t.pkNames,
			GTID:       d.txGTID,
			File:       d.file,
			Pos:        pos,
			Row:        r / step,
			Seq:        len(d.changes),
			Annotation: d.annotation,
		}
		var skipped [][]int
		if len(e.SkippedColumns) > 0 {
			skipped = e.SkippedColumns
		}
		img, err := t.image(e.Rows[r], skippedAt(skipped, r))
		if err != nil {
			return d.rowError(t, h, r/step, err)
		}
		switch op {
		case OpInsert:
			c.After = img
		case OpDelete:
			c.Before = img
		case OpUpdate:
			c.Before = img
			after, err := t.image(e.Rows[r+1], skippedAt(skipped, r+1))
			if err != nil {
				return d.rowError(t, h, r/step, err)
			}
			c.After = after
		}
		c.Changed = t.changed(c.Before, c.After, op)
		c.PK = t.key(c.Image())
		d.changes = append(d.changes, c)
	}
	return nil
}

func (d *Decoder) rowError(t *table, h *replication.EventHeader, row int, err error) error {
	return fmt.Errorf("%w: %s.%s at %s:%d row %d: %v", ErrDecode, t.schema, t.name, d.file, startPos(h), row, err)
}

func skippedAt(s [][]int, i int) []int {
	if i < len(s) {
		return s[i]
	}
	return nil
}

func (t *table) image(values []any, skipped []int) (Row, error) {
	row := make(Row, len(t.columns))
	for i, v := range values {
		if i >= len(t.columns) {
			break
		}
		if v != nil && t.conv[i] != nil {
			cv, err := t.conv[i](v)
			if err != nil {
				return nil, fmt.Errorf("column %s: %w", t.columns[i], err)
			}
			v = cv
		}
		row[t.columns[i]] = v
	}
	for _, i := range skipped {
		if i < len(t.columns) {
			delete(row, t.columns[i])
		}
	}
	return row, nil
}

func (t *table) changed(before, after Row, op Op) []string {
	if op != OpUpdate && len(before)+len(after) == len(t.columns) {
		// Full image: every column. Shared, read-only.
		return t.columns
	}
	out := make([]string, 0, len(t.columns))
	for _, col := range t.columns {
		switch op {
		case OpInsert:
			if _, ok := after[col]; ok {
				out = append(out, col)
			}
		case OpDelete:
			if _, ok := before[col]; ok {
				out = append(out, col)
			}
		case OpUpdate:
			b, bok := before[col]
			a, aok := after[col]
			if aok && (!bok || !valuesEqual(a, b)) {
				out = append(out, col)
			}
		}
	}
	return out
}

func (t *table) key(img Row) Row {
	if len(t.pkNames) == 0 {
		return nil
	}
	k := make(Row, len(t.pkNames))
	for _, c := range t.pkNames {
		k[c] = img[c]
	}
	return k
}
