package outbox_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/exactly-stream/exactly/internal/dbtest"
	"github.com/exactly-stream/exactly/outbox"
)

// TestPerKeyOrderWithRowLock tests what the README tells writers: when
// the writers of one key serialize on a row lock (here they update the
// key's aggregate row first, then write the outbox row, in one
// transaction), rows of that key are published in commit order, even with
// the relay running while they write. The aggregate's version, read under
// the lock, numbers the transactions in commit order; the records of the
// key must carry the versions in rising order.
func TestPerKeyOrderWithRowLock(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *dbtest.DB) {
		e := newEnv(t, db)
		ctx := ctxT(t)
		_, err := db.ExecContext(ctx, "CREATE TABLE agg (k VARCHAR(10) PRIMARY KEY, version INTEGER NOT NULL)")
		require.NoError(t, err)
		for _, k := range []string{"a", "b"} {
			_, err := db.ExecContext(ctx, db.Dialect.Rebind("INSERT INTO agg (k, version) VALUES (?, 0)"), k)
			require.NoError(t, err)
		}
		run := e.start(outbox.BatchSize(3))
		const writers, each = 4, 15
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for w := range writers {
			wg.Go(func() {
				for i := range each {
					if err := writeLocked(ctx, e, []string{"a", "b"}[(w+i)%2]); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		recs := e.waitDrained(writers * each)
		require.NoError(t, run.stop(t))
		last := map[string]int{}
		for _, r := range recs { // per partition, in offset order
			v, err := strconv.Atoi(string(r.Value))
			require.NoError(t, err)
			k := string(r.Key)
			require.Equal(t, last[k]+1, v, "key %s: version %d after %d", k, v, last[k])
			last[k] = v
		}
	})
}

// writeLocked bumps k's aggregate (taking its row lock until commit) and
// writes an outbox row carrying the new version, in one transaction.
func writeLocked(ctx context.Context, e *env, k string) error {
	tx, err := e.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if _, err := tx.ExecContext(ctx, e.db.Dialect.Rebind("UPDATE agg SET version = version + 1 WHERE k = ?"), k); err != nil {
		return fmt.Errorf("updating the aggregate: %w", err)
	}
	var v int
	if err := tx.QueryRowContext(ctx, e.db.Dialect.Rebind("SELECT version FROM agg WHERE k = ?"), k).Scan(&v); err != nil {
		return fmt.Errorf("reading the aggregate: %w", err)
	}
	if err := e.w.Write(ctx, tx, msg(k, strconv.Itoa(v))); err != nil {
		return err
	}
	return tx.Commit()
}
