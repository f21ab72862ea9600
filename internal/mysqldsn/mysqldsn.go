// Package mysqldsn parses the MySQL/MariaDB addresses rowhook's
// configuration takes (source.dsn, writeback.dsn, dispatch.state.dsn,
// ha.dsn) in one way, so that every DSN accepts the same two forms:
//
//	mysql://user:password@host:3306/database?param=value   (also mariadb://)
//	user:password@tcp(host:3306)/database?param=value      (go-sql-driver)
//
// Parameters are go-sql-driver's own settings where it knows them (timeout,
// tls, parseTime, …) and session variables otherwise, in both forms. Errors
// never contain the password.
package mysqldsn

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/go-sql-driver/mysql"
)

// Parse turns dsn (a mysql:// URL or a go-sql-driver DSN) into a driver
// configuration. A TCP address without a port gets 3306. Errors never
// contain the password.
func Parse(dsn string) (*mysql.Config, error) {
	cfg, err := parse(dsn)
	if err != nil {
		return nil, scrub(err, dsn)
	}
	return cfg, nil
}

func parse(dsn string) (*mysql.Config, error) {
	if !strings.Contains(dsn, "://") {
		cfg, err := mysql.ParseDSN(dsn)
		if err != nil {
			return nil, fmt.Errorf("bad DSN: %v", err)
		}
		if err := checkPort(cfg); err != nil {
			return nil, fmt.Errorf("bad DSN: %v", err)
		}
		return cfg, nil
	}
	u, err := url.Parse(dsn)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the whole URL, password included
		}
		// The quoted part of url.Parse's message (`invalid port ":pa" after
		// host`) is a slice of the URL: with a / or # in the password, a
		// piece of it.
		msg := quoted.ReplaceAllString(err.Error(), `"…"`)
		return nil, fmt.Errorf("bad URL: %s (percent-encode / @ : ? # in the password)", msg)
	}
	if u.Scheme != "mysql" && u.Scheme != "mariadb" {
		return nil, fmt.Errorf("URL scheme must be mysql://, not %s://", u.Scheme)
	}
	if u.Hostname() == "" {
		return nil, errors.New("URL has no host (mysql://user:password@host:3306/database)")
	}
	port := u.Port()
	if port == "" {
		port = "3306"
	}
	db := strings.Trim(u.Path, "/")
	if strings.Contains(db, "/") {
		return nil, fmt.Errorf("URL path must be one database name, not %q", db)
	}
	// The query string holds go-sql-driver's own parameters as well as
	// session variables: let the driver sort them, as it does for its own
	// DSN form. The credentials stay out of the parsed text, so no
	// character of a password can confuse the driver's parser and no error
	// can echo them.
	cfg, err := mysql.ParseDSN("tcp(" + net.JoinHostPort(u.Hostname(), port) + ")/" + db + "?" + u.RawQuery)
	if err != nil {
		return nil, fmt.Errorf("bad URL parameters: %v", err)
	}
	if err := checkPort(cfg); err != nil {
		return nil, fmt.Errorf("bad URL: %v", err)
	}
	cfg.User = u.User.Username()
	cfg.Passwd, _ = u.User.Password()
	return cfg, nil
}

// checkPort refuses a TCP port that is no 16-bit number, which the driver
// would only find out when it dials.
func checkPort(cfg *mysql.Config) error {
	if cfg.Net != "tcp" {
		return nil
	}
	_, port, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return fmt.Errorf("bad address %q: %v", cfg.Addr, err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("bad port %q: must be a number from 0 to 65535", port)
	}
	return nil
}

// HostPort returns the host and port of a TCP configuration.
func HostPort(cfg *mysql.Config) (host string, port uint16, err error) {
	if cfg.Net != "tcp" {
		return "", 0, fmt.Errorf("the address must be tcp(host:port), not %s", cfg.Net)
	}
	h, p, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return "", 0, fmt.Errorf("bad address %q: %v", cfg.Addr, err)
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("bad port %q: must be a number from 0 to 65535", p)
	}
	return h, uint16(n), nil
}

// Redacted returns cfg's address for logs and errors, with the password as
// ***: user:***@host:3306/database (user@host:3306 without a password or a
// database; net(address) for other networks than TCP).
func Redacted(cfg *mysql.Config) string {
	var b strings.Builder
	b.WriteString(cfg.User)
	if cfg.Passwd != "" {
		b.WriteString(":***")
	}
	b.WriteByte('@')
	if cfg.Net == "tcp" || cfg.Net == "" {
		b.WriteString(cfg.Addr)
	} else {
		b.WriteString(cfg.Net + "(" + cfg.Addr + ")")
	}
	if cfg.DBName != "" {
		b.WriteString("/" + cfg.DBName)
	}
	return b.String()
}

// quoted matches the quoted fragments of url.Parse's messages.
var quoted = regexp.MustCompile(`"[^"]*"`)

// scrub is the last guard: whatever a parser's message quotes, what may be
// the password of a DSN that did not parse is replaced with ***.
func scrub(err error, dsn string) error {
	cred := credentials(dsn)
	if cred == "" {
		return err
	}
	msg := strings.ReplaceAll(err.Error(), cred, "***")
	if msg == err.Error() {
		return err
	}
	return errors.New(msg)
}

// credentials returns what may be the password in a DSN that did not
// parse: the text between the first ':' of the user information and the
// last '@' (after the scheme for a URL), or "" when there is none.
func credentials(dsn string) string {
	rest := dsn
	if i := strings.Index(rest, "://"); i >= 0 {
		rest = rest[i+3:]
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return ""
	}
	_, pass, ok := strings.Cut(rest[:at], ":")
	if !ok {
		return ""
	}
	return pass
}
