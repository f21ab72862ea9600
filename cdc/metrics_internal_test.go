package cdc

import (
	"reflect"
	"testing"
)

func TestGTIDSequences(t *testing.T) {
	for _, tc := range []struct {
		set  string
		want []gtidSeq
	}{
		{"", nil},
		{"0-1-100", []gtidSeq{{"0", 100}}},
		{"0-1-100,1-2-7", []gtidSeq{{"0", 100}, {"1", 7}}},
		// gtid_binlog_state form: two servers in one domain keep the highest.
		{"0-1-100,0-2-120,0-3-90", []gtidSeq{{"0", 120}}},
		{"3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5:7-9", []gtidSeq{{"3e11fa47-71ca-11e1-9e33-c80aa9429562", 9}}},
		{"3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5,\n4e11fa47-71ca-11e1-9e33-c80aa9429562:12", []gtidSeq{
			{"3e11fa47-71ca-11e1-9e33-c80aa9429562", 5}, {"4e11fa47-71ca-11e1-9e33-c80aa9429562", 12}}},
		{"garbage,0-1-x,1-1-4", []gtidSeq{{"1", 4}}},
	} {
		if got := gtidSequences(tc.set); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("gtidSequences(%q) = %v, want %v", tc.set, got, tc.want)
		}
	}
}

func TestFileNumber(t *testing.T) {
	for _, tc := range []struct {
		file string
		want uint64
		ok   bool
	}{
		{"mysql-bin.000042", 42, true},
		{"mariadb-bin.1000000", 1000000, true},
		{"binlog", 0, false},
		{"a.b.000007", 7, true},
	} {
		if n, ok := fileNumber(tc.file); n != tc.want || ok != tc.ok {
			t.Errorf("fileNumber(%q) = %d, %v; want %d, %v", tc.file, n, ok, tc.want, tc.ok)
		}
	}
}
