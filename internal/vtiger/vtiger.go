// Package vtiger ships the schema of a real Vtiger CRM 8.3 install (the
// tables a Potential/Opportunity touches, plus Accounts, Contacts, Leads and
// Tickets) and the exact statement sequences Vtiger runs to create, update
// and delete an opportunity, for tests and the demo. Vtiger uses no
// transactions: each statement is its own binlog transaction.
package vtiger

import (
	"context"
	"database/sql"
	_ "embed"
	"fmt"
	"strings"

	"github.com/rowhook/rowhook/internal/sqltext"
)

// Schema creates the tables and seed rows (run it in the CRM's database).
//
//go:embed schema.sql
var Schema string

// CreatePotential is what Vtiger writes when an opportunity is created
// through its web service; it sets @crmid to the new record's id.
//
//go:embed create_potential.sql
var CreatePotential string

// UpdateDeletePotential changes the opportunity's sales stage, a custom
// field, and then soft-deletes it (uses @crmid).
//
//go:embed update_delete_potential.sql
var UpdateDeletePotential string

// Exec runs a script statement by statement on one connection, so session
// variables (@crmid) carry over and each statement commits on its own, as
// Vtiger's do.
func Exec(ctx context.Context, conn *sql.Conn, script string) error {
	for _, q := range sqltext.Split(script) {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("vtiger: %s: %w", firstLine(q), err)
		}
	}
	return nil
}

// Load creates the Vtiger schema in database name on db (created if missing).
func Load(ctx context.Context, db *sql.DB, name string) error {
	if _, err := db.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS `"+name+"` CHARACTER SET utf8mb3"); err != nil {
		return fmt.Errorf("vtiger: create database %s: %w", name, err)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "USE `"+name+"`"); err != nil {
		return err
	}
	return Exec(ctx, conn, Schema)
}

// Session opens a connection set up like Vtiger's (non-strict sql_mode,
// autocommit) on database name.
func Session(ctx context.Context, db *sql.DB, name string) (*sql.Conn, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	for _, q := range []string{"USE `" + name + "`", "SET SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION'", "SET AUTOCOMMIT = 1"} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			conn.Close()
			return nil, fmt.Errorf("vtiger: %s: %w", q, err)
		}
	}
	return conn, nil
}

func firstLine(q string) string {
	if i := strings.IndexByte(q, '\n'); i > 0 {
		q = q[:i]
	}
	if len(q) > 100 {
		q = q[:100] + "…"
	}
	return q
}

// SeedAccount creates the account the CreatePotential script relates its
// opportunity to (crmid 2, "Acme Corp"), as it existed in the captured
// install; run it first so the opportunity gets crmid 3 as it did there.
const SeedAccount = `
update vtiger_crmentity_seq set id=LAST_INSERT_ID(id+1);
insert into vtiger_crmentity (crmid,smcreatorid,smownerid,smgroupid,setype,description,modifiedby,createdtime,modifiedtime,source,label)
  values(LAST_INSERT_ID(),1,1,0,'Accounts','Key account',1,UTC_TIMESTAMP(),UTC_TIMESTAMP(),'CRM','Acme Corp');
insert into vtiger_account (accountid, account_no, accountname, account_type, industry, employees)
  values (LAST_INSERT_ID(), 'ACC1', 'Acme Corp', 'Customer', 'Technology', 500);
insert into vtiger_accountscf (accountid) values (LAST_INSERT_ID());
`
