package outbox_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/internal/crashpoint"
	"github.com/exactly-stream/exactly/internal/dbtest"
	"github.com/exactly-stream/exactly/outbox"
	"github.com/exactly-stream/exactly/sqldb"
)

// TestWriteRollsBack: a row written in a transaction that rolls back is
// never published; one that commits is, with its key, headers and id.
func TestWriteRollsBack(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *dbtest.DB) {
		e := newEnv(t, db)
		tx, err := db.BeginTx(ctxT(t), nil)
		require.NoError(t, err)
		require.NoError(t, e.w.Write(ctxT(t), tx, msg("k", "rolled-back")))
		require.NoError(t, tx.Rollback())
		e.write(outbox.Message{Topic: topic, Key: []byte("k"), Value: []byte("v"),
			Headers: []outbox.Header{{"trace", "t1"}, {"trace", "t2"}}})
		run := e.start()
		recs := e.waitDrained(1)
		require.NoError(t, run.stop(t))
		r := recs[0]
		require.Equal(t, "k", string(r.Key))
		require.Equal(t, "v", string(r.Value))
		require.Equal(t, []kgo.RecordHeader{{Key: "trace", Value: []byte("t1")}, {Key: "trace", Value: []byte("t2")},
			{Key: outbox.HeaderID, Value: fmt.Appendf(nil, "%d", outboxID(t, r))}}, r.Headers)
	})
}

// TestRelayBatches: rows written over several transactions are published
// once each, in batches, rows of one key in commit order; the stats count
// them.
func TestRelayBatches(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *dbtest.DB) {
		e := newEnv(t, db)
		var want []string
		for i := range 30 {
			v := fmt.Sprintf("v%02d", i)
			e.write(msg(fmt.Sprintf("k%d", i%4), v))
			want = append(want, v)
		}
		run := e.start(outbox.BatchSize(7))
		recs := e.waitDrained(30)
		requireOnce(t, recs, want)
		last := make(map[string]string)
		for _, r := range recs { // per partition, in offset order
			k := string(r.Key)
			require.Less(t, last[k], string(r.Value), "key %s out of order", k)
			last[k] = string(r.Value)
		}
		// The lag is 0 once a read found the table empty.
		waitFor(t, 5*time.Second, func() bool { st := run.r.Stats(); return st.RowsRelayed == 30 && st.Lag == 0 })
		st := run.r.Stats()
		require.Equal(t, int64(5), st.Batches, "30 rows in batches of 7")
		require.Zero(t, st.TxnsAborted)
		require.NoError(t, run.stop(t))
	})
}

// TestOutOfOrderCommit: ids are taken at insert and committed in any
// order (A takes the lower id, B the higher, B commits first). A relay
// that keeps a high-water id publishes B's row, then skips A's for good.
// This relay keeps none: both rows are published once. The second subtest
// runs the same scenario on the high-water design and requires that it
// loses A's row, which shows the scenario catches that design.
func TestOutOfOrderCommit(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *dbtest.DB) {
		e := newEnv(t, db)
		outOfOrder(t, e, "right")
		recs := e.waitDrained(2)
		requireOnce(t, recs, []string{"B-right", "A-right"})
	})
}

func TestOutOfOrderCatchesHighWater(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *dbtest.DB) {
		e := newEnv(t, db)
		run := outOfOrder(t, e, "highwater", outbox.HighWater())
		time.Sleep(300 * time.Millisecond) // 15 poll intervals: A's row would be read by now
		recs := e.published()
		require.NoError(t, run.stop(t))
		requireOnce(t, recs, []string{"B-highwater"})
		require.Equal(t, 1, e.rowCount(), "the high-water design left A's row behind")
	})
}

// outOfOrder commits B's row (the higher id) first, waits until the relay
// published it, then commits A's row (the lower id). On PostgreSQL and
// MySQL A and B are concurrent transactions taking ids from the sequence;
// SQLite has one writer at a time, so A's row takes its lower id
// explicitly.
func outOfOrder(t *testing.T, e *env, tag string, opts ...outbox.Opt) *running {
	ctx := ctxT(t)
	run := e.start(opts...)
	if e.db.Dialect == sqldb.SQLite {
		insert := `INSERT INTO outbox (id, topic, "value") VALUES (?, ?, ?)`
		_, err := e.db.ExecContext(ctx, insert, 11, topic, []byte("B-"+tag))
		require.NoError(t, err)
		waitFor(t, 10*time.Second, func() bool { return len(e.published()) == 1 })
		_, err = e.db.ExecContext(ctx, insert, 5, topic, []byte("A-"+tag))
		require.NoError(t, err)
		return run
	}
	txA, err := e.db.BeginTx(ctx, nil)
	require.NoError(t, err)
	require.NoError(t, e.w.Write(ctx, txA, msg("a", "A-"+tag)))
	txB, err := e.db.BeginTx(ctx, nil)
	require.NoError(t, err)
	require.NoError(t, e.w.Write(ctx, txB, msg("b", "B-"+tag)))
	require.NoError(t, txB.Commit())
	waitFor(t, 10*time.Second, func() bool { return len(e.published()) == 1 })
	require.NoError(t, txA.Commit())
	return run
}

// TestFenced: a second relay with the same name fences the first. The
// first is paused inside a batch, before its commit or between its
// commit and its delete; the second takes over and publishes everything;
// the first, resumed, publishes nothing more and stops with ErrFenced.
func TestFenced(t *testing.T) {
	for _, point := range []string{crashpoint.RelayFlushed, crashpoint.RelayCommitted} {
		t.Run(point, func(t *testing.T) {
			dbtest.Each(t, func(t *testing.T, db *dbtest.DB) {
				e := newEnv(t, db)
				e.write(msg("k", "one"), msg("k", "two"))
				paused, release := make(chan struct{}), make(chan struct{})
				var once sync.Once
				zombie := e.start(outbox.Hook(func(p string) {
					if p == point {
						once.Do(func() { close(paused); <-release })
					}
				}))
				<-paused
				successor := e.start()
				e.write(msg("k", "three"))
				recs := e.waitDrained(3)
				requireOnce(t, recs, []string{"one", "two", "three"})
				require.NoError(t, successor.stop(t))
				e.write(msg("k", "four")) // the zombie finds this row
				close(release)
				select {
				case err := <-zombie.done:
					require.ErrorIs(t, err, outbox.ErrFenced)
					require.True(t, outbox.IsFatal(err))
				case <-time.After(30 * time.Second):
					t.Fatal("the fenced relay did not stop")
				}
				requireOnce(t, e.published(), []string{"one", "two", "three"})
				require.Equal(t, 1, e.rowCount(), "the zombie must leave row four to its successor")
				next := e.start()
				requireOnce(t, e.waitDrained(4), []string{"one", "two", "three", "four"})
				require.NoError(t, next.stop(t))
			})
		})
	}
}

// TestMalformedRows: a row whose topic does not exist, or whose headers
// are not valid, stops the relay with a RowError naming it; the rows
// before it are published, it and the rows after it stay in the table.
// Once fixed, a restarted relay publishes them.
func TestMalformedRows(t *testing.T) {
	cases := []struct {
		name string
		bad  func(e *env) string // inserts the bad row; returns the SQL that fixes it
	}{
		{"unknown topic", func(e *env) string {
			e.write(outbox.Message{Topic: "missing", Value: []byte("bad")})
			return ""
		}},
		{"invalid headers", func(e *env) string {
			_, err := e.db.ExecContext(ctxT(e.t), e.db.Dialect.Rebind(`INSERT INTO outbox (topic, headers) VALUES (?, ?)`), topic, `{"not":"pairs"}`)
			require.NoError(e.t, err)
			return `UPDATE outbox SET headers = NULL`
		}},
		{"too large", func(e *env) string {
			e.write(outbox.Message{Topic: topic, Value: make([]byte, 2<<20)}) // kgo's ProducerBatchMaxBytes is 1MB
			return `UPDATE outbox SET ` + col(e) + ` = NULL WHERE id = 2`
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dbtest.Each(t, func(t *testing.T, db *dbtest.DB) {
				e := newEnv(t, db)
				e.write(msg("k", "before"))
				fix := c.bad(e)
				e.write(msg("k", "after"))
				run := e.start()
				var err error
				select {
				case err = <-run.done:
				case <-time.After(30 * time.Second):
					t.Fatal("the relay did not stop on the malformed row")
				}
				var re *outbox.RowError
				require.ErrorAs(t, err, &re)
				require.Equal(t, int64(2), re.ID)
				require.True(t, outbox.IsFatal(err))
				requireOnce(t, e.published(), []string{"before"})
				require.Equal(t, 2, e.rowCount())
				if fix != "" {
					_, err := e.db.ExecContext(ctxT(t), fix)
					require.NoError(t, err)
				} else {
					e.createTopic("missing")
				}
				next := e.start()
				waitFor(t, 30*time.Second, func() bool { return e.rowCount() == 0 })
				require.NoError(t, next.stop(t))
				recs := e.published()
				var vals []string
				for _, r := range recs {
					vals = append(vals, string(r.Value))
				}
				require.ElementsMatch(t, []string{"before", "after"}, nonEmpty(vals))
			})
		})
	}
}

func nonEmpty(vs []string) []string {
	var out []string
	for _, v := range vs {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}

// TestNotifyWakes: on PostgreSQL a write wakes the relay through LISTEN/
// NOTIFY. With an hour's poll interval only the notification can make
// the row appear.
func TestNotifyWakes(t *testing.T) {
	db := dbtest.Open(t, sqldb.Postgres)
	e := newEnv(t, db)
	run := e.start(outbox.PollInterval(time.Hour))
	time.Sleep(200 * time.Millisecond) // the first read found nothing; the relay waits
	for i := range 3 {
		e.write(msg("k", fmt.Sprintf("n%d", i)))
		e.waitDrained(i + 1)
	}
	require.NoError(t, run.stop(t))
}

// TestLag: the lag is the age of the oldest row waiting.
func TestLag(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *dbtest.DB) {
		e := newEnv(t, db)
		e.write(outbox.Message{Topic: "missing", Value: []byte("stuck")})
		time.Sleep(1100 * time.Millisecond) // SQLite's clock has milliseconds, MySQL's TIMESTAMP(6) microseconds
		run := e.start()
		err := <-run.done
		require.Error(t, err)
		require.GreaterOrEqual(t, run.r.Stats().Lag, time.Second)
	})
}

func TestNewRelayConfig(t *testing.T) {
	db := dbtest.Open(t, sqldb.SQLite)
	for _, c := range []struct {
		name string
		opts []outbox.Opt
	}{
		{"no brokers", nil},
		{"bad table", []outbox.Opt{outbox.Brokers("x:1"), outbox.Table("a; DROP TABLE b")}},
		{"zero batch", []outbox.Opt{outbox.Brokers("x:1"), outbox.BatchSize(0)}},
		{"zero poll", []outbox.Opt{outbox.Brokers("x:1"), outbox.PollInterval(0)}},
	} {
		_, err := outbox.NewRelay("r", db.DB, sqldb.SQLite, c.opts...)
		require.ErrorIs(t, err, outbox.ErrConfig, c.name)
	}
	_, err := outbox.NewRelay("", db.DB, sqldb.SQLite, outbox.Brokers("x:1"))
	require.ErrorIs(t, err, outbox.ErrConfig)
	db.SetMaxOpenConns(1) // LISTEN would take the only connection
	_, err = outbox.NewRelay("r", db.DB, sqldb.Postgres, outbox.Brokers("x:1"))
	require.ErrorIs(t, err, outbox.ErrConfig)
}

// col is the value column, quoted for the dialect.
func col(e *env) string {
	if e.db.Dialect == sqldb.MySQL {
		return "`value`"
	}
	return `"value"`
}

// TestCloseBeforeRun: Close on a relay that never ran releases it, and Run
// afterwards returns ErrClosed at once.
func TestCloseBeforeRun(t *testing.T) {
	db := dbtest.Open(t, sqldb.SQLite)
	r, err := outbox.NewRelay("r", db.DB, sqldb.SQLite, outbox.Brokers("127.0.0.1:1"))
	require.NoError(t, err)
	r.Close()
	r.Close() // idempotent
	require.ErrorIs(t, r.Run(t.Context()), outbox.ErrClosed)
}

// TestFrozenDeleteIsEnded: a relay freezes inside its delete transaction,
// holding the published rows' locks. A successor fences it and must delete
// those rows first: the idle transaction limit makes the server end the
// frozen transaction, so the successor goes on and publishes everything
// once. The woken relay's delete fails (its connection is gone); it starts
// over from the progress and publishes nothing twice.
//
// Regression: without the limit (IdleTransactionTimeout(0)) the successor
// waited on the locks for as long as the relay stayed frozen. SQLite has no
// such limit, so this runs on the servers only.
func TestFrozenDeleteIsEnded(t *testing.T) {
	t.Parallel()
	for _, d := range dbtest.Servers(t) {
		t.Run(d.String(), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, dbtest.Open(t, d))
			e.write(msg("k", "one"), msg("k", "two"))
			paused, release := make(chan struct{}), make(chan struct{})
			var once, wake sync.Once
			frozen := e.start(outbox.IdleTransactionTimeout(2*time.Second), outbox.Hook(func(p string) {
				if p == crashpoint.RelayDeleting {
					once.Do(func() { close(paused); <-release })
				}
			}))
			t.Cleanup(func() { wake.Do(func() { close(release) }) }) // before the relay's Close
			<-paused
			successor := e.start()
			e.write(msg("k", "three"))
			requireOnce(t, e.waitDrained(3), []string{"one", "two", "three"})
			require.NoError(t, successor.stop(t))
			e.write(msg("k", "four"))
			wake.Do(func() { close(release) })
			requireOnce(t, e.waitDrained(4), []string{"one", "two", "three", "four"})
			require.NoError(t, frozen.stop(t))
		})
	}
}
