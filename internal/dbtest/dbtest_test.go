package dbtest

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
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
