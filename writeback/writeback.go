// Package writeback writes values from web service responses back into CRM
// columns on the primary database, tagged so that rowhook recognises its own
// writes when they come back through the replica's binlog.
//
// A Writer is built once at start-up by New, which checks every rule's
// mapping against the primary's information_schema and compiles its
// expressions; the dispatcher then calls Apply after each successful
// delivery. Apply runs one transaction per response and returns typed errors
// (see IsPermanent) so the caller can decide whether to retry.
package writeback

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/internal/backoff"
	"github.com/rowhook/rowhook/internal/mysqldsn"
	"github.com/rowhook/rowhook/internal/yamlconf"
)

// Tag is the comment every writeback statement carries (cdc.WritebackTag).
const Tag = cdc.WritebackTag

// Mode is how rowhook recognises its own writes in the replica's binlog.
type Mode string

// The self-trigger detection modes.
const (
	// ModeAuto uses annotations when the primary and replica log them and
	// falls back to the marker table otherwise.
	ModeAuto Mode = "auto"
	// ModeAnnotate relies on the Tag in Annotate_rows / Rows_query events and
	// refuses to start when the servers do not log them.
	ModeAnnotate Mode = "annotate"
	// ModeMarker writes a row to the marker table in every writeback
	// transaction; IsOwnTransaction recognises it.
	ModeMarker Mode = "marker"
)

// DefaultMarkerTable is the marker table's name when the configuration does
// not give one; it lives in the DSN's default database.
const DefaultMarkerTable = "rowhook_writeback_marker"

// Config is the top-level `writeback:` section.
type Config struct {
	// DSN is the CRM's primary (the source is a replica), as a go-sql-driver
	// DSN user:password@tcp(host:port)/db or a URL mysql://user:password@host:port/db.
	// The database is the default schema for mapping tables without one.
	DSN string `yaml:"dsn"`
	// Mode is auto (default), annotate or marker; see Mode.
	Mode Mode `yaml:"mode"`
	// MarkerTable is "schema.table" or "table" (in the DSN's database) for
	// the marker fallback; empty means DefaultMarkerTable.
	MarkerTable string `yaml:"marker_table"`
	// CreateMarker lets New create the marker table when it is missing
	// (default true). Off, or without the CREATE privilege, a missing table
	// is an error that gives the CREATE TABLE and GRANT to run.
	CreateMarker bool `yaml:"create_marker"`
	// Timeout bounds one Apply: connecting, the transaction and its commit.
	Timeout time.Duration `yaml:"timeout"`
	// ConnectTimeout bounds dialling the primary.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// LockWaitTimeout is the session's innodb_lock_wait_timeout, so a row
	// locked by a CRM user fails fast (and is retried) instead of holding a
	// delivery worker.
	LockWaitTimeout time.Duration `yaml:"lock_wait_timeout"`
	// MaxAttempts is how many times the dispatcher tries a writeback that
	// fails with a transient error before recording it as failed.
	MaxAttempts int `yaml:"max_attempts"`
	// Backoff is the wait before the second attempt; it doubles per attempt
	// up to MaxBackoff.
	Backoff time.Duration `yaml:"backoff"`
	// MaxBackoff caps the wait between attempts.
	MaxBackoff time.Duration `yaml:"max_backoff"`
	// MaxOpenConns caps the connections to the primary.
	MaxOpenConns int `yaml:"max_open_conns"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Mode:            ModeAuto,
		CreateMarker:    true,
		Timeout:         10 * time.Second,
		ConnectTimeout:  5 * time.Second,
		LockWaitTimeout: 5 * time.Second,
		MaxAttempts:     8,
		Backoff:         time.Second,
		MaxBackoff:      5 * time.Minute,
		MaxOpenConns:    4,
	}
}

// Enabled reports whether a writeback section was configured.
func (c Config) Enabled() bool { return c.DSN != "" }

// Validate checks the configuration; errors name the key path under
// `writeback`. An empty DSN is valid only when no rule writes back; the
// caller checks that (see RequireDSN).
func (c Config) Validate() error {
	var errs []error
	if c.DSN != "" {
		if _, err := mysqldsn.Parse(c.DSN); err != nil {
			errs = append(errs, yamlconf.Errf("writeback.dsn", "%v", err))
		}
	}
	switch c.Mode {
	case "", ModeAuto, ModeAnnotate, ModeMarker:
	default:
		errs = append(errs, yamlconf.Errf("writeback.mode", "must be auto, annotate or marker, not %q", string(c.Mode)))
	}
	if c.MarkerTable != "" {
		s, t, _ := strings.Cut(c.MarkerTable, ".")
		if !strings.Contains(c.MarkerTable, ".") {
			s, t = "", c.MarkerTable
		}
		if t == "" || strings.Contains(t, ".") || (strings.Contains(c.MarkerTable, ".") && s == "") {
			errs = append(errs, yamlconf.Errf("writeback.marker_table", "must be table or schema.table, not %q", c.MarkerTable))
		} else if err := checkIdent(t); err != nil {
			errs = append(errs, yamlconf.Errf("writeback.marker_table", "%v", err))
		}
	}
	for _, d := range []struct {
		path string
		v    time.Duration
	}{
		{"writeback.timeout", c.Timeout}, {"writeback.connect_timeout", c.ConnectTimeout},
		{"writeback.lock_wait_timeout", c.LockWaitTimeout}, {"writeback.backoff", c.Backoff},
		{"writeback.max_backoff", c.MaxBackoff},
	} {
		if d.v < 0 {
			errs = append(errs, yamlconf.Errf(d.path, "must not be negative, got %s", d.v))
		}
	}
	if c.LockWaitTimeout > 0 && c.LockWaitTimeout < time.Second {
		errs = append(errs, yamlconf.Errf("writeback.lock_wait_timeout", "must be at least 1s (innodb_lock_wait_timeout counts whole seconds), got %s", c.LockWaitTimeout))
	}
	if c.MaxAttempts < 0 {
		errs = append(errs, yamlconf.Errf("writeback.max_attempts", "must not be negative, got %d", c.MaxAttempts))
	}
	if c.MaxBackoff > 0 && c.Backoff > c.MaxBackoff {
		errs = append(errs, yamlconf.Errf("writeback.backoff", "must not exceed writeback.max_backoff (%s), got %s", c.MaxBackoff, c.Backoff))
	}
	if c.MaxOpenConns < 0 {
		errs = append(errs, yamlconf.Errf("writeback.max_open_conns", "must not be negative, got %d", c.MaxOpenConns))
	}
	return errors.Join(errs...)
}

// RequireDSN returns a path error when rules write back but the
// `writeback.dsn` is empty; rules names the rules with a writeback block.
func (c Config) RequireDSN(rules []string) error {
	if c.DSN != "" || len(rules) == 0 {
		return nil
	}
	sort.Strings(rules)
	return yamlconf.Errf("writeback.dsn", "is required: rules %s write back (for example 'crm:${CRM_PASSWORD}@tcp(primary:3306)/vtiger')", strings.Join(rules, ", "))
}

// RetryDelay is the wait before attempt n+1 after attempt n (n from 1)
// failed: Backoff doubling per attempt, capped at MaxBackoff. The dispatcher
// adds its own jitter.
func (c Config) RetryDelay(n int) time.Duration {
	d := c.Backoff
	if d <= 0 {
		d = time.Second
	}
	limit := c.MaxBackoff
	if limit <= 0 {
		limit = math.MaxInt64
	}
	return backoff.Exponential(n, d, limit)
}

// Mapping is a rule's `writeback:` block: after a successful delivery, set
// columns of one row on the primary from the response.
type Mapping struct {
	// Table is schema.table on the primary, or table in the DSN's database.
	Table string `yaml:"table"`
	// Key maps key columns to expr expressions over row/old/response; the
	// columns must cover a primary or unique key, so one row is addressed.
	Key map[string]string `yaml:"key"`
	// Set maps columns to expr expressions over response/row/old.
	Set map[string]string `yaml:"set"`
	// When is an optional expr condition over response/row/old; false writes
	// nothing.
	When string `yaml:"when"`

	// Path is where the block sits in the configuration
	// ("rules[3].writeback"); Validate records it so that New's errors name
	// the place.
	Path string `yaml:"-"`
}

// Validate checks the block on its own (names, expression syntax and types);
// path is its configuration path, e.g. "rules[3].writeback". Columns are
// checked against the database by New.
func (m *Mapping) Validate(path string) error {
	m.Path = path
	var errs []error
	if m.Table == "" {
		errs = append(errs, yamlconf.Errf(path+".table", "is required (schema.table, e.g. vtiger.vtiger_potentialscf)"))
	} else if _, _, err := splitTable(m.Table); err != nil {
		errs = append(errs, yamlconf.Errf(path+".table", "%v", err))
	}
	if len(m.Key) == 0 {
		errs = append(errs, yamlconf.Errf(path+".key", "is required: the columns that identify the row, e.g. { potentialid: 'row.potentialid' }"))
	}
	if len(m.Set) == 0 {
		errs = append(errs, yamlconf.Errf(path+".set", "is required: the columns to write, e.g. { cf_erp_id: 'response.json.id' }"))
	}
	for _, col := range sortedKeys(m.Key) {
		p := path + ".key." + col
		if err := checkIdent(col); err != nil {
			errs = append(errs, yamlconf.Errf(p, "%v", err))
		}
		if _, ok := m.Set[col]; ok {
			errs = append(errs, yamlconf.Errf(path+".set."+col, "column %s is also a key column; a writeback cannot change the key it looks the row up by", col))
		}
		if _, err := compileExpr(p, m.Key[col], false); err != nil {
			errs = append(errs, err)
		}
	}
	for _, col := range sortedKeys(m.Set) {
		p := path + ".set." + col
		if err := checkIdent(col); err != nil {
			errs = append(errs, yamlconf.Errf(p, "%v", err))
		}
		if _, err := compileExpr(p, m.Set[col], false); err != nil {
			errs = append(errs, err)
		}
	}
	if m.When != "" {
		if _, err := compileExpr(path+".when", m.When, true); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// path returns the configuration path for errors about the mapping of rule.
func (m *Mapping) path(rule string) string {
	if m.Path != "" {
		return m.Path
	}
	return fmt.Sprintf("rules[%s].writeback", rule)
}

// splitTable splits "schema.table" or "table" (schema "").
func splitTable(s string) (schema, table string, err error) {
	parts := strings.Split(s, ".")
	switch len(parts) {
	case 1:
		table = parts[0]
	case 2:
		schema, table = parts[0], parts[1]
		if schema == "" {
			return "", "", fmt.Errorf("bad table %q: empty schema name", s)
		}
	default:
		return "", "", fmt.Errorf("bad table %q: use schema.table (names containing dots are not supported)", s)
	}
	if err := checkIdent(table); err != nil {
		return "", "", err
	}
	if schema != "" {
		if err := checkIdent(schema); err != nil {
			return "", "", err
		}
	}
	return schema, table, nil
}

// checkIdent refuses names MariaDB cannot have (or that rowhook does not
// quote); the real check is against information_schema.
func checkIdent(s string) error {
	switch {
	case s == "":
		return errors.New("empty name")
	case len(s) > 64:
		return fmt.Errorf("name %q is longer than 64 characters", s)
	case strings.ContainsAny(s, "`\x00"):
		return fmt.Errorf("name %q contains a backquote or NUL", s)
	case strings.TrimRight(s, " ") != s:
		return fmt.Errorf("name %q ends with a space", s)
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
