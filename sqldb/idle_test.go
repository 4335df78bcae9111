package sqldb_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/exactly-stream/exactly/internal/dbtest"
	"github.com/exactly-stream/exactly/sqldb"
)

// TestIdleLimitEndsAnIdleTransaction: on each configured server a
// transaction left waiting past the limit is ended by the server (its next
// statement fails, and a row it locked can be taken), while one that keeps
// issuing statements lives on. SQLite and a zero duration get no limit.
func TestIdleLimitEndsAnIdleTransaction(t *testing.T) {
	t.Parallel()
	for _, d := range dbtest.Configured() {
		t.Run(d.String(), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			db := dbtest.Open(t, d)
			if d == sqldb.SQLite {
				l, err := sqldb.NewIdleLimit(ctx, db.DB, d, time.Second)
				require.NoError(t, err)
				require.Empty(t, l.String(), "SQLite has no idle limit")
				return
			}
			none, err := sqldb.NewIdleLimit(ctx, db.DB, d, 0)
			require.NoError(t, err)
			require.Empty(t, none.String())
			l, err := sqldb.NewIdleLimit(ctx, db.DB, d, time.Second)
			require.NoError(t, err)
			require.NotEmpty(t, l.String())
			_, err = db.ExecContext(ctx, "CREATE TABLE t (id INT PRIMARY KEY, n INT NOT NULL)")
			require.NoError(t, err)
			_, err = db.ExecContext(ctx, "INSERT INTO t VALUES (1, 0)")
			require.NoError(t, err)
			update := d.Rebind("UPDATE t SET n = n + 1 WHERE id = ?")

			busy, err := db.BeginTx(ctx, nil)
			require.NoError(t, err)
			require.NoError(t, l.Apply(ctx, busy))
			for range 6 { // 3 s in all, never idle 1 s
				_, err := busy.ExecContext(ctx, "SELECT 1")
				require.NoError(t, err, "a transaction issuing statements was ended")
				time.Sleep(500 * time.Millisecond)
			}
			require.NoError(t, busy.Rollback())

			idle, err := db.BeginTx(ctx, nil)
			require.NoError(t, err)
			require.NoError(t, l.Apply(ctx, idle))
			_, err = idle.ExecContext(ctx, update, 1) // holds the row's lock
			require.NoError(t, err)
			start := time.Now()
			// Another connection waits for the lock until the server
			// ends the idle transaction.
			_, err = db.ExecContext(ctx, update, 1)
			require.NoError(t, err)
			waited := time.Since(start)
			require.Greater(t, waited, 500*time.Millisecond, "the lock was not held")
			_, err = idle.ExecContext(ctx, "SELECT 1")
			require.Error(t, err, "the idle transaction is still open after %s", waited)
			_ = idle.Rollback()
			var n int
			require.NoError(t, db.QueryRowContext(ctx, "SELECT n FROM t WHERE id = 1").Scan(&n))
			require.Equal(t, 1, n, "the ended transaction's update must have rolled back")
		})
	}
}
