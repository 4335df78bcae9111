package dbsink

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/internal/dbtest"
	"github.com/exactly-stream/exactly/sqldb"
)

// TestSinkAppliesExactlyOnce: records from committed transactions are
// applied once each, malformed ones dead-lettered once each, records of
// aborted transactions never; the offsets table ends at the partitions'
// ends.
func TestSinkAppliesExactlyOnce(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *dbtest.DB) {
		e := newEnv(t, db)
		good, bad := e.produce(100, false)
		e.produce(30, true)
		g2, b2 := e.produce(100, false)
		s := e.sink("a", nil)
		r := start(t, s)
		e.waitApplied(good+g2, bad+b2)
		// The counters move once Commit returns, just after the rows
		// became visible.
		waitFor(t, 10*time.Second, "the counters", func() bool { return s.Stats().RecordsApplied == int64(good+g2) })
		st := s.Stats()
		require.EqualValues(t, good+g2, st.RecordsApplied)
		require.EqualValues(t, bad+b2, st.DeadLettered)
		require.Positive(t, st.Batches)
		require.Len(t, st.Partitions, partitions)
		r.stop(t)

		offs, err := ReadOffsets(ctxT(t), db.DB, db.Dialect, DefaultTables(), "sink")
		require.NoError(t, err)
		require.Len(t, offs, partitions)
		ends, err := kadm.NewClient(e.cl).ListEndOffsets(ctxT(t), topic)
		require.NoError(t, err)
		for _, o := range offs {
			end, _ := ends.Lookup(topic, o.Partition)
			// The last record is followed by its transaction's marker.
			require.Equal(t, end.Offset-1, o.Next, "partition %d", o.Partition)
			require.EqualValues(t, 1, o.Epoch)
			require.Equal(t, "sink-a", o.Owner)
		}
	})
}

// TestSinkRestartResumesFromDatabase: a sink restarted on old state
// resumes from the offsets in the database, not from the group's: the
// group's offsets, moved to the end behind its back, are ignored, so the
// records written while it was stopped are applied, and nothing again.
func TestSinkRestartResumesFromDatabase(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *dbtest.DB) {
		e := newEnv(t, db)
		good, bad := e.produce(60, false)
		r := start(t, e.sink("a", nil))
		e.waitApplied(good, bad)
		r.stop(t)

		g2, b2 := e.produce(60, false)
		adm := kadm.NewClient(e.cl)
		ends, err := adm.ListEndOffsets(ctxT(t), topic)
		require.NoError(t, err)
		resp, err := adm.CommitOffsets(ctxT(t), "sink", ends.Offsets())
		require.NoError(t, err)
		require.NoError(t, resp.Error())

		s := e.sink("b", nil)
		r = start(t, s)
		rows := e.waitApplied(good+g2, bad+b2)
		r.stop(t)
		require.EqualValues(t, g2, s.Stats().RecordsApplied, "the restart applied what was written while it was down, only that")
		byB := 0
		for _, row := range rows {
			if row.by == "b" {
				byB++
			}
		}
		require.Equal(t, g2, byB)
	})
}

// TestSinkRebalanceWhileIdle: a second member joins while nothing flows;
// the partitions it takes are claimed (their epoch bumped, the owner
// named), and records written afterwards are applied once, by whichever
// member owns their partition.
func TestSinkRebalanceWhileIdle(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *dbtest.DB) {
		e := newEnv(t, db)
		good, bad := e.produce(40, false)
		a := e.sink("a", nil)
		start(t, a)
		e.waitApplied(good, bad)

		b := e.sink("b", nil)
		start(t, b)
		waitFor(t, 30*time.Second, "both members to own partitions", func() bool {
			na, nb := len(a.Stats().Partitions), len(b.Stats().Partitions)
			return na > 0 && nb > 0 && na+nb == partitions
		})
		g2, b2 := e.produce(90, false)
		rows := e.waitApplied(good+g2, bad+b2)
		by := map[string]int{}
		for _, r := range rows {
			by[r.by]++
		}
		require.Positive(t, by["b"], "the new member applied nothing")

		offs, err := ReadOffsets(ctxT(t), db.DB, db.Dialect, DefaultTables(), "sink")
		require.NoError(t, err)
		moved := 0
		for _, o := range offs {
			if o.Owner == "sink-b" {
				moved++
				require.Greater(t, o.Epoch, int64(1), "partition %d moved without an epoch bump", o.Partition)
			}
		}
		require.Equal(t, len(b.Stats().Partitions), moved)
	})
}

// TestSinkZombieCannotCommit is the regression test for a zombie sink: a
// member that polled a batch and then stalled (a GC pause, a frozen
// process) is expelled from the group; the new owner claims its
// partitions and applies the records the zombie holds; then the zombie
// wakes, still believing it owns them, and applies its batch. The group
// cannot stop it: the sink commits no group offsets, so no generation
// check guards the database. Only the owner epoch in the offsets table
// does: without the epoch predicate in the offset update (checked by
// removing it from offsetsSQL.advance) the zombie commits its batch and
// those records show attempts 2.
func TestSinkZombieCannotCommit(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *dbtest.DB) {
		e := newEnv(t, db)
		good, bad := e.produce(30, false)
		a := e.sink("a", nil)
		var armed atomic.Bool
		paused, release := make(chan struct{}), make(chan struct{})
		a.beforeTxn = func() {
			if armed.CompareAndSwap(true, false) {
				close(paused)
				<-release
			}
		}
		ra := start(t, a)
		e.waitApplied(good, bad)

		// The zombie's heartbeats hang from the moment it pauses.
		freeze, unfreeze := e.holdHeartbeats()
		armed.Store(true)
		// No malformed record in the zombie's batch: its dead letters'
		// keys would collide with the new owner's and hide a missing
		// fence.
		e.allGood = true
		g2, b2 := e.produce(30, false)
		<-paused
		freeze()
		applied, batches := len(e.applied()), a.Stats().Batches

		b := e.sink("b", nil)
		start(t, b)
		e.waitApplied(good+g2, bad+b2)
		require.Len(t, b.Stats().Partitions, partitions, "the new owner should own every partition")

		close(release) // the zombie applies its batch
		waitFor(t, 30*time.Second, "the zombie's batch to end", func() bool {
			st := a.Stats()
			return st.Rollbacks > 0 || st.Batches > batches
		})
		unfreeze()
		e.waitApplied(good+g2, bad+b2)
		require.Equal(t, batches, a.Stats().Batches, "the zombie committed a batch")
		n := 0
		for _, r := range e.applied() {
			if r.by == "a" {
				n++
			}
		}
		require.Equal(t, applied, n, "the zombie committed writes after it lost its partitions")
		ra.stop(t)
	})
}

// TestSinkHandlerErrorRetries: a handler error other than Malformed rolls
// the batch back and it is tried again: applied once when the error
// passes; when it persists, Run stops with an *ApplyError after
// MaxFailures tries, having committed nothing of the batch.
func TestSinkHandlerErrorRetries(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *dbtest.DB) {
		e := newEnv(t, db)
		good, bad := e.produce(20, false)
		var calls atomic.Int64
		inner := e.handler("a")
		flaky := HandlerFunc(func(ctx context.Context, tx *sql.Tx, r *kgo.Record) error {
			if err := inner(ctx, tx, r); err != nil {
				return err
			}
			if calls.Add(1) <= 2 { // after a write: the rollback must undo it
				return errors.New("transient")
			}
			return nil
		})
		s := e.sink("a", flaky)
		start(t, s)
		e.waitApplied(good, bad)
		require.EqualValues(t, 2, s.Stats().Rollbacks)

		e2 := newEnv(t, dbtest.Open(t, db.Dialect))
		e2.produce(10, false)
		broken := e2.sink("a", HandlerFunc(func(context.Context, *sql.Tx, *kgo.Record) error { return errors.New("down") }), MaxFailures(3))
		var err error
		done := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() { err = broken.Run(context.Background()); close(done) })
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatal("Run did not stop")
		}
		wg.Wait()
		ae, ok := errors.AsType[*ApplyError](err)
		require.True(t, ok, "want an *ApplyError, got %v", err)
		require.Equal(t, topic, ae.Topic)
		require.Empty(t, e2.applied())
		offs, err := ReadOffsets(ctxT(t), e2.db.DB, e2.db.Dialect, DefaultTables(), "sink")
		require.NoError(t, err)
		for _, o := range offs {
			require.EqualValues(t, -1, o.Next, "partition %d advanced without its records", o.Partition)
		}
	})
}

// TestClaimFencesEarlierOwner: claiming a partition moves its epoch, after
// which the earlier owner's offset update matches no row.
func TestClaimFencesEarlierOwner(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *dbtest.DB) {
		require.NoError(t, EnsureSchema(ctxT(t), db.DB, db.Dialect, DefaultTables()))
		mk := func(id string) *Sink {
			s, err := New("s", db.DB, db.Dialect, HandlerFunc(nil), Brokers("x"), Topics("t"), InstanceID(id))
			require.NoError(t, err)
			return s
		}
		a, b := mk("a"), mk("b")
		p := tp{"t", 0}
		ca, err := a.claimPartitions(ctxT(t), []tp{p})
		require.NoError(t, err)
		require.Equal(t, claim{epoch: 1, next: -1}, ca[p])
		advance := func(s *Sink, epoch, next int64) bool {
			tx, err := db.BeginTx(ctxT(t), nil)
			require.NoError(t, err)
			ok, err := s.advance(ctxT(t), tx, p, epoch, next)
			require.NoError(t, err)
			require.NoError(t, tx.Commit())
			return ok
		}
		require.True(t, advance(a, 1, 10))
		cb, err := b.claimPartitions(ctxT(t), []tp{p})
		require.NoError(t, err)
		require.Equal(t, claim{epoch: 2, next: 10}, cb[p], "the new owner starts where the old one committed")
		require.False(t, advance(a, 1, 20), "the earlier owner advanced after the claim")
		require.True(t, advance(b, 2, 20))
	})
}

// TestCheckDatabase refuses an in-memory SQLite database and accepts a
// file; the schema is created twice without error.
func TestCheckDatabase(t *testing.T) {
	t.Parallel()
	mem, err := sqldb.Open(sqldb.SQLite, "file::memory:")
	require.NoError(t, err)
	defer mem.Close()
	require.NoError(t, EnsureSchema(ctxT(t), mem, sqldb.SQLite, DefaultTables()))
	require.ErrorIs(t, CheckDatabase(ctxT(t), mem, sqldb.SQLite, DefaultTables()), ErrUnsafeDatabase)
	dbtest.Each(t, func(t *testing.T, db *dbtest.DB) {
		for range 2 {
			require.NoError(t, EnsureSchema(ctxT(t), db.DB, db.Dialect, DefaultTables()))
		}
		require.NoError(t, CheckDatabase(ctxT(t), db.DB, db.Dialect, DefaultTables()))
	})
}

// TestNewValidates: each bad configuration is refused with ErrConfig.
func TestNewValidates(t *testing.T) {
	t.Parallel()
	db, err := sqldb.Open(sqldb.SQLite, "file:"+t.TempDir()+"/x.db")
	require.NoError(t, err)
	defer db.Close()
	h := HandlerFunc(nil)
	ok := []Opt{Brokers("b"), Topics("t")}
	for name, c := range map[string]struct {
		name string
		h    Handler
		opts []Opt
	}{
		"no name":       {"", h, ok},
		"no handler":    {"s", nil, ok},
		"no brokers":    {"s", h, []Opt{Topics("t")}},
		"no topics":     {"s", h, []Opt{Brokers("b")}},
		"bad table":     {"s", h, append(ok, TableNames(Tables{Offsets: "x; DROP", DeadLetters: "d"}))},
		"same tables":   {"s", h, append(ok, TableNames(Tables{Offsets: "x", DeadLetters: "x"}))},
		"no records":    {"s", h, append(ok, MaxRecords(0))},
		"empty id":      {"s", h, append(ok, InstanceID(""))},
		"zero failures": {"s", h, append(ok, MaxFailures(0))},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := New(c.name, db, sqldb.SQLite, c.h, c.opts...)
			require.ErrorIs(t, err, ErrConfig)
		})
	}
	_, err = New("s", db, sqldb.SQLite, h, ok...)
	require.NoError(t, err)
}

// TestSinkZombieFrozenInTransaction: a member freezes in the middle of a
// batch's transaction, after the offset update took its partitions' row
// locks (its handler blocks, its heartbeats hang). The group expels it and
// gives its partitions to b, whose claim must wait for those locks. The
// idle transaction limit makes the server end the frozen transaction, so b
// claims and applies everything; the zombie, woken, commits nothing.
//
// Regression: without the limit (IdleTransactionTimeout(0), as before it
// existed) b's claim waited for the locks as long as the zombie stayed
// frozen (MariaDB: innodb_lock_wait_timeout, 50 s, then again; PostgreSQL:
// for ever), and TestSinkZombieProcess timed out on MariaDB in CI when
// SIGSTOP caught the process inside a transaction. SQLite has no such
// limit (see IdleTransactionTimeout), so this runs on the servers only.
func TestSinkZombieFrozenInTransaction(t *testing.T) {
	t.Parallel()
	for _, d := range dbtest.Servers(t) {
		t.Run(d.String(), func(t *testing.T) {
			t.Parallel()
			db := dbtest.Open(t, d)
			e := newEnv(t, db)
			e.allGood = true // dead letters' keys would hide a zombie's write
			good, _ := e.produce(30, false)
			var armed atomic.Bool
			frozenIn, release := make(chan struct{}), make(chan struct{})
			inner := e.handler("a")
			a := e.sink("a", HandlerFunc(func(ctx context.Context, tx *sql.Tx, r *kgo.Record) error {
				if armed.CompareAndSwap(true, false) {
					close(frozenIn)
					<-release
				}
				return inner(ctx, tx, r)
			}), IdleTransactionTimeout(2*time.Second))
			ra := start(t, a)
			var wake sync.Once
			t.Cleanup(func() { wake.Do(func() { close(release) }) }) // before ra's, on failure too
			e.waitApplied(good, 0)

			freeze, unfreeze := e.holdHeartbeats()
			armed.Store(true)
			g2, _ := e.produce(30, false)
			<-frozenIn
			freeze()
			batches := a.Stats().Batches

			b := e.sink("b", nil)
			start(t, b)
			e.waitApplied(good+g2, 0)
			require.Len(t, b.Stats().Partitions, partitions, "the new owner should own every partition")

			wake.Do(func() { close(release) }) // the zombie wakes inside its ended transaction
			waitFor(t, 30*time.Second, "the zombie to give its partitions up", func() bool {
				return len(a.Stats().Partitions) == 0
			})
			require.Equal(t, batches, a.Stats().Batches, "the zombie committed a batch")
			byA := 0
			for _, r := range e.applied() {
				if r.by == "a" {
					byA++
				}
			}
			require.Equal(t, good, byA, "the zombie's writes: want only those before it froze")
			unfreeze()
			g3, _ := e.produce(10, false)
			e.waitApplied(good+g2+g3, 0)
			ra.s.Close()
		})
	}
}
