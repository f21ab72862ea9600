package pipeline

import (
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"
)

func TestEventTx(t *testing.T) {
	for _, c := range []struct{ id, rule, want string }{
		{"0-1-42:3:new-deal", "new-deal", "0-1-42"},
		{"mysql-bin.000007:1234:0:r:x", "r:x", "mysql-bin.000007:1234"},
		{"3e11fa47-71ca-11e1-9e33-c80aa9429562:23:1:r", "r", "3e11fa47-71ca-11e1-9e33-c80aa9429562:23"},
		{"0-1-42:3:other", "new-deal", ""},
	} {
		got, err := EventTx(c.id, c.rule)
		if got != c.want || (err != nil) != (c.want == "") {
			t.Errorf("EventTx(%q, %q) = %q, %v; want %q", c.id, c.rule, got, err, c.want)
		}
	}
}

// The position to read one transaction from: the other MariaDB domains
// stay where the source is; MySQL asks for every executed GTID but one.
func TestTxStartSets(t *testing.T) {
	g, _ := mysql.ParseMariadbGTID("1-2-42")
	if got := mariaDBSetBefore("0-1-100,1-3-50,2-1-7", g); got != "0-1-100,2-1-7,1-2-41" {
		t.Errorf("mariaDBSetBefore = %q", got)
	}
	const u = "3e11fa47-71ca-11e1-9e33-c80aa9429562"
	for _, c := range []struct{ executed, gtid, want string }{
		{u + ":1-100", u + ":23", u + ":1-22:24-100"},
		{u + ":1-100,\nab11fa47-71ca-11e1-9e33-c80aa9429562:1-5", u + ":1", u + ":2-100,ab11fa47-71ca-11e1-9e33-c80aa9429562:1-5"},
		{u + ":1-10:12-20", u + ":20", u + ":1-10:12-19"},
		{u + ":7", u + ":7", ""},
		{u + ":1-5:tag:1-9", u + ":3", u + ":1-2:4-5:tag:1-9"},
	} {
		got, err := MySQLSetWithout(c.executed, c.gtid)
		if err != nil || got != c.want {
			t.Errorf("MySQLSetWithout(%q, %q) = %q, %v; want %q", c.executed, c.gtid, got, err, c.want)
		}
	}
}
