package cdc

import (
	"errors"
	"fmt"
	"net"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/rowhook/rowhook/internal/mysqldsn"
	"github.com/rowhook/rowhook/internal/yamlconf"
)

// Config is the `source:` part of rowhook's configuration: which server to
// read, from where, and which tables.
type Config struct {
	// DSN is the source server (a replica in production), as a URL
	// mysql://user:password@host:port/ or a go-sql-driver DSN
	// user:password@tcp(host:port)/. The user needs REPLICATION SLAVE and
	// REPLICATION CLIENT (MariaDB ≥ 10.5: BINLOG MONITOR) and SELECT.
	DSN string `yaml:"dsn"`
	// Flavor is "mariadb" or "mysql"; empty detects it from the server.
	Flavor string `yaml:"flavor"`
	// ServerID is the replication server id rowhook registers with; it must
	// differ from every server's and replica's id. 0 picks 4_000_000_000 + a
	// hash of the host name.
	ServerID uint32 `yaml:"server_id"`
	// Start is where to begin when there is no stored checkpoint: "current"
	// (default), "earliest", "gtid:SET" or "file:NAME:POS".
	Start string `yaml:"start"`
	// Include and Exclude are schema.table globs (path.Match syntax: *, ?,
	// [a-z]). A table is read when it matches an Include pattern (or Include
	// is empty) and no Exclude pattern.
	Include []string `yaml:"include"`
	Exclude []string `yaml:"exclude"`
	// Heartbeat is the period the source sends heartbeats at when idle, so
	// lag reads 0 rather than growing while nothing happens.
	Heartbeat time.Duration `yaml:"heartbeat"`
	// ReadTimeout closes a connection that sent nothing (not even a
	// heartbeat) for this long; it must exceed Heartbeat.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// MaxBackoff caps the wait between reconnection attempts.
	MaxBackoff time.Duration `yaml:"max_backoff"`
	// MaxReconnects stops the reader after this many failed reconnections in
	// a row; 0 retries forever.
	MaxReconnects int `yaml:"max_reconnects"`
	// AllowMissingMetadata reads tables whose TABLE_MAP events carry no column
	// names (binlog_row_metadata=MINIMAL) by taking names from the current
	// schema, with a warning. Off, such a source is refused at start-up.
	AllowMissingMetadata bool `yaml:"allow_missing_metadata"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Start:       "current",
		Heartbeat:   5 * time.Second,
		ReadTimeout: 30 * time.Second,
		MaxBackoff:  30 * time.Second,
	}
}

// Validate checks the configuration; errors name the key path under `source`.
func (c Config) Validate() error {
	var errs []error
	if c.DSN == "" {
		errs = append(errs, yamlconf.Errf("source.dsn", "is required (for example mysql://rowhook:secret@replica:3306/)"))
	} else if _, err := ParseDSN(c.DSN); err != nil {
		errs = append(errs, yamlconf.Errf("source.dsn", "%v", err))
	}
	switch c.Flavor {
	case "", "mariadb", "mysql":
	default:
		errs = append(errs, yamlconf.Errf("source.flavor", "must be mariadb or mysql, not %q", c.Flavor))
	}
	if _, err := ParseStart(c.Start); err != nil {
		errs = append(errs, yamlconf.Errf("source.start", "%v", err))
	}
	for i, p := range c.Include {
		if _, err := path.Match(p, "x.y"); err != nil {
			errs = append(errs, yamlconf.Errf(fmt.Sprintf("source.include[%d]", i), "bad pattern %q: %v", p, err))
		}
	}
	for i, p := range c.Exclude {
		if _, err := path.Match(p, "x.y"); err != nil {
			errs = append(errs, yamlconf.Errf(fmt.Sprintf("source.exclude[%d]", i), "bad pattern %q: %v", p, err))
		}
	}
	if c.Heartbeat < 0 {
		errs = append(errs, yamlconf.Errf("source.heartbeat", "must not be negative"))
	}
	if c.ReadTimeout > 0 && c.Heartbeat > 0 && c.ReadTimeout <= c.Heartbeat {
		errs = append(errs, yamlconf.Errf("source.read_timeout", "must be longer than source.heartbeat (%s)", c.Heartbeat))
	}
	return errors.Join(errs...)
}

// Source is a parsed source address.
type Source struct {
	User, Password string
	Host           string
	Port           uint16
	// Params are the session variables from the DSN (the driver's own
	// parameters, such as timeout or tls, are kept apart and apply too).
	Params map[string]string

	driver *mysql.Config
}

// Addr returns host:port.
func (s Source) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(int(s.Port))) }

// DriverDSN returns a go-sql-driver/mysql DSN for the source, for metadata
// queries (UTC session time zone, so TIMESTAMP reads match the binlog's,
// unless the DSN sets time_zone; a 10 s connect timeout unless it sets
// timeout).
func (s Source) DriverDSN(database string) string {
	cfg := mysql.NewConfig()
	if s.driver != nil {
		cfg = s.driver.Clone()
	}
	cfg.User, cfg.Passwd = s.User, s.Password
	cfg.Net, cfg.Addr = "tcp", s.Addr()
	cfg.DBName = database
	cfg.Params = map[string]string{"time_zone": "'+00:00'"}
	for k, v := range s.Params {
		cfg.Params[k] = v
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	return cfg.FormatDSN()
}

// Redacted returns the address with the password hidden, for logs.
func (s Source) Redacted() string {
	return mysqldsn.Redacted(&mysql.Config{User: s.User, Passwd: s.Password, Net: "tcp", Addr: s.Addr()})
}

// ParseDSN parses the source address (see mysqldsn.Parse for the forms) and
// checks what reading a binlog needs: TCP, a host and a user. Errors never
// contain the password.
func ParseDSN(dsn string) (Source, error) {
	var s Source
	cfg, err := mysqldsn.Parse(dsn)
	if err != nil {
		return s, err
	}
	host, port, err := mysqldsn.HostPort(cfg)
	if err != nil {
		return s, fmt.Errorf("%v: the binlog protocol needs TCP", err)
	}
	if host == "" {
		return s, errors.New("source has no host")
	}
	if cfg.User == "" {
		return s, errors.New("source has no user")
	}
	s = Source{User: cfg.User, Password: cfg.Passwd, Host: host, Port: port, Params: cfg.Params, driver: cfg}
	return s, nil
}

// StartKind is where reading begins without a checkpoint.
type StartKind int

// The start kinds.
const (
	StartCurrent StartKind = iota
	StartEarliest
	StartGTID
	StartFile
)

// Start is a parsed start position.
type Start struct {
	Kind StartKind
	GTID string
	File string
	Pos  uint32
}

// ParseStart parses "current", "earliest", "gtid:SET" or "file:NAME:POS".
func ParseStart(s string) (Start, error) {
	switch {
	case s == "" || s == "current":
		return Start{Kind: StartCurrent}, nil
	case s == "earliest":
		return Start{Kind: StartEarliest}, nil
	case strings.HasPrefix(s, "gtid:"):
		set := strings.TrimSpace(strings.TrimPrefix(s, "gtid:"))
		if set == "" {
			return Start{}, errors.New(`gtid: needs a GTID set, for example gtid:0-1-1234`)
		}
		return Start{Kind: StartGTID, GTID: set}, nil
	case strings.HasPrefix(s, "file:"):
		rest := strings.TrimPrefix(s, "file:")
		i := strings.LastIndex(rest, ":")
		if i <= 0 {
			return Start{}, fmt.Errorf("file: start needs NAME:POS, for example file:mysql-bin.000042:4, not %q", s)
		}
		pos, err := strconv.ParseUint(rest[i+1:], 10, 32)
		if err != nil || pos < 4 {
			return Start{}, fmt.Errorf("file: start position must be a number ≥ 4, not %q", rest[i+1:])
		}
		return Start{Kind: StartFile, File: rest[:i], Pos: uint32(pos)}, nil
	}
	return Start{}, fmt.Errorf("start must be current, earliest, gtid:SET or file:NAME:POS, not %q", s)
}

// Filter decides which tables are read.
type Filter struct {
	include, exclude []string
}

// NewFilter returns a filter over schema.table globs.
func NewFilter(include, exclude []string) Filter {
	return Filter{include: include, exclude: exclude}
}

// Match reports whether schema.table passes the filter.
func (f Filter) Match(schema, table string) bool {
	name := schema + "." + table
	if len(f.include) > 0 {
		ok := false
		for _, p := range f.include {
			if m, _ := path.Match(p, name); m {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	for _, p := range f.exclude {
		if m, _ := path.Match(p, name); m {
			return false
		}
	}
	return true
}
