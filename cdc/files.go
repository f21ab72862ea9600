package cdc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
)

// FileRange limits ReadFiles to part of the files: from From (a transaction
// start: a GTID or BEGIN event's offset) in FromFile, up to and excluding
// the transaction that starts at or after To in ToFile. Zero values mean the
// start of the first file and the end of the last.
type FileRange struct {
	FromFile string
	From     uint32
	ToFile   string
	To       uint32
}

// ErrNotTxStart: a replay's start offset is inside a transaction.
var ErrNotTxStart = errors.New("cdc: position is not at a transaction start")

// errStop ends a parse early.
var errStop = errors.New("stop")

// ReadFiles decodes binlog files on disk (in the order given, normally
// oldest first) and calls fn for every committed transaction, exactly as a
// live Reader would from the same binlog. progress, when not nil, is called
// with bytes read so far and the total. It sends nothing anywhere.
func ReadFiles(ctx context.Context, files []string, cfg DecoderConfig, rng FileRange, fn func(*Transaction) error, progress func(done, total int64)) error {
	if len(files) == 0 {
		return errors.New("cdc: no binlog files given")
	}
	var total int64
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			return fmt.Errorf("cdc: binlog file: %w", err)
		}
		total += st.Size()
	}
	if cfg.Flavor == "" {
		flavor, err := detectFlavor(files[0])
		if err != nil {
			return err
		}
		cfg.Flavor = flavor
	}
	dec, err := NewDecoder(cfg, filepath.Base(files[0]), "")
	if err != nil {
		return err
	}
	var done int64
	started := rng.FromFile == "" && rng.From == 0
	for _, name := range files {
		base := filepath.Base(name)
		dec.file = base
		offset := int64(4)
		checkFirst := false
		if !started && (rng.FromFile == "" || rng.FromFile == base) {
			started = true
			if rng.From > 4 {
				offset = int64(rng.From)
				checkFirst = true
			}
		}
		st, _ := os.Stat(name)
		if !started {
			done += st.Size()
			continue
		}
		stopHere := rng.To > 0 && (rng.ToFile == "" || rng.ToFile == base)
		p := replication.NewBinlogParser()
		p.SetFlavor(cfg.Flavor)
		p.SetTimestampStringLocation(time.UTC)
		// No checksum verification: the binlog being written has its
		// Format_description "in use" flag set, which go-mysql does not mask
		// before checking, so every active file would fail.
		p.SetVerifyChecksum(false)
		// As the live reader: filtered tables' rows are not decoded, the
		// rest through the fast row decoder (rowdecode.go).
		var fast *rowDecoder
		if fastRowDecoding {
			fast = newRowDecoder()
		}
		p.SetRowsEventDecodeFunc(rowsDecodeFunc(cfg.Filter, fast))
		var last uint32
		err := p.ParseFile(name, offset, func(ev *replication.BinlogEvent) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			h := ev.Header
			if h.EventType == replication.FORMAT_DESCRIPTION_EVENT {
				return nil
			}
			if checkFirst {
				checkFirst = false
				switch e := ev.Event.(type) {
				case *replication.MariadbGTIDEvent, *replication.GTIDEvent, *replication.RotateEvent,
					*replication.MariadbGTIDListEvent, *replication.PreviousGTIDsEvent, *replication.MariadbBinlogCheckPointEvent:
				case *replication.QueryEvent:
					_ = e
				default:
					return fmt.Errorf("%w: %s:%d holds a %s event; start at a transaction's first event (its GTID event in SHOW BINLOG EVENTS or mysqlbinlog)",
						ErrNotTxStart, base, offset, h.EventType)
				}
			}
			if stopHere && !dec.InTransaction() && startPos(h) >= rng.To {
				return errStop
			}
			last = h.LogPos
			tx, err := dec.Handle(ev)
			if err != nil {
				return err
			}
			if progress != nil && last > 0 {
				// A file still being written (the server's current
				// binlog) grows past the size it had at the start.
				total = max(total, done+int64(last))
				progress(done+int64(last), total)
			}
			if tx != nil {
				return fn(tx)
			}
			return nil
		})
		if errors.Is(err, errStop) {
			return nil
		}
		if err != nil && checkFirst {
			// The first event after the offset could not even be parsed
			// (rows without their TABLE_MAP): not a transaction start.
			return fmt.Errorf("%w: %s:%d; start at a transaction's first event (its GTID event in SHOW BINLOG EVENTS or mysqlbinlog): %v",
				ErrNotTxStart, base, offset, err)
		}
		if err != nil {
			return fmt.Errorf("cdc: read %s: %w", name, err)
		}
		done += st.Size()
		if stopHere {
			return nil
		}
	}
	if !started {
		return fmt.Errorf("cdc: --from file %s is not among the files given", rng.FromFile)
	}
	return nil
}

func detectFlavor(name string) (string, error) {
	flavor := mysql.MySQLFlavor
	p := replication.NewBinlogParser()
	err := p.ParseFile(name, 4, func(ev *replication.BinlogEvent) error {
		if fde, ok := ev.Event.(*replication.FormatDescriptionEvent); ok {
			if strings.Contains(strings.ToLower(fde.ServerVersion), "mariadb") {
				flavor = mysql.MariaDBFlavor
			}
		}
		return errStop
	})
	if err != nil && !errors.Is(err, errStop) {
		return "", fmt.Errorf("cdc: read %s: %w", name, err)
	}
	return flavor, nil
}
