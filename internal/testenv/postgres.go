//go:build unix

package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PGBinDirEnv names the environment variable that points at a directory
// holding the PostgreSQL server binaries initdb and postgres. Without it,
// StartPostgres looks in Debian's /usr/lib/postgresql/<major>/bin (highest
// major first), then in $PATH.
const PGBinDirEnv = "SLOGATE_PG_BIN_DIR"

// debianPGRoot is where Debian's postgresql-<major> packages put their
// server binaries, off $PATH.
const debianPGRoot = "/usr/lib/postgresql"

const (
	// pgUser is the superuser initdb creates, and pgDatabase the database
	// StartPostgres creates for it; URL points at both.
	pgUser     = "slogate"
	pgDatabase = "slogate"
	// pgConnectTimeout bounds one connection attempt of the readiness
	// poll and of the helpers' own statements.
	pgConnectTimeout = 2 * time.Second
	// pgSetupTimeout bounds initdb and the helpers' statements (CREATE
	// DATABASE copies a template: seconds on a busy machine).
	pgSetupTimeout = 2 * time.Minute
)

// Postgres is a running (or stopped) PostgreSQL server: a fresh cluster in
// its own temporary directory, owned by the test.
type Postgres struct {
	proc    *process
	dir     string              // temporary directory: data, socket, log
	dataDir string              // the cluster, made by initdb
	cred    *syscall.Credential // whom initdb and postgres run as; nil: as the test
	dbSeq   atomic.Int64        // names of NewDatabase
	durable bool                // fsync on (PostgresOptions.Durable)
}

// PostgresOptions configure StartPostgresWith.
type PostgresOptions struct {
	// Durable keeps PostgreSQL's defaults, fsync and full-page writes on,
	// as a production server runs: for benchmarks that compare stores.
	Durable bool
}

// StartPostgres initdb's a fresh cluster in a temporary directory and
// starts postgres on a free loopback port, and returns once it accepts
// connections and the database "slogate" exists (see URL). The server is
// stopped and its directory removed when the test ends.
//
// The binaries are Debian's (apt-get install postgresql), found as
// PGBinDirEnv says; a missing one fails the test. As root (CI), initdb and
// postgres run as the system user postgres, or nobody without it, since
// PostgreSQL refuses to run as root.
//
// postgres runs directly, not under pg_ctl, so Kill is a real crash that
// the next start recovers from. It runs with fsync=off for speed: a crash
// of postgres, which is what tests cause, leaves everything it wrote in
// the page cache, so acknowledged commits survive Kill and Restart; only a
// crash of the machine would lose them.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	return StartPostgresWith(t, PostgresOptions{})
}

// StartPostgresWith is StartPostgres with options.
func StartPostgresWith(t testing.TB, o PostgresOptions) *Postgres {
	t.Helper()
	initdb, postgres, err := findPostgres()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	cred, err := pgCredential()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	// Not t.TempDir: its directories are 0700 and owned by the test's
	// user, which the server's user cannot enter when that is root.
	dir, err := os.MkdirTemp("", "slogate-pg-")
	if err != nil {
		t.Fatalf("testenv: postgres directory: %v", err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("testenv: remove the postgres directory: %v", err)
		}
	})
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			t.Fatalf("testenv: postgres directory: %v", err)
		}
	}
	pg := &Postgres{
		proc: &process{
			name:    "postgres",
			bin:     postgres,
			logPath: filepath.Join(dir, "postgres.log"),
			// The C locale makes the messages that addrInUse looks for English.
			env: []string{"LC_ALL=C"},
		},
		dir:     dir,
		dataDir: filepath.Join(dir, "data"),
		cred:    cred,
		durable: o.Durable,
	}
	if err := pg.initdb(initdb); err != nil {
		t.Fatalf("testenv: %v\nlast lines of %s:\n%s", err, pg.proc.logPath, pg.proc.logTail(logTailLines))
	}
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("testenv: free port: %v", err)
		}
		pg.configure(port)
		if err = pg.start(); err == nil {
			err = pg.proc.waitReady(nil, readyTimeout)
		}
		if err == nil {
			break
		}
		pg.stop()
		if attempt < startAttempts && pg.addrInUse() {
			t.Logf("testenv: postgres: port %d was taken, trying another one", port)
			continue
		}
		t.Fatalf("testenv: %v\nlast lines of %s:\n%s", err, pg.proc.logPath, pg.proc.logTail(logTailLines))
	}
	// Before the removal of the directory (cleanups run last first).
	t.Cleanup(func() {
		pg.stop()
		if t.Failed() {
			t.Logf("testenv: last lines of the postgres log %s:\n%s", pg.proc.logPath, pg.proc.logTail(logTailLines))
		}
	})
	if err := pg.exec("postgres", "CREATE DATABASE "+pgx.Identifier{pgDatabase}.Sanitize()); err != nil {
		t.Fatalf("testenv: postgres: create database %s: %v", pgDatabase, err)
	}
	return pg
}

// URL is the URL of the database "slogate" as user "slogate", the
// cluster's superuser (no password), e.g.
// postgres://slogate@127.0.0.1:41234/slogate?sslmode=disable.
func (p *Postgres) URL() string { return p.dbURL(pgDatabase) }

// Addr is the server's host:port.
func (p *Postgres) Addr() string { return p.proc.addr }

// LogPath is the server's log file (initdb's output, then postgres's,
// across restarts).
func (p *Postgres) LogPath() string { return p.proc.logPath }

// DataDir is the cluster's data directory.
func (p *Postgres) DataDir() string { return p.dataDir }

// NewDatabase creates a database with a new name, for tests sharing one
// server, and returns its URL (same user as URL). It is dropped when t
// ends if the server is still running then.
func (p *Postgres) NewDatabase(t testing.TB) string {
	t.Helper()
	name := pgDatabaseName(p.dbSeq.Add(1), t.Name())
	ident := pgx.Identifier{name}.Sanitize()
	if err := p.exec("postgres", "CREATE DATABASE "+ident); err != nil {
		t.Fatalf("testenv: postgres: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		if r := p.proc.current(); r == nil || r.exited() {
			return // stopped or killed by the test: the cluster goes anyway
		}
		// FORCE ends the sessions a test left open.
		if err := p.exec("postgres", "DROP DATABASE "+ident+" WITH (FORCE)"); err != nil {
			t.Errorf("testenv: postgres: drop database %s: %v", name, err)
		}
	})
	return p.dbURL(name)
}

// Stop shuts the server down (fast shutdown: SIGINT, which ends the open
// sessions; SIGKILL after 10s) and waits for it to exit. Stopping a
// stopped server does nothing.
func (p *Postgres) Stop() { p.stop() }

// Kill ends the server with SIGKILL, like a crash: the postmaster and all
// its processes at once, and waits for them to be gone. Restart then runs
// crash recovery.
func (p *Postgres) Kill() { p.kill() }

// Restart stops the server if it runs and starts it again on the same port
// and data directory, waiting until it accepts connections (after crash
// recovery, if it was killed).
func (p *Postgres) Restart(t testing.TB) {
	t.Helper()
	p.stop()
	err := p.start()
	if err == nil {
		err = p.proc.waitReady(nil, readyTimeout)
	}
	if err != nil {
		t.Fatalf("testenv: restart: %v\nlast lines of %s:\n%s", err, p.proc.logPath, p.proc.logTail(logTailLines))
	}
}

// configure sets the command line for a port.
func (p *Postgres) configure(port int) {
	p.proc.addr = loopbackAddr(port)
	p.proc.args = []string{
		"-D", p.dataDir,
		"-p", strconv.Itoa(port),
		// The socket in our own directory: no clash with a system
		// server's /var/run/postgresql, nor between tests.
		"-k", p.dir,
		"-c", "listen_addresses=127.0.0.1",
		"-c", "max_connections=200",
		// For speed; safe against crashes of postgres, not of the
		// machine (see StartPostgres). synchronous_commit stays on: off,
		// a commit is acknowledged while its WAL is still in shared
		// memory, which Kill loses.
	}
	if !p.durable {
		p.proc.args = append(p.proc.args, "-c", "fsync=off", "-c", "full_page_writes=off")
	}
	p.proc.ready = func() error {
		ctx, cancel := context.WithTimeout(context.Background(), pgConnectTimeout)
		defer cancel()
		conn, err := p.connect(ctx, "postgres")
		if err != nil {
			return fmt.Errorf("connect to %s: %w", p.proc.addr, err)
		}
		return conn.Close(ctx)
	}
}

// initdb makes the cluster, its output going to the log file.
func (p *Postgres) initdb(bin string) error {
	logFile, err := os.OpenFile(p.proc.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("postgres: log file: %w", err)
	}
	defer logFile.Close()
	args := []string{
		"-D", p.dataDir,
		"-U", pgUser,
		"--auth=trust",
		"-E", "UTF8",
		"--locale=C",
		"--no-sync", // the cluster does not outlive the test
	}
	fmt.Fprintf(logFile, "=== testenv: %s %s\n", bin, strings.Join(args, " "))
	ctx, cancel := context.WithTimeout(context.Background(), pgSetupTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), p.proc.env...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = p.sysProcAttr()
	if err := cmd.Run(); err != nil {
		err = fmt.Errorf("initdb %s: %w", p.dataDir, err)
		if p.cred != nil {
			err = fmt.Errorf("%w (it runs as uid %d, which must be able to enter every parent of %s: point TMPDIR elsewhere if it cannot)", err, p.cred.Uid, p.dir)
		}
		return err
	}
	return nil
}

// start is process.start with the server's user: postgres in the
// background, not waiting for it.
func (p *Postgres) start() error {
	proc := p.proc
	proc.mu.Lock()
	defer proc.mu.Unlock()
	if proc.run != nil && !proc.run.exited() {
		return fmt.Errorf("postgres is already running (pid %d)", proc.run.cmd.Process.Pid)
	}
	logFile, err := os.OpenFile(proc.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("postgres: log file: %w", err)
	}
	// The child writes to its own copy of the descriptor.
	defer logFile.Close()
	fmt.Fprintf(logFile, "=== testenv: starting %s %s\n", proc.bin, strings.Join(proc.args, " "))
	cmd := exec.Command(proc.bin, proc.args...)
	cmd.Env = append(os.Environ(), proc.env...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = p.sysProcAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("postgres: start: %w", err)
	}
	r := &run{cmd: cmd, started: time.Now(), done: make(chan struct{})}
	go func() {
		r.err = cmd.Wait()
		close(r.done)
	}()
	proc.run = r
	return nil
}

// stop is process.stop with SIGINT, PostgreSQL's fast shutdown: SIGTERM is
// its smart shutdown, which waits for every client to disconnect. After
// stopGrace it kills the server.
func (p *Postgres) stop() {
	r := p.proc.current()
	if r == nil || r.exited() {
		return
	}
	_ = r.cmd.Process.Signal(syscall.SIGINT)
	t := time.NewTimer(stopGrace)
	defer t.Stop()
	select {
	case <-r.done:
	case <-t.C:
		p.kill()
	}
}

// kill is process.kill for a postmaster, whose children each make a
// session of their own: killing the process group leaves them running
// until they notice that the postmaster died, and a start meanwhile fails
// ("pre-existing shared memory block is still in use"). So the postmaster
// is stopped (it can fork no more), its children are listed, then all are
// killed, and kill returns once none is left.
func (p *Postgres) kill() {
	r := p.proc.current()
	if r == nil || r.exited() {
		return
	}
	pid := r.cmd.Process.Pid
	_ = syscall.Kill(pid, syscall.SIGSTOP)
	children := childPIDs(pid)
	killGroup(r.cmd.Process)
	for _, c := range children {
		_ = syscall.Kill(c, syscall.SIGKILL)
	}
	<-r.done
	// Only unreaped zombies can be left after SIGKILL, and those are
	// detached from the shared memory; this just waits for the exits.
	_ = Poll(stopGrace, func() error {
		for _, c := range children {
			if processAlive(c) {
				return fmt.Errorf("postgres process %d still running", c)
			}
		}
		return nil
	})
}

// childPIDs lists the children of process pid from /proc (none where
// there is no /proc).
func childPIDs(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, _, ok := procStat(child); ok && ppid == pid {
			pids = append(pids, child)
		}
	}
	return pids
}

// processAlive tells whether process pid exists and is not a zombie.
func processAlive(pid int) bool {
	_, state, ok := procStat(pid)
	return ok && state != 'Z' && state != 'X'
}

// procStat reads the parent and state of process pid from
// /proc/<pid>/stat: "pid (comm) state ppid ...", where comm may hold
// spaces and parentheses.
func procStat(pid int) (ppid int, state byte, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 || len(f[0]) != 1 {
		return 0, 0, false
	}
	ppid, err = strconv.Atoi(f[1])
	if err != nil {
		return 0, 0, false
	}
	return ppid, f[0][0], true
}

// sysProcAttr is childSysProcAttr (killed with the test binary, own process
// group) with the server's user. Go sets the parent death signal after the
// user, which would otherwise clear it.
func (p *Postgres) sysProcAttr() *syscall.SysProcAttr {
	attr := childSysProcAttr()
	if attr == nil {
		attr = &syscall.SysProcAttr{}
	}
	if p.cred != nil {
		c := *p.cred
		attr.Credential = &c
	}
	return attr
}

// addrInUse tells whether the last start failed because the port was
// taken ("could not bind IPv4 address ...: Address already in use").
func (p *Postgres) addrInUse() bool {
	b, err := readTail(p.proc.logPath, 64<<10)
	return err == nil && bytes.Contains(bytes.ToLower(b), []byte("address already in use"))
}

func (p *Postgres) dbURL(db string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User(pgUser),
		Host:     p.proc.addr,
		Path:     "/" + db,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

func (p *Postgres) connect(ctx context.Context, db string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(p.dbURL(db))
	if err != nil {
		return nil, err
	}
	cfg.ConnectTimeout = pgConnectTimeout
	return pgx.ConnectConfig(ctx, cfg)
}

// exec runs one statement in database db.
func (p *Postgres) exec(db, sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), pgSetupTimeout)
	defer cancel()
	conn, err := p.connect(ctx, db)
	if err != nil {
		return err
	}
	_, err = conn.Exec(ctx, sql)
	if cerr := conn.Close(ctx); err == nil {
		err = cerr
	}
	return err
}

// pgDatabaseName is a unique database name that says which test made it:
// t<seq>_<test name in lower case, other characters as _>, at most 63
// bytes (PostgreSQL's limit).
func pgDatabaseName(seq int64, testName string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "t%d_", seq)
	for _, r := range strings.ToLower(testName) {
		if b.Len() >= 63 {
			break
		}
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// pgCredential is whom initdb and postgres run as: nil (the test's user)
// unless that is root, which PostgreSQL refuses; then the system user
// postgres that Debian's package makes, or nobody.
func pgCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	var tried []string
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			tried = append(tried, fmt.Sprintf("%s: %v", name, err))
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err := errors.Join(err1, err2); err != nil {
			return nil, fmt.Errorf("user %s: %w", name, err)
		}
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
	}
	return nil, fmt.Errorf("running as root, and PostgreSQL refuses to: no user to run it as (%s); install Debian's postgresql package, which makes the user postgres", strings.Join(tried, "; "))
}

// findPostgres returns the paths of initdb and postgres from the same
// installation: in $SLOGATE_PG_BIN_DIR if set, else in the highest major
// of Debian's /usr/lib/postgresql/<major>/bin, else in $PATH.
func findPostgres() (initdb, postgres string, err error) {
	return findPostgresIn(debianPGRoot)
}

// findPostgresIn is findPostgres with Debian's directories under root.
func findPostgresIn(root string) (initdb, postgres string, err error) {
	if dir := os.Getenv(PGBinDirEnv); dir != "" {
		if hasPGServer(dir) {
			return filepath.Join(dir, "initdb"), filepath.Join(dir, "postgres"), nil
		}
		return "", "", fmt.Errorf("%s=%s holds no executable initdb and postgres: point it at the bin directory of a PostgreSQL installation, or unset it to use Debian's (apt-get install postgresql)", PGBinDirEnv, dir)
	}
	if dir := debianPGBinDir(root); dir != "" {
		return filepath.Join(dir, "initdb"), filepath.Join(dir, "postgres"), nil
	}
	initdb, err1 := exec.LookPath("initdb")
	postgres, err2 := exec.LookPath("postgres")
	if err1 == nil && err2 == nil {
		return initdb, postgres, nil
	}
	return "", "", fmt.Errorf("PostgreSQL server binaries initdb and postgres not found (looked in %s/<major>/bin and $PATH): install Debian's package (apt-get install postgresql; .ci/run does), or set %s to the directory holding them", root, PGBinDirEnv)
}

// debianPGBinDir returns root/<major>/bin of the highest major that has
// initdb and postgres, or "".
func debianPGBinDir(root string) string {
	entries, err := os.ReadDir(root)
	if err != nil {
		return ""
	}
	var majors []string
	for _, e := range entries {
		if _, ok := pgMajor(e.Name()); ok {
			majors = append(majors, e.Name())
		}
	}
	sort.Slice(majors, func(i, j int) bool { // highest first
		a, _ := pgMajor(majors[i])
		b, _ := pgMajor(majors[j])
		return a[0] > b[0] || a[0] == b[0] && a[1] > b[1]
	})
	for _, m := range majors {
		if dir := filepath.Join(root, m, "bin"); hasPGServer(dir) {
			return dir
		}
	}
	return ""
}

// pgMajor parses a major version as Debian names its directories: "15",
// or "9.6" before PostgreSQL 10.
func pgMajor(s string) ([2]int, bool) {
	maj, minor, _ := strings.Cut(s, ".")
	a, err := strconv.Atoi(maj)
	if err != nil || a < 0 {
		return [2]int{}, false
	}
	b := 0
	if minor != "" {
		if b, err = strconv.Atoi(minor); err != nil || b < 0 {
			return [2]int{}, false
		}
	}
	return [2]int{a, b}, true
}

func hasPGServer(dir string) bool {
	return isExecutable(filepath.Join(dir, "initdb")) && isExecutable(filepath.Join(dir, "postgres"))
}
