package main

import (
	"context"
	"fmt"

	"github.com/rowhook/rowhook/dispatch"
	"github.com/rowhook/rowhook/dispatch/mysqlstore"
	"github.com/rowhook/rowhook/dispatch/sqlitestore"
	"github.com/rowhook/rowhook/writeback"
)

// stateStore is the state store rowhook keeps its checkpoint, outbox and
// delivery log in, with where it lives (for logs and messages).
type stateStore struct {
	dispatch.Store
	// Where is the SQLite file, or user@host:port/schema for MySQL.
	Where string
	// File is the SQLite file ("" for MySQL).
	File string
	// serverID is the MySQL state server's server_id (0 for SQLite).
	serverID uint32
}

func isMySQLState(cfg *config) bool { return cfg.Dispatch.State.Driver == dispatch.StateMySQL }

// openStore opens the configured store: SQLite at state.path (relative to
// cfgDir) by default, MySQL/MariaDB at state.dsn with state.driver: mysql.
func openStore(ctx context.Context, cfg *config, cfgDir string, readOnly bool) (*stateStore, error) {
	if isMySQLState(cfg) {
		s, err := mysqlstore.Open(ctx, cfg.Dispatch.State.DSN, mysqlstore.Options{ReadOnly: readOnly})
		if err != nil {
			return nil, err // names user@host:port/schema, never the password
		}
		id, err := s.ServerID(ctx)
		if err != nil {
			s.Close()
			return nil, err
		}
		return &stateStore{Store: s, Where: s.Where(), serverID: id}, nil
	}
	path := statePath(cfg, cfgDir)
	s, err := sqlitestore.Open(path, sqlitestore.Options{ReadOnly: readOnly})
	if err != nil {
		return nil, err
	}
	return &stateStore{Store: s, Where: path, File: path}, nil
}

// stateID names the state for deriving the HA lock name without opening it.
func stateID(cfg *config, cfgDir string) string {
	if isMySQLState(cfg) {
		if c, err := writeback.ParseDSN(cfg.Dispatch.State.DSN); err == nil {
			return "mysql:" + c.Addr + "/" + c.DBName
		}
	}
	return statePath(cfg, cfgDir)
}

// checkStateServer refuses a MySQL state on the very server rowhook reads:
// every state commit would land in the binlog it tails, be read back as a
// transaction, advance the checkpoint and be committed again.
func (s *stateStore) checkStateServer(sourceServerID uint32) error {
	if s.serverID != 0 && s.serverID == sourceServerID {
		return fmt.Errorf("state.dsn: the state server %s is the source rowhook reads (server_id %d): its own state writes would come back through the binlog; keep the state on another server, or on the primary with the state schema kept off the replica (docs/dispatch.md, State store)", s.Where, sourceServerID)
	}
	return nil
}
