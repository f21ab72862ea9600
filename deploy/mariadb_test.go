package deploy_test

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/rowhook/rowhook/internal/mariadbtest"
)

// cnfArgs turns the [mariadbd]/[mysqld] settings of a .cnf file into
// mariadbd command-line options, so a test server runs with exactly the
// settings the file gives a DBA (mariadbd refuses unknown ones).
func cnfArgs(t *testing.T, path string) []string {
	t.Helper()
	var args []string
	section := ""
	sc := bufio.NewScanner(strings.NewReader(string(readFile(t, path))))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";") {
			continue
		}
		if strings.HasPrefix(line, "[") {
			section = strings.Trim(line, "[]")
			continue
		}
		if section != "mariadbd" && section != "mysqld" && section != "mariadb" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			args = append(args, "--"+strings.TrimSpace(k))
			continue
		}
		args = append(args, "--"+strings.TrimSpace(k)+"="+strings.TrimSpace(v))
	}
	if len(args) == 0 {
		t.Fatalf("%s: no server settings", path)
	}
	return args
}

// entrypointShell is what the mariadb image's entrypoint gives the init
// scripts it sources: docker_process_sql (the mariadb client as root, in
// MARIADB_DATABASE unless told otherwise), docker_sql_escape_string_literal
// and file_env (VAR from the file VAR_FILE names: Docker secrets), as the
// mariadb:11.4 image's docker-entrypoint.sh defines them.
const entrypointShell = `
set -eo pipefail
docker_process_sql() {
	mariadb --protocol=tcp -h 127.0.0.1 -P "$DB_PORT" -uroot ${MARIADB_DATABASE:+--database="$MARIADB_DATABASE"} "$@"
}
file_env() {
	local var="$1"
	local fileVar="${var}_FILE"
	local def="${2:-}"
	if [ "${!var:-}" ] && [ "${!fileVar:-}" ]; then
		echo "Both $var and $fileVar are set (but are exclusive)" >&2
		exit 1
	fi
	local val="$def"
	if [ "${!var:-}" ]; then
		val="${!var}"
	elif [ "${!fileVar:-}" ]; then
		val="$(< "${!fileVar}")"
	fi
	export "$var"="$val"
	unset "$fileVar"
}
docker_sql_escape_string_literal() {
	local newline=$'\n'
	local escaped=${1//\\/\\\\}
	escaped="${escaped//$newline/\\n}"
	echo "${escaped//\'/\\\'}"
}
`

// initDB runs init files against srv the way the image's entrypoint does:
// *.sh sourced, *.sql piped to docker_process_sql.
func initDB(t *testing.T, srv *mariadbtest.Server, env []string, files ...string) {
	t.Helper()
	script := entrypointShell
	for _, f := range files {
		abs, err := filepath.Abs(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(f, ".sh") {
			script += fmt.Sprintf(". %q\n", abs)
		} else {
			script += fmt.Sprintf("docker_process_sql < %q\n", abs)
		}
	}
	run(t, ".", append(env, fmt.Sprintf("DB_PORT=%d", srv.Port)), "bash", "-c", script)
}

func openAs(t *testing.T, srv *mariadbtest.Server, user, password, db string) *sql.DB {
	t.Helper()
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName = user, password, "tcp", fmt.Sprintf("%s:%d", srv.Host, srv.Port), db
	conn, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// composeDBs is the compose stack's primary and replica, started from its
// files: primary.cnf and the replica's rowhook-replica.cnf, then the init
// scripts as the mariadb image runs them, with replication running.
type composeDBs struct {
	primary, replica *mariadbtest.Server
	// env holds the passwords the init scripts used.
	env map[string]string
}

// Passwords with quotes, backslashes and sed/SQL metacharacters.
const (
	testReplPW      = `re'pl\pw`
	testSourcePW    = `so|ur&ce'p\w"$x`
	testWritebackPW = `wr'ite\back`
)

func startComposeDBs(t *testing.T) composeDBs {
	t.Helper()
	mariadbtest.NeedBinary(t)
	if _, err := exec.LookPath("mariadb"); err != nil {
		t.Fatal("the mariadb client is needed to run the compose init scripts (apt-get install mariadb-client)")
	}
	primary, err := mariadbtest.Start(mariadbtest.Options{ServerID: 1, ExtraArgs: cnfArgs(t, "compose/mariadb/primary.cnf")})
	if err != nil {
		t.Fatalf("start primary with compose/mariadb/primary.cnf: %v", err)
	}
	t.Cleanup(func() { primary.Stop() })
	replica, err := mariadbtest.Start(mariadbtest.Options{ServerID: 2, Replica: true, ExtraArgs: cnfArgs(t, "mariadb/rowhook-replica.cnf")})
	if err != nil {
		t.Fatalf("start replica with deploy/mariadb/rowhook-replica.cnf: %v", err)
	}
	t.Cleanup(func() { replica.Stop() })

	// The passwords as compose passes them: Docker secrets named by *_FILE
	// (trailing newline as in compose/secrets/), read by file_env.
	secretDir := t.TempDir()
	secretFile := func(name, v string) string {
		p := filepath.Join(secretDir, name)
		if err := os.WriteFile(p, []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	env := []string{
		"REPLICATION_PASSWORD_FILE=" + secretFile("replication_password", testReplPW),
		"ROWHOOK_SOURCE_PASSWORD_FILE=" + secretFile("rowhook_source_password", testSourcePW),
		"ROWHOOK_WRITEBACK_PASSWORD_FILE=" + secretFile("rowhook_writeback_password", testWritebackPW),
		"ROWHOOK_GRANTS_SQL=mariadb/grants.sql", "ROWHOOK_WRITEBACK_GRANTS_SQL=mariadb/writeback-grants.sql",
	}
	// The entrypoint creates MARIADB_DATABASE (binlogged) before the init files.
	primary.Exec(t, "CREATE DATABASE vtiger")
	initDB(t, primary, append(env, "MARIADB_DATABASE=vtiger"),
		"compose/mariadb/10-primary.sh", "../internal/vtiger/schema.sql", "compose/mariadb/30-demo-custom-field.sql")
	initDB(t, replica, append(env, "PRIMARY_HOST=127.0.0.1", fmt.Sprintf("PRIMARY_PORT=%d", primary.Port)),
		"compose/mariadb/10-replica.sh")
	dbs := composeDBs{primary: primary, replica: replica, env: map[string]string{
		"REPLICATION_PASSWORD": testReplPW, "ROWHOOK_SOURCE_PASSWORD": testSourcePW, "ROWHOOK_WRITEBACK_PASSWORD": testWritebackPW,
	}}
	dbs.waitSync(t)
	return dbs
}

// waitSync waits until the replica has applied all the primary wrote.
func (d composeDBs) waitSync(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var gtid string
	if err := d.primary.DB().QueryRowContext(ctx, "SELECT @@gtid_binlog_pos").Scan(&gtid); err != nil {
		t.Fatal(err)
	}
	var ok int
	if err := d.replica.DB().QueryRowContext(ctx, "SELECT MASTER_GTID_WAIT(?, 60)", gtid).Scan(&ok); err != nil || ok != 0 {
		var status string
		d.replica.DB().QueryRow("SELECT CONCAT_WS(' | ', Slave_IO_Running, Slave_SQL_Running, Last_IO_Error, Last_SQL_Error) FROM information_schema.SLAVE_STATUS").Scan(&status)
		t.Fatalf("replica did not reach the primary's %s (wait %d, err %v); replica status: %s", gtid, ok, err, status)
	}
}

// TestComposeMariaDB_InitScripts checks what the compose stack's database
// setup gives rowhook: GTID replication from the primary's first
// transaction, the Vtiger schema and the accounts replicated, the grants
// rowhook needs, and the replica settings rowhook checks at start-up.
func TestComposeMariaDB_InitScripts(t *testing.T) {
	dbs := startComposeDBs(t)
	primary, replica := dbs.primary, dbs.replica
	const (
		replPW      = testReplPW
		sourcePW    = testSourcePW
		writebackPW = testWritebackPW
	)
	// The Vtiger statements the docs tell users to run, on the primary.
	initDB(t, primary, []string{"MARIADB_DATABASE=vtiger"}, "../internal/vtiger/create_potential.sql")

	dbs.waitSync(t)

	// Everything came through replication.
	var potentials, cf int
	if err := replica.DB().QueryRow("SELECT COUNT(*) FROM vtiger.vtiger_potential").Scan(&potentials); err != nil || potentials != 1 {
		t.Errorf("replica has %d opportunities (err %v), want the 1 create_potential.sql made", potentials, err)
	}
	if err := replica.DB().QueryRow("SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA='vtiger' AND TABLE_NAME='vtiger_potentialscf' AND COLUMN_NAME='cf_901'").Scan(&cf); err != nil || cf != 1 {
		t.Errorf("replica lacks vtiger_potentialscf.cf_901 (err %v)", err)
	}

	// rowhook's account, created on the primary, works on the replica with
	// grants.sql's privileges.
	rh := openAs(t, replica, "rowhook", sourcePW, "")
	rows, err := rh.Query("SHOW GRANTS")
	if err != nil {
		t.Fatalf("connect to the replica as rowhook: %v", err)
	}
	var grants []string
	for rows.Next() {
		var g string
		rows.Scan(&g)
		grants = append(grants, g)
	}
	rows.Close()
	all := strings.Join(grants, "\n")
	for _, want := range []string{"SELECT", "REPLICATION SLAVE", "BINLOG MONITOR"} {
		if !strings.Contains(all, want) {
			t.Errorf("rowhook's grants lack %s:\n%s", want, all)
		}
	}
	// The replica has the settings rowhook checks, and logs what it applies.
	for name, want := range map[string]string{
		"binlog_format": "ROW", "binlog_row_image": "FULL", "binlog_row_metadata": "FULL",
		"log_slave_updates": "1", "binlog_annotate_row_events": "1", "replicate_annotate_row_events": "1", "log_bin": "1",
	} {
		var got string
		if err := rh.QueryRow("SELECT @@GLOBAL." + name).Scan(&got); err != nil {
			t.Errorf("read @@%s as rowhook: %v", name, err)
		} else if got != want {
			t.Errorf("replica @@%s = %s, want %s", name, got, want)
		}
	}
	var replicaBinlog string
	if err := replica.DB().QueryRow("SELECT @@gtid_binlog_pos").Scan(&replicaBinlog); err != nil || !strings.HasPrefix(replicaBinlog, "0-1-") {
		t.Errorf("replica's binlog position %q (err %v): it should log the primary's transactions (0-1-N)", replicaBinlog, err)
	}

	// The writeback account may update the CRM's tables on the primary and
	// nothing more.
	wb := openAs(t, primary, "rowhook_writeback", writebackPW, "vtiger")
	if _, err := wb.Exec("UPDATE vtiger_potentialscf SET cf_901 = 'ERP-1001'"); err != nil {
		t.Errorf("writeback account cannot UPDATE vtiger_potentialscf: %v", err)
	}
	if _, err := wb.Exec("DELETE FROM vtiger_potentialscf"); err == nil {
		t.Error("writeback account may DELETE; it should only SELECT and UPDATE")
	}
	if _, err := openAs(t, primary, "repl", replPW, "").Exec("SELECT 1"); err != nil {
		t.Errorf("replication account: %v", err)
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if builtBin != "" {
		os.RemoveAll(filepath.Dir(builtBin))
	}
	os.Exit(code)
}
