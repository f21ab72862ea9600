package cdc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"time"
	"unsafe"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
)

// The fast row-image decoder.
//
// go-mysql decodes every value into its own representation (int8/int16/...
// for integers, fmt.Sprintf for dates and decimals, a map of signedness per
// rows event, a skip list per row), which the converters in values.go then
// re-box. rowDecoder decodes the common column types of a rows event straight
// into the values the converters produce, or into exactly what go-mysql
// produces where the right rendering depends on more than the TABLE_MAP
// (ENUM/SET labels, the binary/text/JSON choice of a LONGBLOB), so that the
// converters leave them unchanged and what reaches a Change is the same.
//
// Anything it does not handle (JSON, GEOMETRY, TIME, pre-5.6 temporal types,
// VECTOR, unknown types, odd metadata, compressed MariaDB rows events, MySQL
// partial JSON updates, v0 events, a column count that does not match the
// TABLE_MAP) is decoded by go-mysql's DecodeData for the whole event. So is
// any event the fast path finds malformed: go-mysql then decides between an
// error and a value, exactly as before. rowdecode_test.go proves the two agree.

// fastRowDecoding switches the fast path on for every stream; off, every
// rows event is decoded by go-mysql. It exists as a kill switch.
var fastRowDecoding = true

// rowsDecodeFunc returns the RowsEventDecodeFunc for one binlog stream: rows
// of tables filter rejects are not decoded at all (the decoder drops them),
// the rest go through fast, or go-mysql's DecodeData when fast is nil or
// declines the event. fast is not safe for concurrent use: give each stream
// its own (go-mysql calls the function from its one parsing goroutine).
func rowsDecodeFunc(filter Filter, fast *rowDecoder) func(*replication.RowsEvent, []byte) error {
	filtered := len(filter.include) > 0 || len(filter.exclude) > 0
	return func(e *replication.RowsEvent, data []byte) error {
		p, err := e.DecodeHeader(data)
		if err != nil {
			return err
		}
		if filtered && e.Table != nil && !filter.Match(string(e.Table.Schema), string(e.Table.Table)) {
			return nil
		}
		if fast != nil && fast.decode(e, data, p) {
			return nil
		}
		return e.DecodeData(p, data)
	}
}

// rowDecoder keeps a decoding plan per table id.
type rowDecoder struct {
	plans map[uint64]*rowPlan
	arena strArena
	// fast and slow count the events decoded by each path, for tests.
	fast, slow int
}

func newRowDecoder() *rowDecoder { return &rowDecoder{plans: map[uint64]*rowPlan{}} }

// decode fills e.Rows and e.SkippedColumns from data[pos:] and reports true,
// or leaves e untouched and reports false when go-mysql must decode the event.
func (d *rowDecoder) decode(e *replication.RowsEvent, data []byte, pos int) bool {
	p := d.plan(e)
	if p == nil || !fastEventType(e) {
		d.slow++
		return false
	}
	rows, skipped, err := p.decodeRows(d, e, data[pos:])
	if err != nil {
		d.slow++
		return false
	}
	e.Rows, e.SkippedColumns = rows, skipped
	d.fast++
	return true
}

// rowsEventType reads RowsEvent's unexported event type: the exported fields
// cannot tell a MariaDB compressed rows event from a plain v1 one. nil when
// go-mysql's layout changed, which turns the fast path off.
var rowsEventType = func() func(*replication.RowsEvent) replication.EventType {
	f, ok := reflect.TypeFor[replication.RowsEvent]().FieldByName("eventType")
	if !ok || f.Type != reflect.TypeFor[replication.EventType]() || len(f.Index) != 1 {
		return nil
	}
	idx := f.Index[0]
	return func(e *replication.RowsEvent) replication.EventType {
		return replication.EventType(reflect.ValueOf(e).Elem().Field(idx).Uint())
	}
}()

// fastEventType reports whether e is a plain v1 or v2 write, update or
// delete rows event (not compressed, not a partial JSON update, not v0).
func fastEventType(e *replication.RowsEvent) bool {
	if rowsEventType == nil {
		return false
	}
	switch rowsEventType(e) {
	case replication.WRITE_ROWS_EVENTv1, replication.WRITE_ROWS_EVENTv2,
		replication.DELETE_ROWS_EVENTv1, replication.DELETE_ROWS_EVENTv2:
		return e.ColumnBitmap2 == nil
	case replication.UPDATE_ROWS_EVENTv1, replication.UPDATE_ROWS_EVENTv2:
		return e.ColumnBitmap2 != nil
	}
	return false
}

// Column kinds the fast path decodes.
const (
	kInt8 uint8 = iota + 1
	kUint8
	kInt16
	kUint16
	kInt24
	kUint24
	kInt32
	kUint32
	kInt64
	kUint64
	kYear
	kFloat
	kDouble
	kDecimal
	kBit
	kDate
	kDatetime2
	kTimestamp2
	kEnum    // int64 index, as go-mysql; the converter maps it to a label
	kSet     // int64 mask, as go-mysql; the converter maps it to labels
	kString  // CHAR, VARCHAR: string aliasing the event, as go-mysql
	kText    // TEXT: a string copy (what convText makes of go-mysql's []byte)
	kRawBlob // BLOB, LONGTEXT: []byte aliasing the event, as go-mysql
)

type colPlan struct {
	kind uint8
	// size: the value's byte length for fixed-size kinds; the length prefix
	// size for kText/kRawBlob (1-4) and kString (1 or 2).
	size int
	// dec is the fractional digits of DATETIME2/TIMESTAMP2; for kDecimal,
	// prec and scale.
	dec         int
	prec, scale int
}

// rowPlan is how to decode the row images of one TABLE_MAP layout.
type rowPlan struct {
	tme   *replication.TableMapEvent
	names []string
	cols  []colPlan
	// refused: a column needs go-mysql.
	refused bool
}

// plan returns the plan for e's table, nil when the fast path cannot decode
// its rows.
func (d *rowDecoder) plan(e *replication.RowsEvent) *rowPlan {
	tme := e.Table
	if tme == nil || e.ColumnCount != tme.ColumnCount || len(tme.ColumnType) != int(tme.ColumnCount) || len(tme.ColumnMeta) != int(tme.ColumnCount) {
		return nil
	}
	p, ok := d.plans[e.TableID]
	if !ok || (p.tme != tme && !samePlanLayout(p.tme, tme)) {
		if len(d.plans) >= 4096 {
			clear(d.plans)
		}
		p = newRowPlan(tme)
		d.plans[e.TableID] = p
	}
	p.tme = tme
	if p.refused {
		return nil
	}
	return p
}

// samePlanLayout reports whether a plan built for a serves b: the plan
// depends only on column types, metadata, signedness, collations and names.
func samePlanLayout(a, b *replication.TableMapEvent) bool {
	if a.ColumnCount != b.ColumnCount || string(a.ColumnType) != string(b.ColumnType) ||
		string(a.SignednessBitmap) != string(b.SignednessBitmap) || len(a.ColumnMeta) != len(b.ColumnMeta) ||
		len(a.ColumnName) != len(b.ColumnName) || !equalUints(a.DefaultCharset, b.DefaultCharset) || !equalUints(a.ColumnCharset, b.ColumnCharset) {
		return false
	}
	for i := range a.ColumnMeta {
		if a.ColumnMeta[i] != b.ColumnMeta[i] {
			return false
		}
	}
	for i := range a.ColumnName {
		if string(a.ColumnName[i]) != string(b.ColumnName[i]) {
			return false
		}
	}
	return true
}

func equalUints(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// newRowPlan builds a plan, refused when a column needs go-mysql.
func newRowPlan(tme *replication.TableMapEvent) *rowPlan {
	n := int(tme.ColumnCount)
	p := &rowPlan{tme: tme, names: make([]string, n), cols: make([]colPlan, n), refused: true}
	if n == 0 {
		return p
	}
	for i := range p.names {
		if i < len(tme.ColumnName) {
			p.names[i] = string(tme.ColumnName[i])
		} else {
			p.names[i] = "#" + strconv.Itoa(i+1)
		}
	}
	unsigned := tme.UnsignedMap()
	var collations map[int]uint64
	for i := 0; i < n; i++ {
		tp, meta := tme.ColumnType[i], tme.ColumnMeta[i]
		c := &p.cols[i]
		// MYSQL_TYPE_STRING packs the real type (CHAR, ENUM, SET) and, for
		// CHAR longer than 255 bytes, the high bits of the length into meta,
		// as go-mysql's decodeValue unpacks it.
		length := 0
		if tp == mysql.MYSQL_TYPE_STRING {
			if meta >= 256 {
				b0, b1 := uint8(meta>>8), uint8(meta&0xFF)
				if b0&0x30 != 0x30 {
					length = int(uint16(b1) | (uint16((b0&0x30)^0x30) << 4))
					tp = b0 | 0x30
				} else {
					length = int(meta & 0xFF)
					tp = b0
				}
			} else {
				length = int(meta)
			}
		}
		u := unsigned[i]
		switch tp {
		case mysql.MYSQL_TYPE_TINY:
			c.kind, c.size = pick(u, kUint8, kInt8), 1
		case mysql.MYSQL_TYPE_SHORT:
			c.kind, c.size = pick(u, kUint16, kInt16), 2
		case mysql.MYSQL_TYPE_INT24:
			c.kind, c.size = pick(u, kUint24, kInt24), 3
		case mysql.MYSQL_TYPE_LONG:
			c.kind, c.size = pick(u, kUint32, kInt32), 4
		case mysql.MYSQL_TYPE_LONGLONG:
			c.kind, c.size = pick(u, kUint64, kInt64), 8
		case mysql.MYSQL_TYPE_YEAR:
			c.kind, c.size = kYear, 1
		case mysql.MYSQL_TYPE_FLOAT:
			c.kind, c.size = kFloat, 4
		case mysql.MYSQL_TYPE_DOUBLE:
			c.kind, c.size = kDouble, 8
		case mysql.MYSQL_TYPE_NEWDECIMAL:
			prec, scale := int(meta>>8), int(meta&0xFF)
			if prec < 1 || prec > 65 || scale > 30 || scale > prec {
				return p
			}
			c.kind, c.prec, c.scale, c.size = kDecimal, prec, scale, decimalBinSize(prec, scale)
		case mysql.MYSQL_TYPE_BIT:
			nbits := int(meta>>8)*8 + int(meta&0xFF)
			size := (nbits + 7) / 8
			if nbits < 1 || size > 8 {
				return p
			}
			c.kind, c.size, c.dec = kBit, size, nbits
		case mysql.MYSQL_TYPE_DATE:
			c.kind, c.size = kDate, 3
		case mysql.MYSQL_TYPE_DATETIME2:
			if meta > 6 {
				return p
			}
			c.kind, c.dec, c.size = kDatetime2, int(meta), 5+int(meta+1)/2
		case mysql.MYSQL_TYPE_TIMESTAMP2:
			if meta > 6 {
				return p
			}
			c.kind, c.dec, c.size = kTimestamp2, int(meta), 4+int(meta+1)/2
		case mysql.MYSQL_TYPE_ENUM:
			l := int(meta & 0xFF)
			if l != 1 && l != 2 {
				return p
			}
			c.kind, c.size = kEnum, l
		case mysql.MYSQL_TYPE_SET:
			l := int(meta & 0xFF)
			if l < 1 || l > 8 {
				return p
			}
			c.kind, c.size = kSet, l
		case mysql.MYSQL_TYPE_VARCHAR, mysql.MYSQL_TYPE_VAR_STRING:
			c.kind, c.size = kString, lengthPrefix(int(meta))
		case mysql.MYSQL_TYPE_STRING:
			c.kind, c.size = kString, lengthPrefix(length)
		case mysql.MYSQL_TYPE_BLOB:
			if meta < 1 || meta > 4 {
				return p
			}
			if collations == nil {
				collations = tme.CollationMap()
			}
			// A TEXT column's converter copies go-mysql's []byte into a
			// string: make that string here. Binary columns, columns whose
			// charset the TABLE_MAP does not say, and LONGBLOB/LONGTEXT
			// (MariaDB's JSON, known only from the schema) get go-mysql's own
			// []byte and the converter decides.
			c.kind, c.size = kRawBlob, int(meta)
			if coll, ok := collations[i]; ok && coll != binaryCollation && meta != 4 {
				c.kind = kText
			}
		default:
			// JSON, GEOMETRY, VECTOR, TIME, TIME2, DATETIME, TIMESTAMP,
			// NEWDATE, DECIMAL, NULL, unknown.
			return p
		}
	}
	p.refused = false
	return p
}

func pick(unsigned bool, u, s uint8) uint8 {
	if unsigned {
		return u
	}
	return s
}

// lengthPrefix is the size of a CHAR/VARCHAR value's length prefix, as
// go-mysql's decodeString reads it.
func lengthPrefix(maxLen int) int {
	if maxLen < 256 {
		return 1
	}
	return 2
}

const digitsPerInteger = 9

var compressedBytes = [10]int{0, 1, 1, 2, 2, 3, 3, 4, 4, 4}

func decimalBinSize(prec, scale int) int {
	integral := prec - scale
	return integral/digitsPerInteger*4 + compressedBytes[integral%digitsPerInteger] +
		scale/digitsPerInteger*4 + compressedBytes[scale%digitsPerInteger]
}

// errShort is returned when a value runs past the end of the event.
var errShort = errors.New("row image truncated")

// decodeRows decodes every row image of e in data (the event after its
// header).
func (p *rowPlan) decodeRows(d *rowDecoder, e *replication.RowsEvent, data []byte) ([][]any, [][]int, error) {
	n := len(p.cols)
	images := 1
	if e.ColumnBitmap2 != nil {
		images = 2
	}
	var (
		rows    [][]any
		skipped [][]int
		slab    []any
		pos     int
		img     int
	)
	a := &d.arena
	var cols [2]imageColumns
	if err := cols[0].init(e.ColumnBitmap1, n); err != nil {
		return nil, nil, err
	}
	if images == 2 {
		if err := cols[1].init(e.ColumnBitmap2, n); err != nil {
			return nil, nil, err
		}
	}
	for pos < len(data) {
		ic := &cols[0]
		if images == 2 && img%2 == 1 {
			ic = &cols[1]
		}
		if len(slab) < n {
			// One allocation for the values of the rows still to come,
			// estimated from the size of the images so far.
			est := 1
			if pos > 0 {
				est = min((len(data)-pos)/(pos/img)+1, 1024)
			}
			slab = make([]any, n*est)
		}
		row := slab[:n:n]
		slab = slab[n:]
		next, err := p.decodeImage(data, pos, ic, row, a)
		if err != nil {
			return nil, nil, fmt.Errorf("row image %d: %w", img, err)
		}
		if next <= pos {
			// No column present: go-mysql would loop forever; let it fail
			// however it does.
			return nil, nil, fmt.Errorf("row image %d: empty image", img)
		}
		pos = next
		if rows == nil {
			rows = make([][]any, 0, (len(data)-1)/pos+1)
		}
		rows = append(rows, row)
		if ic.skips != nil && skipped == nil {
			skipped = make([][]int, len(rows)-1, cap(rows))
		}
		if skipped != nil {
			// Shared by every image with this bitmap; read only.
			skipped = append(skipped, ic.skips)
		}
		img++
	}
	if images == 2 && img%2 == 1 {
		// go-mysql fails on an update without its after image.
		return nil, nil, fmt.Errorf("row image %d: update without after image: %w", img, errShort)
	}
	return rows, skipped, nil
}

// imageColumns describes the columns a column bitmap puts in each image.
type imageColumns struct {
	bitmap  []byte
	present int
	// skips lists the columns left out (MINIMAL/NOBLOB), nil for none.
	skips []int
}

func (ic *imageColumns) init(bitmap []byte, n int) error {
	if len(bitmap) < (n+7)/8 {
		return errors.New("column bitmap too short")
	}
	ic.bitmap = bitmap
	for i := 0; i < n; i++ {
		if bitmap[i>>3]&(1<<(uint(i)&7)) != 0 {
			ic.present++
		} else {
			ic.skips = append(ic.skips, i)
		}
	}
	return nil
}

// decodeImage decodes one row image starting at data[pos] into row and
// returns where the next starts.
func (p *rowPlan) decodeImage(data []byte, pos int, ic *imageColumns, row []any, a *strArena) (int, error) {
	nullBytes := (ic.present + 7) / 8
	if pos+nullBytes > len(data) {
		return 0, errShort
	}
	nulls := data[pos : pos+nullBytes]
	pos += nullBytes
	bitmap := ic.bitmap
	ni := 0
	for i := range p.cols {
		if bitmap[i>>3]&(1<<(uint(i)&7)) == 0 {
			continue
		}
		isNull := nulls[ni>>3]&(1<<(uint(ni)&7)) != 0
		ni++
		if isNull {
			continue
		}
		v, next, err := p.cols[i].value(data, pos, a)
		if err != nil {
			return 0, fmt.Errorf("column %s (%s) at byte %d: %w", p.names[i], mysqlTypeName(p.tme.ColumnType[i]), pos, err)
		}
		row[i] = v
		pos = next
	}
	return pos, nil
}

// value decodes one non-NULL value at data[pos].
func (c *colPlan) value(data []byte, pos int, a *strArena) (any, int, error) {
	switch c.kind {
	case kString:
		var l int
		if c.size == 1 {
			if pos >= len(data) {
				return nil, 0, errShort
			}
			l = int(data[pos])
			pos++
		} else {
			if pos+2 > len(data) {
				return nil, 0, errShort
			}
			l = int(binary.LittleEndian.Uint16(data[pos:]))
			pos += 2
		}
		if l > len(data)-pos {
			return nil, 0, errShort
		}
		// Aliases the event's buffer, as go-mysql does: each event has its own.
		return unsafe.String(unsafe.SliceData(data[pos:]), l), pos + l, nil
	case kText, kRawBlob:
		if pos+c.size > len(data) {
			return nil, 0, errShort
		}
		var l uint64
		for k := c.size - 1; k >= 0; k-- {
			l = l<<8 | uint64(data[pos+k])
		}
		pos += c.size
		if l > uint64(len(data)-pos) {
			return nil, 0, errShort
		}
		b := data[pos : pos+int(l)]
		if c.kind == kText {
			return a.str(b), pos + int(l), nil
		}
		return b, pos + int(l), nil
	}
	if pos+c.size > len(data) {
		return nil, 0, errShort
	}
	b := data[pos : pos+c.size]
	next := pos + c.size
	switch c.kind {
	case kInt8:
		return int64(int8(b[0])), next, nil
	case kUint8:
		return uint64(b[0]), next, nil
	case kInt16:
		return int64(int16(binary.LittleEndian.Uint16(b))), next, nil
	case kUint16:
		return uint64(binary.LittleEndian.Uint16(b)), next, nil
	case kInt24:
		u := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16
		if u&0x00800000 != 0 {
			u |= 0xFF000000
		}
		return int64(int32(u)), next, nil
	case kUint24:
		return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16, next, nil
	case kInt32:
		return int64(int32(binary.LittleEndian.Uint32(b))), next, nil
	case kUint32:
		return uint64(binary.LittleEndian.Uint32(b)), next, nil
	case kInt64:
		return int64(binary.LittleEndian.Uint64(b)), next, nil
	case kUint64:
		return binary.LittleEndian.Uint64(b), next, nil
	case kYear:
		if b[0] == 0 {
			return int64(0), next, nil
		}
		return int64(b[0]) + 1900, next, nil
	case kFloat:
		f, err := float32To64(math.Float32frombits(binary.LittleEndian.Uint32(b)), a.tmp())
		return f, next, err
	case kDouble:
		return math.Float64frombits(binary.LittleEndian.Uint64(b)), next, nil
	case kDecimal:
		s, err := c.decimal(b, a)
		if err != nil {
			return nil, 0, err
		}
		return Decimal(s), next, nil
	case kBit:
		var v uint64
		for _, x := range b {
			v = v<<8 | uint64(x)
		}
		return v, next, nil
	case kDate:
		u := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16
		if u == 0 {
			return "0000-00-00", next, nil
		}
		s := appendPadded(a.tmp(), int64(u/(16*32)), 4)
		s = append(s, '-')
		s = appendPadded(s, int64(u/32%16), 2)
		s = append(s, '-')
		s = appendPadded(s, int64(u%32), 2)
		return a.str(s), next, nil
	case kDatetime2:
		return datetime2(b, c.dec, a), next, nil
	case kTimestamp2:
		return timestamp2(b, c.dec, a), next, nil
	case kEnum:
		if c.size == 1 {
			return int64(b[0]), next, nil
		}
		return int64(binary.LittleEndian.Uint16(b)), next, nil
	case kSet:
		var v uint64
		for k := len(b) - 1; k >= 0; k-- {
			v = v<<8 | uint64(b[k])
		}
		return int64(v), next, nil
	}
	return nil, 0, fmt.Errorf("no fast decoding for kind %d", c.kind)
}

// float32To64 is convFloat32: FLOAT widened through its shortest decimal
// form, so FLOAT 0.1 reads as 0.1.
func float32To64(f float32, scratch []byte) (float64, error) {
	if math.IsInf(float64(f), 0) || math.IsNaN(float64(f)) {
		return float64(f), nil
	}
	s := strconv.AppendFloat(scratch, float64(f), 'g', -1, 32)
	return strconv.ParseFloat(unsafe.String(unsafe.SliceData(s), len(s)), 64)
}

// strArena makes the strings of decoded values (dates, decimals, TEXT) in
// shared chunks rather than one allocation each. A chunk is never written
// again once a string points into it, and lives as long as its strings.
type strArena struct {
	scratch [96]byte
	chunk   []byte
}

// tmp returns an empty buffer to format a value in; str copies it out.
func (a *strArena) tmp() []byte { return a.scratch[:0] }

// str returns a string holding b.
func (a *strArena) str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if cap(a.chunk)-len(a.chunk) < len(b) {
		if len(b) > 1024 {
			return string(b)
		}
		a.chunk = make([]byte, 0, 8192)
	}
	start := len(a.chunk)
	a.chunk = append(a.chunk, b...)
	return unsafe.String(&a.chunk[start], len(b))
}

// appendPadded appends v in decimal, zero-padded to at least width
// characters sign included, as fmt's %0Nd.
func appendPadded(b []byte, v int64, width int) []byte {
	var tmp [20]byte
	u := uint64(v)
	if v < 0 {
		b = append(b, '-')
		width--
		u = -u
	}
	d := strconv.AppendUint(tmp[:0], u, 10)
	for k := len(d); k < width; k++ {
		b = append(b, '0')
	}
	return append(b, d...)
}

// appendFrac appends "." and frac as %06d cut to dec digits from the right,
// as go-mysql's formatDatetime and formatZeroTime do.
func appendFrac(b []byte, frac int64, dec int) []byte {
	if dec == 0 {
		return b
	}
	b = append(b, '.')
	b = appendPadded(b, frac, 6)
	return b[:len(b)-(6-dec)]
}

func bigEndian(b []byte) int64 {
	var v uint64
	for _, x := range b {
		v = v<<8 | uint64(x)
	}
	return int64(v)
}

// fracPart reads the fractional seconds of a DATETIME2/TIMESTAMP2/TIME2.
func fracPart(b []byte, dec int) int64 {
	switch dec {
	case 1, 2:
		return int64(b[0]) * 10000
	case 3, 4:
		return int64(binary.BigEndian.Uint16(b)) * 100
	case 5, 6:
		return bigEndian(b[:3])
	}
	return 0
}

// datetime2 mirrors go-mysql's decodeDatetime2 with parseTime off.
func datetime2(b []byte, dec int, a *strArena) string {
	intPart := bigEndian(b[:5]) - replication.DATETIMEF_INT_OFS
	frac := fracPart(b[5:], dec)
	if intPart == 0 {
		return zeroTime(frac, dec, a)
	}
	tmp := intPart<<24 + frac
	if tmp < 0 {
		tmp = -tmp
	}
	ymdhms := tmp >> 24
	ymd := ymdhms >> 17
	ym := ymd >> 5
	hms := ymdhms % (1 << 17)
	s := appendPadded(a.tmp(), ym/13, 4)
	s = append(s, '-')
	s = appendPadded(s, ym%13, 2)
	s = append(s, '-')
	s = appendPadded(s, ymd%(1<<5), 2)
	s = append(s, ' ')
	s = appendPadded(s, hms>>12, 2)
	s = append(s, ':')
	s = appendPadded(s, (hms>>6)%(1<<6), 2)
	s = append(s, ':')
	s = appendPadded(s, hms%(1<<6), 2)
	s = appendFrac(s, frac, dec)
	return a.str(s)
}

func zeroTime(frac int64, dec int, a *strArena) string {
	if dec == 0 {
		return "0000-00-00 00:00:00"
	}
	s := append(a.tmp(), "0000-00-00 00:00:00"...)
	return a.str(appendFrac(s, frac, dec))
}

// timestamp2 mirrors go-mysql's decodeTimestamp2 in UTC followed by
// convTimestamp: "2006-01-02T15:04:05.000Z", zero timestamps as
// "0000-00-00 00:00:00[.000]".
func timestamp2(b []byte, dec int, a *strArena) string {
	sec := int64(binary.BigEndian.Uint32(b))
	usec := fracPart(b[4:], dec)
	if sec == 0 {
		return zeroTime(usec, dec, a)
	}
	t := time.Unix(sec, usec*1000).UTC()
	year, month, day := t.Date()
	hour, minute, second := t.Clock()
	s := appendPadded(a.tmp(), int64(year), 4)
	s = append(s, '-')
	s = appendPadded(s, int64(month), 2)
	s = append(s, '-')
	s = appendPadded(s, int64(day), 2)
	s = append(s, 'T')
	s = appendPadded(s, int64(hour), 2)
	s = append(s, ':')
	s = appendPadded(s, int64(minute), 2)
	s = append(s, ':')
	s = appendPadded(s, int64(second), 2)
	if dec > 0 {
		// time.Format's ".000": the first dec digits of the nanoseconds.
		s = append(s, '.')
		s = appendPadded(s, int64(t.Nanosecond()), 9)
		s = s[:len(s)-(9-dec)]
	}
	s = append(s, 'Z')
	return a.str(s)
}

// decimal mirrors go-mysql's decodeDecimal (without shopspring).
func (c *colPlan) decimal(data []byte, a *strArena) (string, error) {
	out := a.tmp()
	integral := c.prec - c.scale
	uncompIntegral := integral / digitsPerInteger
	uncompFractional := c.scale / digitsPerInteger
	compIntegral := integral - uncompIntegral*digitsPerInteger
	compFractional := c.scale - uncompFractional*digitsPerInteger

	var mask uint32
	if data[0]&0x80 == 0 {
		mask = math.MaxUint32
		out = append(out, '-')
	}
	// The sign bit is the top bit of the first byte, whatever group it is in.
	word := func(pos, size int) uint32 {
		var v uint32
		for k := 0; k < size; k++ {
			x := data[pos+k]
			if pos+k == 0 {
				x ^= 0x80
			}
			v = v<<8 | uint32(x)
		}
		if size == 0 {
			return 0
		}
		return (v ^ mask) & (math.MaxUint32 >> (32 - 8*size))
	}
	zeroLeading := true
	pos := compressedBytes[compIntegral]
	if v := word(0, pos); v != 0 {
		zeroLeading = false
		out = strconv.AppendUint(out, uint64(v), 10)
	}
	for range uncompIntegral {
		v := word(pos, 4)
		pos += 4
		if zeroLeading {
			if v != 0 {
				zeroLeading = false
				out = strconv.AppendUint(out, uint64(v), 10)
			}
			continue
		}
		var err error
		if out, err = appendGroup(out, v, digitsPerInteger); err != nil {
			return "", err
		}
	}
	if zeroLeading {
		out = append(out, '0')
	}
	if pos < len(data) {
		out = append(out, '.')
		for range uncompFractional {
			v := word(pos, 4)
			pos += 4
			var err error
			if out, err = appendGroup(out, v, digitsPerInteger); err != nil {
				return "", err
			}
		}
		if size := compressedBytes[compFractional]; size > 0 {
			// Padded to compFractional digits, never cut.
			out = appendPadded(out, int64(word(pos, size)), compFractional)
		}
	}
	return a.str(out), nil
}

// appendGroup appends a 9-digit decimal group zero-padded; go-mysql fails
// (a slice out of range) on a group of more digits.
func appendGroup(out []byte, v uint32, width int) ([]byte, error) {
	var tmp [10]byte
	d := strconv.AppendUint(tmp[:0], uint64(v), 10)
	if len(d) > width {
		return nil, fmt.Errorf("decimal group %d has more than %d digits", v, width)
	}
	for k := len(d); k < width; k++ {
		out = append(out, '0')
	}
	return append(out, d...), nil
}

// mysqlTypeName names a column type for errors.
func mysqlTypeName(t byte) string {
	switch t {
	case mysql.MYSQL_TYPE_TINY:
		return "TINYINT"
	case mysql.MYSQL_TYPE_SHORT:
		return "SMALLINT"
	case mysql.MYSQL_TYPE_INT24:
		return "MEDIUMINT"
	case mysql.MYSQL_TYPE_LONG:
		return "INT"
	case mysql.MYSQL_TYPE_LONGLONG:
		return "BIGINT"
	case mysql.MYSQL_TYPE_YEAR:
		return "YEAR"
	case mysql.MYSQL_TYPE_FLOAT:
		return "FLOAT"
	case mysql.MYSQL_TYPE_DOUBLE:
		return "DOUBLE"
	case mysql.MYSQL_TYPE_NEWDECIMAL:
		return "DECIMAL"
	case mysql.MYSQL_TYPE_BIT:
		return "BIT"
	case mysql.MYSQL_TYPE_DATE:
		return "DATE"
	case mysql.MYSQL_TYPE_DATETIME2:
		return "DATETIME"
	case mysql.MYSQL_TYPE_TIMESTAMP2:
		return "TIMESTAMP"
	case mysql.MYSQL_TYPE_STRING:
		return "CHAR/ENUM/SET"
	case mysql.MYSQL_TYPE_VARCHAR, mysql.MYSQL_TYPE_VAR_STRING:
		return "VARCHAR"
	case mysql.MYSQL_TYPE_BLOB:
		return "BLOB/TEXT"
	}
	return "type " + strconv.Itoa(int(t))
}
