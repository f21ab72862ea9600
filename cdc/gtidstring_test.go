package cdc

import (
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// gtidSetString and mariadbGTIDString format what go-mysql's String
// methods do: the checkpoint's GTID set is compared and parsed as text.
func TestGTIDSetString_SameAsGoMySQL(t *testing.T) {
	for _, s := range []string{"", "0-1-1", "0-1-18446744073709551615", "4294967295-4294967295-7", "1-2-3,0-1-9", "10-1-5,2-1-7,0-3-1"} {
		set, err := mysql.ParseMariadbGTIDSet(s)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := gtidSetString(set), set.String(); got != want {
			t.Errorf("gtidSetString(%q) = %q, want %q", s, got, want)
		}
		for _, g := range set.(*mysql.MariadbGTIDSet).Sets {
			if got, want := mariadbGTIDString(g), g.String(); got != want {
				t.Errorf("mariadbGTIDString = %q, want %q", got, want)
			}
		}
	}
	zero := &mysql.MariadbGTID{}
	if got := mariadbGTIDString(zero); got != zero.String() {
		t.Errorf("zero GTID: %q, want %q", got, zero.String())
	}
	my, err := mysql.ParseMysqlGTIDSet("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := gtidSetString(my), my.String(); got != want {
		t.Errorf("MySQL set: %q, want %q", got, want)
	}
}
