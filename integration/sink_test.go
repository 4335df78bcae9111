package integration

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/dbsink"
	"github.com/exactly-stream/exactly/examples/orders"
	"github.com/exactly-stream/exactly/examples/payments"
	"github.com/exactly-stream/exactly/internal/crashpoint"
	"github.com/exactly-stream/exactly/internal/dbtest"
)

// The database sink's killed-process tests: `exactly payments` runs as a
// child process between the cluster (KAFKA_BROKERS, or an in-process
// kfake cluster) and each configured database (SQLite always; PostgreSQL
// and MariaDB through internal/dbtest). After every scenario each order
// event committed to the events topic has exactly one payment row,
// applied once (attempts 1), each malformed event exactly one dead-letter
// row, and no event of an aborted transaction is paid.

// sinkEnv is one sink test's cluster, topic, database and processes.
type sinkEnv struct {
	t       *testing.T
	brokers []string
	prefix  string
	group   string
	ts      orders.Topics
	db      *dbtest.DB
	writer  *kgo.Client
	gen     payments.Events
	next    int // the next event number
	want    map[string]orders.Event
	bad     int
	wg      sync.WaitGroup
}

func newSinkEnv(t *testing.T, db *dbtest.DB) *sinkEnv {
	se := &sinkEnv{t: t, db: db, want: make(map[string]orders.Event)}
	if bs := os.Getenv("KAFKA_BROKERS"); bs != "" {
		se.brokers = strings.Split(bs, ",")
	} else {
		c, err := kfake.NewCluster(kfake.NumBrokers(1))
		require.NoError(t, err)
		t.Cleanup(c.Close)
		se.brokers = c.ListenAddrs()
	}
	se.prefix = fmt.Sprintf("st-%s-%d-", regexp.MustCompile(`[^a-zA-Z0-9]+`).ReplaceAllString(t.Name(), "-"), rand.IntN(1e6))
	se.group = se.prefix + "payments"
	se.ts = orders.TopicsWithPrefix(se.prefix)
	cl, err := kgo.NewClient(kgo.SeedBrokers(se.brokers...), kgo.TransactionalID(se.prefix+"order-service"), kgo.TransactionTimeout(10*time.Second))
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	se.writer = cl
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, 3, -1, nil, se.ts.Events)
	require.NoError(t, err)
	require.NoError(t, resp.Err)
	se.gen = payments.Events{Topic: se.ts.Events, Customers: 11, MalformedEvery: 13}
	t.Cleanup(se.wg.Wait)
	return se
}

// write writes txns transactions of n events; the second of every four is
// aborted, so that the last one written is committed.
func (se *sinkEnv) write(txns, n int) {
	se.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range txns {
		abort := i%4 == 1
		evs, bad, err := se.gen.Produce(ctx, se.writer, se.next, n, abort)
		require.NoError(se.t, err)
		se.next += n
		maps.Copy(se.want, evs)
		se.bad += bad
	}
}

// spawn starts `exactly payments` as instance id with test settings.
func (se *sinkEnv) spawn(id string, o spawnOpts) *child {
	args := []string{"payments", "--brokers", strings.Join(se.brokers, ","), "--db-dialect", se.db.Dialect.String(),
		"--db-dsn", se.db.DSN, "--topic-prefix", se.prefix, "--group", se.group, "--instance-id", id,
		"--max-records", "20", "--session-timeout", "6s", "--fetch-max-wait", "100ms"}
	return startChild(se.t, &se.wg, "payments "+id, id, orBinary(o.bin), append(args, o.args...), append(os.Environ(), o.env...))
}

// paid reads the payments and the dead letters.
func (se *sinkEnv) paid() (map[string]payments.Payment, int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	paid, err := payments.Read(ctx, se.db.DB)
	if err != nil {
		return nil, 0, err
	}
	var n int
	err = se.db.QueryRowContext(ctx, se.db.Dialect.Rebind("SELECT COUNT(*) FROM exactly_sink_dead_letters WHERE sink_name = ?"), se.group).Scan(&n)
	return paid, n, err
}

// waitPaid waits until every event written is paid and every malformed
// one dead-lettered, then checks exactly once: one payment per order,
// attempts 1, nothing paid without an event, no extra dead letter.
func (se *sinkEnv) waitPaid(timeout time.Duration) {
	t := se.t
	t.Helper()
	var paid map[string]payments.Payment
	var dead int
	var err error
	waitFor(t, timeout, fmt.Sprintf("%d payments and %d dead letters", len(se.want), se.bad), func() bool {
		paid, dead, err = se.paid()
		return err == nil && len(paid) >= len(se.want) && dead >= se.bad
	})
	require.Empty(t, payments.Check(paid, se.want), payments.Summary(paid))
	require.Equal(t, se.bad, dead, "dead letters")
	require.Positive(t, se.bad, "no malformed event: the test proves less than it says")
	t.Logf("%s: %d events paid once, %d malformed dead-lettered once", se.db.Dialect, len(paid), dead)
}

// TestSinkCrashPoints makes an `exactly payments` process SIGKILL itself
// at each of the sink's crash points in turn (the third time it reaches
// it): with a batch applied in an open database transaction
// (sink-applied), and right after a batch's commit (sink-committed). The
// same instance restarts on the same database; events keep arriving.
// Every event is paid exactly once: the open transaction died with the
// process (the restart applies its records again from the stored
// offsets), and the committed one is not applied again (its offsets
// committed with it).
func TestSinkCrashPoints(t *testing.T) {
	bin := crashpointBinary(t)
	for _, point := range crashpoint.Sink {
		t.Run(point, func(t *testing.T) {
			t.Parallel()
			dbtest.Each(t, func(t *testing.T, db *dbtest.DB) {
				se := newSinkEnv(t, db)
				se.write(8, 15)
				c := se.spawn("a", spawnOpts{bin: bin, env: crashAt(point, 3)})
				c.waitCrash(t, point, time.Minute)
				se.write(4, 15)
				c2 := se.spawn("a", spawnOpts{bin: bin})
				se.write(4, 15)
				se.waitPaid(time.Minute)
				c2.stop(t)
				se.checkOffsets()
			})
		})
	}
}

// TestSinkZombieProcess: instance a is frozen (SIGSTOP) past its session
// timeout while it holds polled events; the group gives its partitions to
// b, which claims them in the database and pays on while events keep
// arriving; then a wakes (SIGCONT) believing it still owns them. Its
// transactions no longer match the owner epoch and roll back: every event
// is paid exactly once.
//
// Regression (CI, MariaDB): SIGSTOP caught a inside a transaction, which
// held its partitions' offset rows locked; b's claim waited for them (50 s,
// innodb_lock_wait_timeout, then again) and the test timed out. The sink
// now has the database end a transaction left idle (--db-idle-timeout,
// dbsink.IdleTransactionTimeout; TestSinkZombieFrozenInTransaction is the
// deterministic test).
func TestSinkZombieProcess(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *dbtest.DB) {
		se := newSinkEnv(t, db)
		se.write(4, 15)
		// A small idle limit: SIGSTOP may catch a inside a transaction
		// (kill(2) returns before every thread stopped, and a thread may
		// begin one), holding its partitions' offset rows locked; the
		// database then ends it within 5 s and b's claim goes through.
		idle := spawnOpts{args: []string{"--db-idle-timeout", "5s"}}
		a := se.spawn("a", idle)
		se.waitPaid(time.Minute)
		a.freeze(t)
		frozen := time.Now()
		se.write(4, 15)
		b := se.spawn("b", idle)
		se.waitPaid(time.Minute)
		if d := 8*time.Second - time.Since(frozen); d > 0 {
			time.Sleep(d) // past the session timeout whatever b did
		}
		require.NoError(t, a.cmd.Process.Signal(syscall.SIGCONT))
		se.write(4, 15)
		time.Sleep(2 * time.Second) // both run while events arrive
		se.waitPaid(time.Minute)
		b.stop(t)
		a.stop(t)
		se.checkOffsets()
	})
}

// checkOffsets, with every process stopped: each partition's stored next
// offset is its end but for the last, committed, transaction's marker, and
// its owner epoch moved with the claims.
func (se *sinkEnv) checkOffsets() {
	t := se.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	offs, err := dbsink.ReadOffsets(ctx, se.db.DB, se.db.Dialect, dbsink.DefaultTables(), se.group)
	require.NoError(t, err)
	require.Len(t, offs, 3)
	ends, err := kadm.NewClient(se.writer).ListEndOffsets(ctx, se.ts.Events)
	require.NoError(t, err)
	for _, o := range offs {
		end, _ := ends.Lookup(se.ts.Events, o.Partition)
		require.Equal(t, end.Offset-1, o.Next, "partition %d", o.Partition)
		require.Greater(t, o.Epoch, int64(1), "partition %d was claimed once only", o.Partition)
	}
}
