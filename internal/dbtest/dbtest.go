// Package dbtest gives tests a fresh, empty database of each configured
// dialect: SQLite always (a file in the test's temporary directory),
// PostgreSQL when EXACTLY_TEST_POSTGRES_DSN is set, MariaDB/MySQL when
// EXACTLY_TEST_MYSQL_DSN is set. The DSNs name a server and a user that
// may create databases; each Open creates its own database on it and
// drops it when the test ends, so tests run in parallel without seeing
// each other's tables. `.ci/run` starts the servers (integration/db) and
// sets both variables; locally, eval "$(make -s db-up)" does.
package dbtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/exactly-stream/exactly/sqldb"
)

// The environment variables that configure the servers.
const (
	EnvPostgres = "EXACTLY_TEST_POSTGRES_DSN" // e.g. postgres://postgres@127.0.0.1:15432/postgres?sslmode=disable
	EnvMySQL    = "EXACTLY_TEST_MYSQL_DSN"    // e.g. root@tcp(127.0.0.1:13306)/
)

// DB is a fresh database for one test.
type DB struct {
	Dialect sqldb.Dialect
	DSN     string // opens this database (another process may use it)
	*sql.DB
}

// Configured returns the dialects a test can use here: SQLite, then
// PostgreSQL and MySQL when their variables are set.
func Configured() []sqldb.Dialect {
	ds := []sqldb.Dialect{sqldb.SQLite}
	if os.Getenv(EnvPostgres) != "" {
		ds = append(ds, sqldb.Postgres)
	}
	if os.Getenv(EnvMySQL) != "" {
		ds = append(ds, sqldb.MySQL)
	}
	return ds
}

// Servers returns the configured database servers (PostgreSQL, MySQL),
// for a test of what only a server does; it skips t when none is
// configured.
func Servers(t testing.TB) []sqldb.Dialect {
	t.Helper()
	var ds []sqldb.Dialect
	for _, d := range Configured() {
		if d != sqldb.SQLite {
			ds = append(ds, d)
		}
	}
	if len(ds) == 0 {
		t.Skipf("no database server configured (%s, %s)", EnvPostgres, EnvMySQL)
	}
	return ds
}

// Each runs f as a subtest, named after the dialect, on a fresh database
// of every configured dialect.
func Each(t *testing.T, f func(t *testing.T, db *DB)) {
	t.Helper()
	for _, d := range Configured() {
		t.Run(d.String(), func(t *testing.T) { f(t, Open(t, d)) })
	}
}

// Open returns a fresh, empty database of dialect d, dropped when the test
// ends. It skips the test when d's server is not configured (SQLite always
// is).
func Open(t testing.TB, d sqldb.Dialect) *DB {
	t.Helper()
	dsn, cleanup, err := create(t, d)
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	db, err := sqldb.Open(d, dsn)
	if err != nil {
		cleanup()
		t.Fatalf("dbtest: %v", err)
	}
	t.Cleanup(func() {
		db.Close()
		cleanup()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		t.Fatalf("dbtest: connecting to the %s test database: %v", d, err)
	}
	return &DB{Dialect: d, DSN: dsn, DB: db}
}

// create makes the database and returns its DSN and a function that drops
// it.
func create(t testing.TB, d sqldb.Dialect) (dsn string, cleanup func(), err error) {
	if d == sqldb.SQLite {
		return "file:" + filepath.Join(t.TempDir(), "test.db"), func() {}, nil
	}
	env := envVar(d)
	admin := os.Getenv(env)
	if admin == "" {
		t.Skipf("no %s server configured (set %s: eval \"$(make -s db-up)\")", d, env)
	}
	name := "exactly_test_" + randomHex()
	switch d {
	case sqldb.Postgres:
		u, err := url.Parse(admin)
		if err != nil {
			return "", nil, fmt.Errorf("%s: %w", env, err)
		}
		u.Path = "/" + name
		dsn = u.String()
	case sqldb.MySQL:
		cfg, err := mysql.ParseDSN(admin)
		if err != nil {
			return "", nil, fmt.Errorf("%s: %w", env, err)
		}
		cfg.DBName = name
		dsn = cfg.FormatDSN()
	}
	if err := withAdmin(d, admin, func(ctx context.Context, db *sql.DB) error {
		_, err := db.ExecContext(ctx, "CREATE DATABASE "+name)
		return err
	}); err != nil {
		return "", nil, fmt.Errorf("creating the %s test database: %w", d, err)
	}
	return dsn, func() {
		if err := withAdmin(d, admin, func(ctx context.Context, db *sql.DB) error {
			return drop(ctx, d, db, name)
		}); err != nil {
			t.Logf("dbtest: dropping %s: %v", name, err)
		}
	}, nil
}

// envVar names the variable that configures d's server.
func envVar(d sqldb.Dialect) string {
	if d == sqldb.MySQL {
		return EnvMySQL
	}
	return EnvPostgres
}

// withAdmin runs f on a connection pool to the server's administrative
// DSN, with a deadline.
func withAdmin(d sqldb.Dialect, dsn string, f func(ctx context.Context, db *sql.DB) error) error {
	db, err := sqldb.Open(d, dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return f(ctx, db)
}

// drop drops database name, first ending the connections other clients
// (child processes a test killed or froze, say) left open on it: an open
// transaction would hold MariaDB's DROP DATABASE on a metadata lock, and
// PostgreSQL refuses to drop a database anyone is connected to.
func drop(ctx context.Context, d sqldb.Dialect, db *sql.DB, name string) error {
	if d == sqldb.Postgres {
		_, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		return err
	}
	rows, err := db.QueryContext(ctx,
		"SELECT id FROM information_schema.processlist WHERE db = ? AND id <> CONNECTION_ID()", name)
	if err != nil {
		return fmt.Errorf("listing the connections to %s: %w", name, err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		ids = append(ids, id)
	}
	if err := rows.Close(); err != nil {
		return err
	}
	for _, id := range ids {
		// Error 1094 (unknown thread): it ended meanwhile.
		if _, err := db.ExecContext(ctx, fmt.Sprintf("KILL CONNECTION %d", id)); err != nil && !isUnknownThread(err) {
			return fmt.Errorf("ending connection %d to %s: %w", id, name, err)
		}
	}
	_, err = db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name)
	return err
}

func isUnknownThread(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == 1094
}

func randomHex() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
