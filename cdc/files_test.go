package cdc_test

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"sort"
	"testing"

	"github.com/rowhook/rowhook/cdc"
)

func binlogFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(srv.Dir, "binlog", "mysql-bin.[0-9]*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no binlog files in %s: %v", srv.Dir, err)
	}
	sort.Strings(files)
	return files
}

// Decoding the binlog files on disk yields the same transactions, ids and
// rows as reading them live: replays are deterministic.
func TestReadFiles_SameAsLive(t *testing.T) {
	schema, db := srv.NewSchema(t)
	mustExec(t, db, "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20), amount DECIMAL(8,2))")
	from := currentGTID(t, srv)
	st := startStream(t, srv, schema, from, nil)
	mustExec(t, db,
		"INSERT INTO t VALUES (1, 'a', 1.50), (2, 'b', 2.25)",
		"UPDATE t SET v = 'c' WHERE id = 2",
		"DELETE FROM t WHERE id = 1",
	)
	live := st.waitChanges(t, 4)
	mustExec(t, srv.DB(), "FLUSH BINARY LOGS")

	var replayed []cdc.Change
	filter := cdc.NewFilter([]string{schema + ".*"}, nil)
	var lastDone, lastTotal int64
	err := cdc.ReadFiles(context.Background(), binlogFiles(t), cdc.DecoderConfig{Filter: filter}, cdc.FileRange{},
		func(tx *cdc.Transaction) error {
			replayed = append(replayed, tx.Changes...)
			return nil
		}, func(done, total int64) { lastDone, lastTotal = done, total })
	if err != nil {
		t.Fatal(err)
	}
	if len(replayed) != len(live) {
		t.Fatalf("replay gave %d changes, live %d", len(replayed), len(live))
	}
	for i := range live {
		l, r := live[i], replayed[i]
		l.Annotation, r.Annotation = "", ""
		if !reflect.DeepEqual(l, r) {
			t.Errorf("change %d differs:\nlive   %+v\nreplay %+v", i, l, r)
		}
	}
	if lastTotal == 0 || lastDone == 0 || lastDone > lastTotal {
		t.Errorf("progress done=%d total=%d", lastDone, lastTotal)
	}

	// A range: from the update's transaction start up to the delete's.
	var upd, del cdc.Change = live[2], live[3]
	var got []cdc.Change
	err = cdc.ReadFiles(context.Background(), binlogFiles(t), cdc.DecoderConfig{Filter: filter},
		cdc.FileRange{FromFile: upd.File, From: txStart(t, upd), ToFile: del.File, To: txStart(t, del)},
		func(tx *cdc.Transaction) error { got = append(got, tx.Changes...); return nil }, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != upd.ID {
		t.Fatalf("range replay gave %+v, want only the update %s", got, upd.ID)
	}
	// Starting inside a transaction is refused.
	err = cdc.ReadFiles(context.Background(), binlogFiles(t), cdc.DecoderConfig{Filter: filter},
		cdc.FileRange{FromFile: upd.File, From: upd.Pos}, func(*cdc.Transaction) error { return nil }, nil)
	if !errors.Is(err, cdc.ErrNotTxStart) {
		t.Fatalf("start inside a transaction: %v", err)
	}
}

// txStart finds the GTID event that starts the change's transaction.
func txStart(t *testing.T, c cdc.Change) uint32 {
	t.Helper()
	rows, err := srv.DB().Query("SHOW BINLOG EVENTS IN '" + c.File + "'")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var start uint32
	for rows.Next() {
		var log, typ, info string
		var pos, end uint32
		var sid int
		if err := rows.Scan(&log, &pos, &typ, &sid, &end, &info); err != nil {
			t.Fatal(err)
		}
		if typ == "Gtid" {
			start = pos
		}
		if pos == c.Pos {
			return start
		}
	}
	t.Fatalf("no event at %s:%d", c.File, c.Pos)
	return 0
}
