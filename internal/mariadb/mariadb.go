// Package mariadb starts private MariaDB servers: a fresh data directory in a
// temp dir, mariadbd on a free loopback port with the binlog settings rowhook
// needs (ROW format, FULL row image, FULL row metadata, GTID). It can also
// start a primary + replica pair, because rowhook reads a replica's binlog in
// production.
//
// `rowhook demo` and `rowhook bench` use it directly; tests use it through
// internal/mariadbtest, which adds TestMain wiring and skips database tests
// where mariadbd is missing. It does not import package testing, so the
// rowhook binary does not link it.
package mariadb

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Options tunes a private server. The zero value is a standalone primary.
type Options struct {
	// ServerID is the server's --server-id; 0 picks 1.
	ServerID uint32
	// Replica adds --log-slave-updates and --read-only=OFF replica settings.
	Replica bool
	// ExtraArgs are appended to the mariadbd command line (for example
	// "--binlog-row-metadata=MINIMAL" to test rowhook's start-up checks).
	ExtraArgs []string
	// Logf receives progress lines; nil is silent.
	Logf func(format string, args ...any)
}

// TB is the part of testing.TB the test helpers use (Exec, NewSchema): a
// local interface, so this package does not import testing.
type TB interface {
	Helper()
	Name() string
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
	Skip(args ...any)
	Cleanup(func())
}

// RequireEnv is the environment variable that turns "no server, skip" into a
// failure: CI sets it, so every database test runs there.
const RequireEnv = "ROWHOOK_REQUIRE_MARIADB"

// Absent ends a test that needs a server where none could be started (err
// says why): a skip with one clear line, or a failure under RequireEnv.
func Absent(tb TB, err error) {
	tb.Helper()
	if os.Getenv(RequireEnv) != "" {
		tb.Fatalf("%v (%s is set: database tests must run)", err, RequireEnv)
	}
	tb.Skip(fmt.Sprintf("no MariaDB server: %v", err))
}

// errNoServer is Absent's reason for a nil *Server (its package's TestMain
// could not start one).
var errNoServer = errors.New("mariadb: this package's server did not start (mariadbd missing?)")

// Server is a running private mariadbd.
type Server struct {
	// Host and Port are where the server listens (loopback, TCP).
	Host string
	Port int
	// Dir holds the data directory, socket, binlogs and error log.
	Dir string
	// ServerID is the server's --server-id.
	ServerID uint32

	opts    Options
	cmd     *exec.Cmd
	exited  chan struct{}
	admin   *sql.DB
	schemas atomic.Int64
	mu      sync.Mutex
	stopped bool
}

// Binary is the mariadbd executable tests use; ROWHOOK_MARIADBD overrides it.
func Binary() (string, error) {
	if p := os.Getenv("ROWHOOK_MARIADBD"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("mariadbd not found: ROWHOOK_MARIADBD=%s: %w", p, err)
		}
		return p, nil
	}
	for _, name := range []string{"mariadbd", "mysqld"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
		for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/usr/libexec"} {
			p := filepath.Join(dir, name)
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
		}
	}
	return "", errors.New("mariadbd not found: install it with 'apt-get install -y mariadb-server' (or set ROWHOOK_MARIADBD)")
}

func installDB() (string, error) {
	for _, name := range []string{"mariadb-install-db", "mysql_install_db"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("mariadb-install-db not found: install it with 'apt-get install -y mariadb-server'")
}

// Start creates a data directory under os.TempDir and starts mariadbd on a
// free loopback port. Call Stop when done.
func Start(opts Options) (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	install, err := installDB()
	if err != nil {
		return nil, err
	}
	if opts.ServerID == 0 {
		opts.ServerID = 1
	}
	dir, err := os.MkdirTemp("", "rowhook-mariadb-")
	if err != nil {
		return nil, fmt.Errorf("mariadb: temp dir: %w", err)
	}
	data := filepath.Join(dir, "data")
	// Each server gets its own tmpdir: bootstraps running at the same time
	// (test packages run in parallel) otherwise collide on /tmp/#sql-temptable-*
	// files and fail.
	tmp := filepath.Join(dir, "tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("mariadb: %w", err)
	}
	args := []string{"--no-defaults", "--datadir=" + data, "--tmpdir=" + tmp, "--auth-root-authentication-method=normal", "--skip-test-db"}
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	out, err := exec.Command(install, args...).CombinedOutput()
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("mariadb: %s: %w\n%s", install, err, tail(out, 2000))
	}
	// The init file makes root reachable over TCP from 127.0.0.1, which is
	// how rowhook and the binlog syncer connect.
	initFile := filepath.Join(dir, "init.sql")
	// SQL_LOG_BIN=0 keeps these out of the binlog: otherwise each server
	// would own GTIDs in domain 0 and a replica would refuse its primary's.
	initSQL := "SET SQL_LOG_BIN=0;\n" +
		"CREATE USER IF NOT EXISTS 'root'@'127.0.0.1';\n" +
		"GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;\n"
	if err := os.WriteFile(initFile, []byte(initSQL), 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("mariadb: %w", err)
	}
	s := &Server{Host: "127.0.0.1", Dir: dir, ServerID: opts.ServerID, opts: opts}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		s.Port = port
		if lastErr = s.launch(bin, data, initFile); lastErr == nil {
			return s, nil
		}
		s.logf("mariadb: start on port %d: %v (retrying)", port, lastErr)
	}
	os.RemoveAll(dir)
	return nil, lastErr
}

func (s *Server) launch(bin, data, initFile string) error {
	args := []string{
		"--no-defaults",
		"--datadir=" + data,
		"--socket=" + filepath.Join(s.Dir, "mysqld.sock"),
		"--pid-file=" + filepath.Join(s.Dir, "mysqld.pid"),
		"--log-error=" + filepath.Join(s.Dir, "error.log"),
		"--init-file=" + initFile,
		"--bind-address=127.0.0.1",
		fmt.Sprintf("--port=%d", s.Port),
		fmt.Sprintf("--server-id=%d", s.ServerID),
		"--log-bin=" + filepath.Join(s.Dir, "binlog", "mysql-bin"),
		"--binlog-format=ROW",
		"--binlog-row-image=FULL",
		"--binlog-row-metadata=FULL",
		"--binlog-annotate-row-events=ON",
		"--gtid-strict-mode=ON",
		"--skip-name-resolve",
		"--character-set-server=utf8mb4",
		"--collation-server=utf8mb4_general_ci",
		// Speed: tests need durability against a killed client, not a
		// killed kernel.
		"--innodb-buffer-pool-size=64M",
		"--innodb-log-file-size=32M",
		"--innodb-flush-log-at-trx-commit=2",
		"--innodb-doublewrite=0",
		"--sync-binlog=0",
		"--performance-schema=OFF",
		"--tmpdir=" + filepath.Join(s.Dir, "tmp"),
		"--max-connections=200",
	}
	if s.opts.Replica {
		args = append(args, "--log-slave-updates=ON", "--relay-log="+filepath.Join(s.Dir, "binlog", "relay-bin"))
	}
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	args = append(args, s.opts.ExtraArgs...)
	if err := os.MkdirAll(filepath.Join(s.Dir, "binlog"), 0o755); err != nil {
		return err
	}
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("mariadb: start %s: %w", bin, err)
	}
	s.cmd = cmd
	s.exited = make(chan struct{})
	go func() { _ = cmd.Wait(); close(s.exited) }()

	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-s.exited:
			return fmt.Errorf("mariadb: mariadbd exited during start-up: %s\n%s", stderr.String(), s.ErrorLog(3000))
		default:
		}
		db, err := sql.Open("mysql", s.DSN(""))
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			err = db.PingContext(ctx)
			cancel()
			if err == nil {
				db.SetMaxOpenConns(4)
				s.admin = db
				s.logf("mariadb: mariadbd (server-id %d) ready on %s:%d, dir %s", s.ServerID, s.Host, s.Port, s.Dir)
				return nil
			}
			db.Close()
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-s.exited
			return fmt.Errorf("mariadb: mariadbd not ready after 60s: %v\n%s", err, s.ErrorLog(3000))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// DSN is a go-sql-driver/mysql DSN for root on the given database ("" for none).
func (s *Server) DSN(database string) string {
	cfg := mysql.NewConfig()
	cfg.User = "root"
	cfg.Net = "tcp"
	cfg.Addr = fmt.Sprintf("%s:%d", s.Host, s.Port)
	cfg.DBName = database
	cfg.MultiStatements = true
	cfg.InterpolateParams = false
	cfg.Params = map[string]string{"time_zone": "'+00:00'"}
	return cfg.FormatDSN()
}

// URL is the server in rowhook's source form: mysql://root@127.0.0.1:PORT/.
func (s *Server) URL() string {
	return fmt.Sprintf("mysql://root@%s:%d/", s.Host, s.Port)
}

// DB is an administrative connection pool (root, no default database).
func (s *Server) DB() *sql.DB { return s.admin }

// Exec runs statements as root and fails the test on error.
func (s *Server) Exec(tb TB, query string, args ...any) {
	tb.Helper()
	if s == nil {
		Absent(tb, errNoServer)
		return
	}
	if _, err := s.admin.Exec(query, args...); err != nil {
		tb.Fatalf("exec %q: %v", query, err)
	}
}

// ErrorLog returns up to max bytes from the end of the server's error log.
func (s *Server) ErrorLog(max int) string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "error.log"))
	return string(tail(b, max))
}

var schemaSafe = regexp.MustCompile(`[^a-z0-9_]+`)

// NewSchema creates a fresh database named after the test and returns its name
// and a connection pool using it as the default database. Both are dropped
// when the test ends.
func (s *Server) NewSchema(tb TB) (string, *sql.DB) {
	tb.Helper()
	if s == nil {
		Absent(tb, errNoServer)
		return "", nil
	}
	name := strings.ToLower(tb.Name())
	name = schemaSafe.ReplaceAllString(name, "_")
	if len(name) > 40 {
		name = name[:40]
	}
	name = fmt.Sprintf("t%d_%s", s.schemas.Add(1), strings.Trim(name, "_"))
	if _, err := s.admin.Exec("CREATE DATABASE `" + name + "` CHARACTER SET utf8mb4"); err != nil {
		tb.Fatalf("create schema %s: %v", name, err)
	}
	db, err := sql.Open("mysql", s.DSN(name))
	if err != nil {
		tb.Fatalf("open %s: %v", name, err)
	}
	tb.Cleanup(func() {
		db.Close()
		if _, err := s.admin.Exec("DROP DATABASE IF EXISTS `" + name + "`"); err != nil {
			tb.Logf("drop schema %s: %v", name, err)
		}
	})
	return name, db
}

// Kill sends SIGKILL to mariadbd and waits for it to exit; Restart brings it
// back on the same port and data directory.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
	if s.admin != nil {
		s.admin.Close()
		s.admin = nil
	}
}

// Restart starts mariadbd again after Kill, on the same port and data.
func (s *Server) Restart() error {
	bin, err := Binary()
	if err != nil {
		return err
	}
	return s.launch(bin, filepath.Join(s.Dir, "data"), filepath.Join(s.Dir, "init.sql"))
}

// RestartWith shuts mariadbd down cleanly (SIGTERM) and starts it again on
// the same port and data with extraArgs appended to its options, which stay
// for later restarts: to change a setting under a running client, as an
// operator editing my.cnf and restarting would.
func (s *Server) RestartWith(extraArgs ...string) error {
	s.mu.Lock()
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(30 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
	}
	if s.admin != nil {
		s.admin.Close()
		s.admin = nil
	}
	s.opts.ExtraArgs = append(append([]string(nil), s.opts.ExtraArgs...), extraArgs...)
	s.mu.Unlock()
	return s.Restart()
}

// Stop shuts mariadbd down and removes its directory.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil
	}
	s.stopped = true
	if s.admin != nil {
		s.admin.Close()
	}
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(30 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
	}
	if os.Getenv("ROWHOOK_KEEP_MARIADB") != "" {
		return nil
	}
	return os.RemoveAll(s.Dir)
}

func (s *Server) logf(format string, args ...any) {
	if s.opts.Logf != nil {
		s.opts.Logf(format, args...)
	}
}

// Pair is a primary and a replica replicating from it with GTID; the replica
// writes what it applies to its own binlog (--log-slave-updates).
type Pair struct {
	Primary *Server
	Replica *Server
}

// StartPair starts a primary (server-id 1) and a replica (server-id 2) and
// connects the replica to the primary.
func StartPair(opts Options) (*Pair, error) {
	po := opts
	po.ServerID = 1
	po.Replica = false
	primary, err := Start(po)
	if err != nil {
		return nil, err
	}
	ro := opts
	ro.ServerID = 2
	ro.Replica = true
	replica, err := Start(ro)
	if err != nil {
		primary.Stop()
		return nil, err
	}
	p := &Pair{Primary: primary, Replica: replica}
	change := fmt.Sprintf("CHANGE MASTER TO MASTER_HOST='%s', MASTER_PORT=%d, MASTER_USER='root', MASTER_PASSWORD='', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1", primary.Host, primary.Port)
	if _, err := replica.admin.Exec(change); err != nil {
		p.Stop()
		return nil, fmt.Errorf("mariadb: %s: %w", change, err)
	}
	if _, err := replica.admin.Exec("START SLAVE"); err != nil {
		p.Stop()
		return nil, fmt.Errorf("mariadb: start slave: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.WaitSync(ctx); err != nil {
		p.Stop()
		return nil, err
	}
	return p, nil
}

// WaitSync waits until the replica has applied everything the primary has
// written so far (MASTER_GTID_WAIT on the primary's gtid_binlog_pos).
func (p *Pair) WaitSync(ctx context.Context) error {
	var pos string
	if err := p.Primary.admin.QueryRowContext(ctx, "SELECT @@gtid_binlog_pos").Scan(&pos); err != nil {
		return fmt.Errorf("mariadb: primary gtid_binlog_pos: %w", err)
	}
	timeout := 30.0
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl).Seconds()
	}
	var res int
	if err := p.Replica.admin.QueryRowContext(ctx, "SELECT MASTER_GTID_WAIT(?, ?)", pos, timeout).Scan(&res); err != nil {
		return fmt.Errorf("mariadb: master_gtid_wait(%s): %w", pos, err)
	}
	if res != 0 {
		var at string
		_ = p.Replica.admin.QueryRowContext(ctx, "SELECT @@gtid_slave_pos").Scan(&at)
		return fmt.Errorf("mariadb: replica did not reach %s (at %s)", pos, at)
	}
	return nil
}

// Stop stops both servers.
func (p *Pair) Stop() {
	if p.Replica != nil {
		if p.Replica.admin != nil {
			p.Replica.admin.Exec("STOP SLAVE")
		}
		p.Replica.Stop()
	}
	if p.Primary != nil {
		p.Primary.Stop()
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("mariadb: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func tail(b []byte, max int) []byte {
	if len(b) > max {
		return b[len(b)-max:]
	}
	return b
}
