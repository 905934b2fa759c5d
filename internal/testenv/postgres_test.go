//go:build unix

package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func pgConnect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect to %s: %v", url, err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

func pgExec(t *testing.T, conn *pgx.Conn, sql string, args ...any) {
	t.Helper()
	if _, err := conn.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func pgCount(t *testing.T, conn *pgx.Conn, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := conn.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func TestPostgresKillRestartKeepsCommittedRows(t *testing.T) {
	t.Parallel()
	start := time.Now()
	pg := StartPostgres(t)
	t.Logf("StartPostgres took %s", time.Since(start).Round(time.Millisecond))

	if want := "postgres://slogate@" + pg.Addr() + "/slogate?sslmode=disable"; pg.URL() != want {
		t.Errorf("URL() = %q, want %q", pg.URL(), want)
	}
	conn := pgConnect(t, pg.URL())
	var user, db string
	if err := conn.QueryRow(context.Background(), "SELECT current_user, current_database()").Scan(&user, &db); err != nil {
		t.Fatal(err)
	}
	if user != "slogate" || db != "slogate" {
		t.Errorf("connected as %s to %s, want slogate to slogate", user, db)
	}
	pgExec(t, conn, "CREATE TABLE kv (k text PRIMARY KEY, v int NOT NULL)")
	pgExec(t, conn, "INSERT INTO kv VALUES ('a', 1)")
	// Many small commits, the last one just before the crash.
	for i := range 200 {
		pgExec(t, conn, "INSERT INTO kv VALUES ($1, $2)", fmt.Sprintf("n%d", i), i)
	}

	postmaster := pg.proc.current().cmd.Process.Pid
	children := childPIDs(postmaster)
	if len(children) < 3 { // checkpointer, background writer, wal writer, the test's backend, ...
		t.Errorf("postmaster %d has children %v, want its processes", postmaster, children)
	}
	pg.Kill()
	for _, c := range append(children, postmaster) {
		if processAlive(c) {
			t.Errorf("process %d of the server still runs after Kill", c)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := conn.Exec(ctx, "SELECT 1"); err == nil {
		t.Fatal("the connection still works after Kill")
	}
	if c, err := pgx.Connect(ctx, pg.URL()); err == nil {
		_ = c.Close(ctx)
		t.Fatal("a new connection works after Kill")
	}

	pg.Restart(t)
	conn = pgConnect(t, pg.URL())
	var v int
	if err := conn.QueryRow(context.Background(), "SELECT v FROM kv WHERE k = 'a'").Scan(&v); err != nil {
		t.Fatalf("the row committed before Kill: %v", err)
	}
	if v != 1 {
		t.Errorf("v = %d, want 1", v)
	}
	if n := pgCount(t, conn, "SELECT count(*) FROM kv"); n != 201 {
		t.Errorf("%d rows after Kill and Restart, want 201", n)
	}
	if b, err := os.ReadFile(pg.LogPath()); err != nil || !strings.Contains(string(b), "database system was interrupted") {
		t.Errorf("no crash recovery in the log %s (%v)", pg.LogPath(), err)
	}

	// A clean stop and a start again, with the session of the test open.
	pg.Stop()
	pg.Restart(t)
	conn = pgConnect(t, pg.URL())
	if n := pgCount(t, conn, "SELECT count(*) FROM kv"); n != 201 {
		t.Errorf("%d rows after Stop and Restart, want 201", n)
	}
}

func TestPostgresNewDatabase(t *testing.T) {
	t.Parallel()
	pg := StartPostgres(t)
	admin := pgConnect(t, pg.URL())

	var first string
	t.Run("first", func(t *testing.T) {
		url := pg.NewDatabase(t)
		conn := pgConnect(t, url)
		if err := conn.QueryRow(context.Background(), "SELECT current_database()").Scan(&first); err != nil {
			t.Fatal(err)
		}
		if first == "slogate" || !strings.Contains(first, "first") {
			t.Errorf("database %q: want a new one named after the test", first)
		}
		pgExec(t, conn, "CREATE TABLE only_here (x int)")

		other := pgConnect(t, pg.NewDatabase(t))
		if n := pgCount(t, other, "SELECT count(*) FROM pg_tables WHERE tablename = 'only_here'"); n != 0 {
			t.Errorf("the table of one database is in another")
		}
		if n := pgCount(t, admin, "SELECT count(*) FROM pg_tables WHERE tablename = 'only_here'"); n != 0 {
			t.Errorf("the table of a new database is in slogate")
		}
		// The session stays open: the drop at the end of the test ends it.
	})
	if n := pgCount(t, admin, "SELECT count(*) FROM pg_database WHERE datname = $1", first); n != 0 {
		t.Errorf("database %s still there after its test", first)
	}
}

func TestPostgresDatabaseName(t *testing.T) {
	got := pgDatabaseName(7, "TestStore/Lease-Expiry#01")
	if want := "t7_teststore_lease_expiry_01"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if long := pgDatabaseName(123, strings.Repeat("x", 100)); len(long) != 63 {
		t.Errorf("%d bytes, want PostgreSQL's limit of 63", len(long))
	}
}

func TestPostgresFindsHighestDebianMajor(t *testing.T) {
	root := t.TempDir()
	for _, m := range []string{"9.6", "10", "15", "16", "cluster"} {
		bin := filepath.Join(root, m, "bin")
		if err := os.MkdirAll(bin, 0o755); err != nil {
			t.Fatal(err)
		}
		if m == "16" {
			continue // a client-only install: no server binaries
		}
		for _, name := range []string{"initdb", "postgres"} {
			if err := os.WriteFile(filepath.Join(bin, name), nil, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got, want := debianPGBinDir(root), filepath.Join(root, "15", "bin"); got != want {
		t.Errorf("debianPGBinDir = %s, want %s", got, want)
	}
	if got := debianPGBinDir(filepath.Join(root, "none")); got != "" {
		t.Errorf("debianPGBinDir of a missing root = %q, want none", got)
	}
}

func TestPostgresBinDirEnv(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(PGBinDirEnv, dir)
	if _, _, err := findPostgres(); err == nil || !strings.Contains(err.Error(), PGBinDirEnv) {
		t.Errorf("an empty %s: err = %v, want one naming it", PGBinDirEnv, err)
	}
	for _, name := range []string{"initdb", "postgres"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	initdb, postgres, err := findPostgres()
	if err != nil || initdb != filepath.Join(dir, "initdb") || postgres != filepath.Join(dir, "postgres") {
		t.Errorf("findPostgres = %s, %s, %v; want the ones in %s", initdb, postgres, err, dir)
	}
}

func TestPostgresMissingBinariesSayWhatToInstall(t *testing.T) {
	t.Setenv(PGBinDirEnv, "")
	t.Setenv("PATH", t.TempDir())
	_, _, err := findPostgresIn(filepath.Join(t.TempDir(), "none"))
	if err == nil || !strings.Contains(err.Error(), "apt-get install postgresql") {
		t.Errorf("err = %v, want one saying apt-get install postgresql", err)
	}
}
