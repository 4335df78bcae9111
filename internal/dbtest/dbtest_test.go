package dbtest

import (
	"context"
	"database/sql"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/exactly-stream/exactly/sqldb"
)

// TestEachIsFreshAndWritable: every configured database starts empty and
// takes a table, rows and a transaction.
func TestEachIsFreshAndWritable(t *testing.T) {
	Each(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		_, err := db.ExecContext(ctx, "CREATE TABLE t (k INT PRIMARY KEY, v VARCHAR(20))")
		require.NoError(t, err, "a fresh database has no table t")
		tx, err := db.BeginTx(ctx, nil)
		require.NoError(t, err)
		_, err = tx.ExecContext(ctx, db.Dialect.Rebind("INSERT INTO t (k, v) VALUES (?, ?)"), 1, "one")
		require.NoError(t, err)
		require.NoError(t, tx.Commit())
		var v string
		require.NoError(t, db.QueryRowContext(ctx, db.Dialect.Rebind("SELECT v FROM t WHERE k = ?"), 1).Scan(&v))
		require.Equal(t, "one", v)
	})
}

// TestCleanupDropsTheDatabase: when a test ends its database is gone, also
// when another client (a killed or frozen child process, say) still holds
// a connection with a transaction open on one of its tables. Such a
// connection held MariaDB's DROP DATABASE on a metadata lock until the
// drop's deadline, leaving the database behind; PostgreSQL refuses to
// drop a database others are connected to unless told WITH (FORCE).
func TestCleanupDropsTheDatabase(t *testing.T) {
	servers := Configured()[1:] // SQLite's file goes with the test's temporary directory
	if len(servers) == 0 {
		t.Skipf("no database server configured (set %s or %s)", EnvPostgres, EnvMySQL)
	}
	for _, d := range servers {
		t.Run(d.String(), func(t *testing.T) { checkDropped(t, d) })
	}
}

// checkDropped opens a database in a subtest, leaves a transaction of
// another client open on it, and checks that the database is gone once
// the subtest has ended.
func checkDropped(t *testing.T, d sqldb.Dialect) {
	ctx := context.Background()
	var name string
	var other *sql.DB
	t.Run("open", func(t *testing.T) {
		db := Open(t, d)
		require.NoError(t, db.QueryRowContext(ctx, currentDatabase[d]).Scan(&name))
		_, err := db.ExecContext(ctx, "CREATE TABLE t (k INT PRIMARY KEY)")
		require.NoError(t, err)
		other, err = sqldb.Open(d, db.DSN)
		require.NoError(t, err)
		tx, err := other.BeginTx(ctx, nil)
		require.NoError(t, err)
		_, err = tx.ExecContext(ctx, "INSERT INTO t (k) VALUES (1)")
		require.NoError(t, err)
	})
	if other != nil {
		defer other.Close() // only now: the drop ran with its transaction open
	}
	require.NotEmpty(t, name)
	admin, err := sqldb.Open(d, os.Getenv(envVar(d)))
	require.NoError(t, err)
	defer admin.Close()
	var n int
	require.NoError(t, admin.QueryRowContext(ctx, d.Rebind(databaseExists[d]), name).Scan(&n))
	require.Zero(t, n, "database %s left behind", name)
}

var currentDatabase = map[sqldb.Dialect]string{
	sqldb.Postgres: "SELECT current_database()",
	sqldb.MySQL:    "SELECT DATABASE()",
}

var databaseExists = map[sqldb.Dialect]string{
	sqldb.Postgres: "SELECT count(*) FROM pg_database WHERE datname = ?",
	sqldb.MySQL:    "SELECT count(*) FROM information_schema.schemata WHERE schema_name = ?",
}
