package mysqldsn

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	tests := []struct {
		dsn, net, addr, user, pass, db string
	}{
		{"crm:pw@tcp(db:3306)/vtiger", "tcp", "db:3306", "crm", "pw", "vtiger"},
		{"crm:pw@tcp(db)/vtiger", "tcp", "db:3306", "crm", "pw", "vtiger"},
		{"rowhook:secret@tcp(10.0.0.5:3306)/", "tcp", "10.0.0.5:3306", "rowhook", "secret", ""},
		{"crm@unix(/run/mysqld/mysqld.sock)/vtiger", "unix", "/run/mysqld/mysqld.sock", "crm", "", "vtiger"},
		{"mysql://crm:pw@db/vtiger", "tcp", "db:3306", "crm", "pw", "vtiger"},
		{"mariadb://crm:pw@db/vtiger", "tcp", "db:3306", "crm", "pw", "vtiger"},
		{"mysql://crm@db:3307/", "tcp", "db:3307", "crm", "", ""},
		{"mysql://crm@db:3307", "tcp", "db:3307", "crm", "", ""},
		{"mysql://rowhook:p%40ss@replica.db:3307/?tls=false", "tcp", "replica.db:3307", "rowhook", "p@ss", ""},
		{"mysql://crm:" + url.QueryEscape("S3cret:@/?&=x") + "@db/vtiger", "tcp", "db:3306", "crm", "S3cret:@/?&=x", "vtiger"},
		{"mysql://crm:pw@[::1]/vtiger", "tcp", "[::1]:3306", "crm", "pw", "vtiger"},
		{"mysql://crm:pw@[::1]:3307/vtiger", "tcp", "[::1]:3307", "crm", "pw", "vtiger"},
		{"mysql://h:3306/", "tcp", "h:3306", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.dsn, func(t *testing.T) {
			c, err := Parse(tt.dsn)
			if err != nil {
				t.Fatal(err)
			}
			if c.Net != tt.net || c.Addr != tt.addr || c.User != tt.user || c.Passwd != tt.pass || c.DBName != tt.db {
				t.Errorf("got net %s addr %s user %s pass %s db %s", c.Net, c.Addr, c.User, c.Passwd, c.DBName)
			}
		})
	}
}

// TestParse_Parameters: in both forms a parameter is the driver's own
// setting where it knows it and a session variable otherwise.
func TestParse_Parameters(t *testing.T) {
	for _, dsn := range []string{
		"mysql://crm:p%40ss@db/vtiger?timeout=5s&parseTime=true&tls=false&sql_mode=%27STRICT_ALL_TABLES%27",
		"crm:p@ss@tcp(db:3306)/vtiger?timeout=5s&parseTime=true&tls=false&sql_mode=%27STRICT_ALL_TABLES%27",
	} {
		t.Run(dsn, func(t *testing.T) {
			c, err := Parse(dsn)
			if err != nil {
				t.Fatal(err)
			}
			if c.Timeout != 5*time.Second || !c.ParseTime || c.TLSConfig != "false" || c.Passwd != "p@ss" || len(c.Params) != 1 || c.Params["sql_mode"] != "'STRICT_ALL_TABLES'" {
				t.Errorf("timeout %v parseTime %v tls %q pass %q params %v", c.Timeout, c.ParseTime, c.TLSConfig, c.Passwd, c.Params)
			}
		})
	}
}

// TestParse_Errors: each bad DSN is refused with a message that says what
// is wrong and never shows the password, however the password confuses
// the parser.
func TestParse_Errors(t *testing.T) {
	const pw = "S3cretPW"
	tests := []struct{ dsn, want string }{
		{"postgres://u:" + pw + "@h/", "URL scheme must be mysql://, not postgres://"},
		{"mysql://u:" + pw + "@/db", "URL has no host"},
		{"mysql://u:" + pw + "@h/a/b", "URL path must be one database name"},
		{"mysql://u:" + pw + "@h:99999/", "bad port"},
		{"mysql://u:" + pw + "@h/db?timeout=soon", "bad URL parameters"},
		{"mysql://u:" + pw + "/x@h/db", "bad URL"},  // an unencoded / ends the host early
		{"mysql://u:" + pw + "#x@h/db", "bad URL"},  // an unencoded # starts a fragment
		{"mysql://u:" + pw + "%zz@h/db", "bad URL"}, // a bad escape in the password
		{"mysql://u:" + pw + " x@h/db", "bad URL"},  // a space
		{"u:" + pw + "@primary/vtiger", "bad DSN"},
		{"u:" + pw + "@tcp(h:3306", "bad DSN"},
		{"u:" + pw + "@tcp(h:3306)", "bad DSN"},
		{"u:" + pw + "@tcp(h:99999)/", "bad port"},
		{"u:" + pw + "@tcp(h:3306)/db?timeout=soon", "bad DSN"},
	}
	for _, tt := range tests {
		t.Run(tt.dsn, func(t *testing.T) {
			_, err := Parse(tt.dsn)
			if err == nil {
				t.Fatalf("Parse accepted %q", tt.dsn)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
			if strings.Contains(err.Error(), pw) || strings.Contains(err.Error(), "S3cret") {
				t.Errorf("error shows the password: %q", err)
			}
		})
	}
}

func TestRedacted(t *testing.T) {
	tests := []struct{ dsn, want string }{
		{"mysql://rowhook:p%40ss@replica.db:3307/?tls=false", "rowhook:***@replica.db:3307"},
		{"rowhook@tcp(10.0.0.5)/", "rowhook@10.0.0.5:3306"},
		{"crm:pw@tcp(db:3306)/vtiger", "crm:***@db:3306/vtiger"},
		{"crm:pw@unix(/run/mysqld.sock)/vtiger", "crm:***@unix(/run/mysqld.sock)/vtiger"},
	}
	for _, tt := range tests {
		c, err := Parse(tt.dsn)
		if err != nil {
			t.Fatal(err)
		}
		if got := Redacted(c); got != tt.want {
			t.Errorf("Redacted(%q) = %q, want %q", tt.dsn, got, tt.want)
		}
	}
}

func TestHostPort(t *testing.T) {
	c, err := Parse("mysql://u@[::1]:3307/")
	if err != nil {
		t.Fatal(err)
	}
	if h, p, err := HostPort(c); err != nil || h != "::1" || p != 3307 {
		t.Errorf("HostPort = %q %d %v", h, p, err)
	}
	c, err = Parse("u@unix(/tmp/x.sock)/")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := HostPort(c); err == nil || !strings.Contains(err.Error(), "tcp(host:port)") {
		t.Errorf("unix socket: %v", err)
	}
}
