package pipeline

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/go-sql-driver/mysql"

	"github.com/rowhook/rowhook/dispatch"
	"github.com/rowhook/rowhook/dispatch/mysqlstore"
	"github.com/rowhook/rowhook/dispatch/sqlitestore"
	"github.com/rowhook/rowhook/internal/mysqldsn"
)

// Store is the state store rowhook keeps its checkpoint, outbox and
// delivery log in, with where it lives (for logs and messages).
type Store struct {
	dispatch.Store
	// Where is the SQLite file, or user@host:port/schema for MySQL.
	Where string
	// File is the SQLite file ("" for MySQL).
	File string
	// server identifies the MySQL state server ("" for SQLite).
	server string
}

// IsMySQLState reports whether the state store is MySQL/MariaDB
// (state.driver: mysql) rather than the SQLite file.
func IsMySQLState(cfg *Config) bool { return cfg.Dispatch.State.Driver == dispatch.StateMySQL }

// OpenStore opens the configured store: SQLite at state.path (relative to
// cfgDir) by default, MySQL/MariaDB at state.dsn with state.driver: mysql.
// A store that exists but holds no rowhook state is refused with the
// recovery (see noStateError).
func OpenStore(ctx context.Context, cfg *Config, cfgDir string, readOnly bool) (*Store, error) {
	return OpenStoreWith(ctx, cfg, cfgDir, StoreOptions{ReadOnly: readOnly})
}

// StoreOptions are how a command opens the state store.
type StoreOptions struct {
	ReadOnly bool
	// Init takes a store that holds no rowhook state and creates the
	// tables (rowhook position --set, which stores a checkpoint at once).
	Init bool
	// Probe, with ReadOnly, also checks what a writable open checks
	// (rowhook check).
	Probe bool
}

// OpenStoreWith is OpenStore with the options of the command opening it.
func OpenStoreWith(ctx context.Context, cfg *Config, cfgDir string, o StoreOptions) (*Store, error) {
	if IsMySQLState(cfg) {
		s, err := mysqlstore.Open(ctx, cfg.Dispatch.State.DSN, mysqlstore.Options{ReadOnly: o.ReadOnly, Init: o.Init, Probe: o.Probe})
		if err != nil {
			return nil, noStateError(err) // names user@host:port/schema, never the password
		}
		id, err := serverIdentity(ctx, cfg.Dispatch.State.DSN)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("state %s: %w", s.Where(), err)
		}
		return &Store{Store: s, Where: s.Where(), server: id}, nil
	}
	path := StatePath(cfg, cfgDir)
	s, err := sqlitestore.Open(path, sqlitestore.Options{ReadOnly: o.ReadOnly, Init: o.Init})
	if err != nil {
		return nil, noStateError(err)
	}
	return &Store{Store: s, Where: path, File: path}, nil
}

// noStateError adds the recovery to a store's dispatch.ErrNoState: only a
// missing state is a fresh start; an emptied one has lost the checkpoint,
// and starting at source.start would skip what was written meanwhile.
func noStateError(err error) error {
	if !errors.Is(err, dispatch.ErrNoState) {
		return err
	}
	return fmt.Errorf("%w\nrowhook starts fresh only when the state is missing; this one lost its checkpoint, and starting at source.start would skip every change made while rowhook was stopped. "+
		"Restore the state from a backup, or choose where to resume and store it with: rowhook position --config FILE --set earliest|current|gtid:SET|file:NAME:POS "+
		"(that creates rowhook's tables; move a file that is no SQLite database aside first), then start rowhook again (docs/dispatch.md, State store)", err)
}

// stateID names the state for deriving the HA lock name without opening it.
func stateID(cfg *Config, cfgDir string) string {
	if IsMySQLState(cfg) {
		if c, err := mysqldsn.Parse(cfg.Dispatch.State.DSN); err == nil {
			return "mysql:" + c.Addr + "/" + c.DBName
		}
	}
	return StatePath(cfg, cfgDir)
}

// checkStateServer refuses a MySQL state on the very server rowhook reads:
// every state commit would land in the binlog it tails, be read back as a
// transaction, advance the checkpoint and be committed again. sourceDB is
// the source's metadata connection.
func (s *Store) checkStateServer(ctx context.Context, sourceDB *sql.DB) error {
	if s.server == "" {
		return nil
	}
	src, err := identityOf(ctx, sourceDB)
	if err != nil {
		return fmt.Errorf("source: %w", err)
	}
	if src == s.server {
		return fmt.Errorf("state.dsn: the state server %s is the source rowhook reads (%s): its own state writes would come back through the binlog; keep the state on another server, or on the primary with the state schema kept off the replica (docs/dispatch.md, State store)", s.Where, src)
	}
	return nil
}

// serverIdentity names the server behind dsn; see identityOf.
func serverIdentity(ctx context.Context, dsn string) (string, error) {
	cfg, err := mysqldsn.Parse(dsn)
	if err != nil {
		return "", err
	}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return "", err
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	return identityOf(ctx, db)
}

// identityOf names a server by what two servers do not share: server_id
// alone is 1 on many unrelated installs, so host name, port and data
// directory go with it.
func identityOf(ctx context.Context, db *sql.DB) (string, error) {
	var id uint32
	var host, datadir string
	var port int
	if err := db.QueryRowContext(ctx, "/* rowhook */ SELECT @@server_id, @@hostname, @@port, @@datadir").Scan(&id, &host, &port, &datadir); err != nil {
		return "", fmt.Errorf("identify server: %w", err)
	}
	return fmt.Sprintf("server_id %d on %s:%d, datadir %s", id, host, port, datadir), nil
}

// OpenStateFile opens the state store for the commands that read or change
// it from the command line (rowhook deliveries, redeliver): the SQLite file
// at path, else the store configPath's config names (state.path, or
// MySQL with state.driver: mysql). With configPath it also returns the
// dispatch config. The store must exist already.
func OpenStateFile(ctx context.Context, path, configPath string) (dispatch.Store, *dispatch.Config, error) {
	var dc *dispatch.Config
	if configPath != "" {
		cfg, _, err := LoadState(ctx, configPath)
		if err != nil {
			return nil, nil, err
		}
		dc = &cfg.Dispatch
		if path == "" && IsMySQLState(cfg) {
			st, err := OpenStore(context.Background(), cfg, filepath.Dir(configPath), false)
			if err != nil {
				return nil, nil, err
			}
			return st.Store, dc, nil
		}
		if path == "" {
			path = cfg.Dispatch.StatePath(configPath)
		}
	}
	if path == "" {
		return nil, nil, errors.New("no state store: give a state file or a config")
	}
	if _, err := os.Stat(path); err != nil {
		return nil, nil, fmt.Errorf("state store %s: %w (rowhook run creates it; is the path right?)", path, err)
	}
	st, err := sqlitestore.Open(path, sqlitestore.Options{})
	if err != nil {
		return nil, nil, err
	}
	return st, dc, nil
}
