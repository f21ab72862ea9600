// Package mysqlstore is a dispatch.Store in a MySQL or MariaDB schema
// (InnoDB), for high availability: an active and a standby rowhook share
// one checkpoint and one outbox, so the standby resumes exactly where the
// active one stopped. It keeps the same contract as dispatch/sqlitestore,
// checked by the same conformance suite (dispatch/storetest).
//
// The state schema must not be the CRM replica rowhook reads: writes to a
// replica diverge from its primary, and rowhook would read its own state
// writes back from the binlog. Use a dedicated schema on the primary or on
// another server (docs/dispatch.md, "State store").
package mysqlstore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/rowhook/rowhook/cdc"
	"github.com/rowhook/rowhook/dispatch"
	"github.com/rowhook/rowhook/dispatch/storesql"
	"github.com/rowhook/rowhook/internal/mysqldsn"
)

// Options tunes the store.
type Options struct {
	// MaxOpenConns caps the connection pool; 0 means 8.
	MaxOpenConns int
	// ReadOnly opens the schema without creating or migrating tables (for
	// commands that only read the delivery log).
	ReadOnly bool
	// Probe, with ReadOnly, also makes the checks of a writable Open (the
	// server is not read_only): for rowhook check, which creates nothing.
	Probe bool
	// Init lets Open recreate rowhook's tables where some are missing
	// from a schema that held rowhook state: for `rowhook position
	// --set`, which stores a checkpoint at once. Without Init such a
	// schema is refused with dispatch.ErrNoState.
	Init bool
}

// ErrNotCreated: the schema has none of rowhook's tables yet. For a
// writable Open that is a first start (it creates them); a read-only Open
// returns it.
var ErrNotCreated = errors.New("mysqlstore: no rowhook state tables in this schema")

// Store is a dispatch.Store in a MySQL/MariaDB schema.
type Store struct {
	db *sql.DB
	// where names the database in errors: user@host:port/schema, never
	// the password.
	where string
}

var _ dispatch.Store = (*Store)(nil)

// SchemaVersion is the version of the tables this package creates; Open
// refuses a schema migrated by a newer rowhook.
const SchemaVersion = 1

// tag starts every statement rowhook sends, so DBAs can tell rowhook's
// queries apart in the process list and slow log.
const tag = "/* rowhook */ "

// Tables are prefixed so that the state can share a schema with other
// applications' tables without a clash. Strings compare byte-wise
// (utf8mb4_bin), as in SQLite. Timestamps are BIGINT nanoseconds since the
// Unix epoch (0 for none): no session time zone can shift them.
var schema = []string{
	`CREATE TABLE IF NOT EXISTS rowhook_schema_version (
	version    INT NOT NULL PRIMARY KEY,
	applied_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
	`CREATE TABLE IF NOT EXISTS rowhook_checkpoint (
	id   TINYINT NOT NULL PRIMARY KEY,
	data TEXT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
	`CREATE TABLE IF NOT EXISTS rowhook_deliveries (
	seq             BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
	id              VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
	event_id        TEXT NOT NULL,
	rule            VARCHAR(191) NOT NULL,
	event           VARCHAR(191) NOT NULL,
	webhook         VARCHAR(191) NOT NULL,
	subscription    VARCHAR(191) NOT NULL,
	record_key      TEXT NOT NULL,
	method          VARCHAR(16) NOT NULL,
	url             TEXT NOT NULL,
	content_type    VARCHAR(255) NOT NULL,
	headers         MEDIUMTEXT NULL,
	body            LONGBLOB NULL,
	change_json     MEDIUMTEXT NULL,
	event_time      BIGINT NOT NULL,
	created_at      BIGINT NOT NULL,
	next_at         BIGINT NOT NULL,
	updated_at      BIGINT NOT NULL,
	status          VARCHAR(16) NOT NULL,
	attempts        INT NOT NULL DEFAULT 0,
	last_status     INT NOT NULL DEFAULT 0,
	last_error      TEXT NOT NULL,
	redelivered     INT NOT NULL DEFAULT 0,
	writeback       VARCHAR(16) NOT NULL DEFAULT '',
	writeback_error TEXT NOT NULL,
	response        LONGTEXT NULL,
	UNIQUE KEY deliveries_id (id),
	KEY deliveries_due (webhook, subscription, status, next_at, seq),
	KEY deliveries_order (webhook, subscription, status, seq),
	KEY deliveries_created (created_at),
	KEY deliveries_writeback (writeback, seq),
	KEY deliveries_status (status, webhook)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
	`CREATE TABLE IF NOT EXISTS rowhook_attempts (
	id               BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
	delivery_id      VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
	n                INT NOT NULL,
	kind             VARCHAR(16) NOT NULL,
	at               BIGINT NOT NULL,
	duration_us      BIGINT NOT NULL,
	method           VARCHAR(16) NOT NULL,
	url              TEXT NOT NULL,
	request_headers  MEDIUMTEXT NULL,
	request_body     LONGBLOB NULL,
	status           INT NOT NULL DEFAULT 0,
	response_headers MEDIUMTEXT NULL,
	response_body    LONGBLOB NULL,
	error            TEXT NOT NULL,
	note             TEXT NOT NULL,
	KEY attempts_delivery (delivery_id, at, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
	// marker is SHA-256(rule, 0, record key): record keys of composite
	// primary keys can be longer than an InnoDB index allows.
	`CREATE TABLE IF NOT EXISTS rowhook_once_markers (
	marker     BINARY(32) NOT NULL PRIMARY KEY,
	rule       VARCHAR(191) NOT NULL,
	record_key TEXT NOT NULL,
	event_id   TEXT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
	`CREATE TABLE IF NOT EXISTS rowhook_subscriptions (
	id         VARCHAR(191) NOT NULL PRIMARY KEY,
	url        TEXT NOT NULL,
	event      VARCHAR(191) NOT NULL,
	created_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
	`CREATE TABLE IF NOT EXISTS rowhook_webhook_state (
	webhook         VARCHAR(191) NOT NULL PRIMARY KEY,
	disabled_reason TEXT NOT NULL,
	at              BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
}

// Open connects to the state schema named by dsn (go-sql-driver form
// user:pass@tcp(host:3306)/schema, or mysql://user:pass@host:3306/schema),
// creates the tables if missing (unless opts.ReadOnly) and checks the
// schema version. Errors never contain the password.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	cfg, err := mysqldsn.Parse(dsn)
	if err != nil {
		return nil, fmt.Errorf("open state database: %w", err)
	}
	where := fmt.Sprintf("%s@%s/%s", cfg.User, cfg.Addr, cfg.DBName)
	if cfg.DBName == "" {
		return nil, fmt.Errorf("open state database %s: the DSN names no schema (user:password@tcp(host:3306)/rowhook_state)", where)
	}
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	// Strict mode: a value too long for its column is an error, never a
	// silent truncation of a delivery.
	if _, ok := cfg.Params["sql_mode"]; !ok {
		cfg.Params["sql_mode"] = "'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'"
	}
	// One round trip per statement instead of prepare + execute + close.
	cfg.InterpolateParams = true
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("open state database %s: %w", where, err)
	}
	db := sql.OpenDB(connector)
	n := opts.MaxOpenConns
	if n <= 0 {
		n = 8
	}
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	db.SetConnMaxLifetime(time.Hour)
	s := &Store{db: db, where: where}
	if err := s.migrate(ctx, opts); err != nil {
		db.Close()
		return nil, fmt.Errorf("open state database %s: %w", where, err)
	}
	return s, nil
}

func (s *Store) migrate(ctx context.Context, opts Options) error {
	readOnly := opts.ReadOnly
	if !readOnly || opts.Probe {
		// A read_only server is most likely a replica, perhaps the very one
		// rowhook reads; an account with SUPER could still write there, and
		// would make it diverge from its primary.
		var ro int
		if err := s.db.QueryRowContext(ctx, tag+`SELECT @@global.read_only`).Scan(&ro); err != nil {
			return fmt.Errorf("check read_only: %w", classify(err))
		}
		if ro != 0 {
			return errors.New("the server is read_only (a replica?): keep the state on a writable server, never on the replica rowhook reads (docs/dispatch.md, State store)")
		}
	}
	missing, versioned, err := s.missingTables(ctx)
	if err != nil {
		return err
	}
	switch {
	case len(missing) == len(schema) && readOnly:
		return fmt.Errorf("%w (run rowhook once with write access to create them)", ErrNotCreated)
	case versioned && len(missing) > 0 && !opts.Init:
		// rowhook_schema_version gets its row once every table exists: the
		// state was complete here, and a start without its tables would
		// begin at source.start and skip what was written meanwhile.
		return fmt.Errorf("%w: %s missing, though rowhook_schema_version says the state was created here (dropped, or a partial restore?)", dispatch.ErrNoState, strings.Join(missing, ", "))
	}
	if !readOnly {
		for _, q := range schema {
			if _, err := s.db.ExecContext(ctx, tag+q); err != nil {
				return fmt.Errorf("create tables: %w", classify(err))
			}
		}
		if _, err := s.db.ExecContext(ctx, tag+`INSERT IGNORE INTO rowhook_schema_version (version, applied_at) VALUES (?, ?)`,
			SchemaVersion, time.Now().UnixNano()); err != nil {
			return fmt.Errorf("record schema version: %w", classify(err))
		}
	}
	var v sql.NullInt64
	if err := s.db.QueryRowContext(ctx, tag+`SELECT MAX(version) FROM rowhook_schema_version`).Scan(&v); err != nil {
		return fmt.Errorf("read schema version: %w", classify(err))
	}
	if v.Int64 > SchemaVersion {
		return fmt.Errorf("state schema version %d is newer than this rowhook's (%d): upgrade rowhook", v.Int64, SchemaVersion)
	}
	return nil
}

// tableName matches the name of a table in schema.
var tableName = regexp.MustCompile(`CREATE TABLE IF NOT EXISTS (\w+)`)

// missingTables lists rowhook's tables the schema lacks, and whether
// rowhook_schema_version holds a row (written once all tables existed).
func (s *Store) missingTables(ctx context.Context) (missing []string, versioned bool, err error) {
	rows, err := s.db.QueryContext(ctx, tag+`SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()`)
	if err != nil {
		return nil, false, fmt.Errorf("list tables: %w", classify(err))
	}
	have := map[string]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return nil, false, fmt.Errorf("list tables: %w", classify(err))
		}
		have[strings.ToLower(name)] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("list tables: %w", classify(err))
	}
	for _, q := range schema {
		if name := tableName.FindStringSubmatch(q)[1]; !have[name] {
			missing = append(missing, name)
		}
	}
	if have["rowhook_schema_version"] {
		var n int
		if err := s.db.QueryRowContext(ctx, tag+`SELECT COUNT(*) FROM rowhook_schema_version`).Scan(&n); err != nil {
			return nil, false, fmt.Errorf("read schema version: %w", classify(err))
		}
		versioned = n > 0
	}
	return missing, versioned, nil
}

// ServerID returns the state server's @@server_id, so that start-up can
// refuse a state store on the very server rowhook reads the binlog of.
func (s *Store) ServerID(ctx context.Context) (uint32, error) {
	var id uint32
	if err := s.db.QueryRowContext(ctx, tag+`SELECT @@server_id`).Scan(&id); err != nil {
		return 0, fmt.Errorf("read state server id: %w", classify(err))
	}
	return id, nil
}

// Where returns user@host:port/schema, for logs (no password).
func (s *Store) Where() string { return s.where }

// Close closes the connection pool.
func (s *Store) Close() error { return s.db.Close() }

// placeholders returns "(?,?,…),(?,?,…)…" for rows rows of cols columns.
func placeholders(rows, cols int) string {
	row := "(" + strings.Repeat("?,", cols-1) + "?)"
	var b strings.Builder
	b.Grow(rows * (len(row) + 1))
	for i := 0; i < rows; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(row)
	}
	return b.String()
}

func inList(n int) string {
	return "(" + strings.Repeat("?,", n-1) + "?)"
}

// Multi-row statements are cut at maxRows rows or about maxBytes of
// values, well below MariaDB's default max_allowed_packet (16 MiB).
const (
	maxRows  = 500
	maxBytes = 4 << 20
)

func marker(rule, key string) []byte {
	h := sha256.New()
	h.Write([]byte(rule))
	h.Write([]byte{0})
	h.Write([]byte(key))
	return h.Sum(nil)
}

// Commit implements dispatch.Store.
func (s *Store) Commit(ctx context.Context, cp cdc.Checkpoint, ds []dispatch.NewDelivery) (int, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("commit: begin: %w", classify(err))
	}
	defer tx.Rollback()
	keep := ds
	for i := range ds {
		if ds[i].Once {
			if keep, err = onceFilter(ctx, tx, ds); err != nil {
				return 0, fmt.Errorf("commit: once markers: %w", classify(err))
			}
			break
		}
	}
	inserted, err := insertDeliveries(ctx, tx, keep)
	if err != nil {
		return 0, fmt.Errorf("commit: insert deliveries: %w", classify(err))
	}
	if !cp.IsZero() {
		b, err := storesql.JSONText(cp)
		if err != nil {
			return 0, fmt.Errorf("commit: %w", err)
		}
		if _, err := tx.ExecContext(ctx, tag+`INSERT INTO rowhook_checkpoint (id, data) VALUES (1, ?)
			ON DUPLICATE KEY UPDATE data = VALUES(data)`, b); err != nil {
			return 0, fmt.Errorf("commit: checkpoint: %w", classify(err))
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("commit: %w", classify(err))
	}
	return inserted, nil
}

// onceFilter drops the once deliveries whose (rule, key) marker names
// another event. Markers missing are inserted first, in batch order, so the
// first event of a record in the batch owns it (as a sequential check would
// decide); the inserts lock the marker rows until the commit, so two stores
// committing at once cannot both win.
func onceFilter(ctx context.Context, tx *sql.Tx, ds []dispatch.NewDelivery) ([]dispatch.NewDelivery, error) {
	type mk struct{ rule, key, event string }
	seen := map[string]bool{}
	var order []mk
	for i := range ds {
		d := &ds[i]
		if !d.Once {
			continue
		}
		k := string(marker(d.Rule, d.Key))
		if !seen[k] {
			seen[k] = true
			order = append(order, mk{d.Rule, d.Key, d.EventID})
		}
	}
	owner := map[string]string{}
	for start := 0; start < len(order); start += maxRows {
		chunk := order[start:min(start+maxRows, len(order))]
		args := make([]any, 0, 4*len(chunk))
		for _, m := range chunk {
			args = append(args, marker(m.rule, m.key), m.rule, m.key, m.event)
		}
		if _, err := tx.ExecContext(ctx, tag+`INSERT INTO rowhook_once_markers (marker, rule, record_key, event_id) VALUES `+
			placeholders(len(chunk), 4)+` ON DUPLICATE KEY UPDATE marker = marker`, args...); err != nil {
			return nil, err
		}
		keys := make([]any, len(chunk))
		for i, m := range chunk {
			keys[i] = marker(m.rule, m.key)
		}
		// A locking read: it sees the latest committed markers, where a
		// plain read would reuse the snapshot of an earlier chunk.
		rows, err := tx.QueryContext(ctx, tag+`SELECT marker, event_id FROM rowhook_once_markers WHERE marker IN `+inList(len(keys))+` FOR UPDATE`, keys...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var m []byte
			var ev string
			if err := rows.Scan(&m, &ev); err != nil {
				rows.Close()
				return nil, err
			}
			owner[string(m)] = ev
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	out := make([]dispatch.NewDelivery, 0, len(ds))
	for _, d := range ds {
		if d.Once && owner[string(marker(d.Rule, d.Key))] != d.EventID {
			continue
		}
		out = append(out, d)
	}
	return out, nil
}

const insertCols = `(id, event_id, rule, event, webhook, subscription, record_key, method, url, content_type,
	headers, body, change_json, event_time, created_at, next_at, updated_at, status, last_error, writeback_error)`

const nInsertCols = 20

// insertDeliveries inserts ds with multi-row statements; a delivery whose
// id is stored (or earlier in ds) is skipped. ON DUPLICATE KEY UPDATE with
// a no-op, not INSERT IGNORE: IGNORE would also turn a too-long value into
// a warning and store it truncated. A no-op update counts 0 rows affected,
// so the sum of rows affected is the number inserted.
func insertDeliveries(ctx context.Context, tx *sql.Tx, ds []dispatch.NewDelivery) (int, error) {
	inserted := 0
	args := make([]any, 0, nInsertCols*min(len(ds), maxRows))
	rows, size := 0, 0
	flush := func() error {
		if rows == 0 {
			return nil
		}
		res, err := tx.ExecContext(ctx, tag+`INSERT INTO rowhook_deliveries `+insertCols+` VALUES `+
			placeholders(rows, nInsertCols)+` ON DUPLICATE KEY UPDATE id = id`, args...)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		inserted += int(n)
		args, rows, size = args[:0], 0, 0
		return nil
	}
	for i := range ds {
		d := &ds[i]
		headers, change, status, err := storesql.InsertValues(d)
		if err != nil {
			return 0, fmt.Errorf("delivery %s: %w", d.ID, err)
		}
		var body any
		if d.Body != nil {
			body = d.Body
		}
		args = append(args, d.ID, d.EventID, d.Rule, d.Event, d.Webhook, d.Subscription, d.Key, d.Method, d.URL, d.ContentType,
			headers, body, change, storesql.Nanos(d.EventTime), storesql.Nanos(d.CreatedAt), storesql.Nanos(d.NextAt), storesql.Nanos(d.CreatedAt), status, d.Error, "")
		rows++
		size += len(d.Body) + len(d.Change) + len(d.URL) + 256
		if rows >= maxRows || size >= maxBytes {
			if err := flush(); err != nil {
				return 0, err
			}
		}
	}
	if err := flush(); err != nil {
		return 0, err
	}
	return inserted, nil
}

// Checkpoint implements dispatch.Store.
func (s *Store) Checkpoint(ctx context.Context) (cdc.Checkpoint, bool, error) {
	var data string
	err := s.db.QueryRowContext(ctx, tag+`SELECT data FROM rowhook_checkpoint WHERE id = 1`).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return cdc.Checkpoint{}, false, nil
	}
	if err != nil {
		return cdc.Checkpoint{}, false, fmt.Errorf("read checkpoint: %w", classify(err))
	}
	var cp cdc.Checkpoint
	if err := unmarshal(data, &cp); err != nil {
		return cdc.Checkpoint{}, false, fmt.Errorf("read checkpoint: %w", err)
	}
	return cp, true, nil
}
