package cdc_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rowhook/rowhook/cdc"
)

// TestReader_PositionMetrics scrapes a reader that read three transactions:
// the position is served as numbers that match the source's own, and no
// series carries the file name or GTID set (a new series per transaction).
func TestReader_PositionMetrics(t *testing.T) {
	schema, db := srv.NewSchema(t)
	mustExec(t, db, "CREATE TABLE deal (id INT PRIMARY KEY)")
	reg := prometheus.NewRegistry()
	st := startStreamDeps(t, srv, schema, currentGTID(t, srv), nil, cdc.Deps{Registerer: reg})
	series := func() int {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, mf := range mfs {
			n += len(mf.GetMetric())
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "file" || l.GetName() == "gtid_set" {
						t.Errorf("%s has label %s=%q", mf.GetName(), l.GetName(), l.GetValue())
					}
				}
			}
		}
		return n
	}
	mustExec(t, db, "INSERT INTO deal VALUES (1)")
	st.waitChanges(t, 1)
	waitPosition(t, st)
	first := series()
	mustExec(t, db, "INSERT INTO deal VALUES (2)", "INSERT INTO deal VALUES (3)")
	st.waitChanges(t, 3)
	waitPosition(t, st)
	if n := series(); n != first {
		t.Errorf("%d series after three transactions, %d after one: the position makes new series", n, first)
	}

	var file, gtid string
	var pos uint64
	var skip1, skip2 any
	if err := db.QueryRow("SHOW MASTER STATUS").Scan(&file, &pos, &skip1, &skip2); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow("SELECT @@gtid_binlog_pos").Scan(&gtid); err != nil {
		t.Fatal(err)
	}
	wantFile, _ := strconv.ParseFloat(file[strings.LastIndexByte(file, '.')+1:], 64)
	want := map[string]float64{
		"rowhook_binlog_file_number":       wantFile,
		"rowhook_binlog_file_offset_bytes": float64(pos),
	}
	for _, g := range strings.Split(gtid, ",") {
		f := strings.Split(g, "-")
		seq, _ := strconv.ParseFloat(f[2], 64)
		want[`rowhook_binlog_gtid_sequence_number{domain="`+f[0]+`"}`] = seq
	}
	got := map[string]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			k := mf.GetName()
			for _, l := range m.GetLabel() {
				k += `{` + l.GetName() + `="` + l.GetValue() + `"}`
			}
			got[k] = m.GetGauge().GetValue()
		}
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (source at %s:%d gtid %s)", k, got[k], v, file, pos, gtid)
		}
	}
}

// waitPosition waits until the reader's position is the source's current
// GTID position (the handler sees a transaction before the position moves).
func waitPosition(t *testing.T, st *stream) {
	t.Helper()
	want := currentGTID(t, srv).GTIDSet
	deadline := time.Now().Add(30 * time.Second)
	for st.reader.Position().GTIDSet != want {
		if time.Now().After(deadline) {
			t.Fatalf("reader position %s, source at gtid %s", st.reader.Position(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
