package dbsink

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/exactly-stream/exactly/internal/dbtest"
	"github.com/exactly-stream/exactly/internal/kfaketest"
	"github.com/exactly-stream/exactly/sqldb"
)

// The test handler writes one row per record into applied, keyed by the
// record's position, counting attempts: a record applied twice shows
// attempts 2 instead of hiding behind an upsert. Records whose value
// starts with "bad" are malformed.

const topic = "in"

const partitions = 3

type env struct {
	t   *testing.T
	c   *kfake.Cluster
	cl  *kgo.Client // produces
	db  *dbtest.DB
	seq int
	// allGood stops produce from writing malformed records.
	allGood bool
}

func newEnv(t *testing.T, db *dbtest.DB) *env {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topic))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.TransactionalID("writer"), kgo.DefaultProduceTopic(topic))
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	_, err = db.ExecContext(ctxT(t), `CREATE TABLE applied (
  topic VARCHAR(100) NOT NULL, partition_id INT NOT NULL, record_offset BIGINT NOT NULL,
  value VARCHAR(100) NOT NULL, applied_by VARCHAR(100) NOT NULL, attempts INT NOT NULL,
  PRIMARY KEY (topic, partition_id, record_offset))`)
	require.NoError(t, err)
	return &env{t: t, c: c, cl: cl, db: db}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// handler returns the test handler of instance id.
func (e *env) handler(id string) HandlerFunc {
	var upsert string
	switch e.db.Dialect {
	case sqldb.MySQL:
		upsert = "INSERT INTO applied VALUES (?, ?, ?, ?, ?, 1) ON DUPLICATE KEY UPDATE attempts = attempts + 1"
	default:
		upsert = "INSERT INTO applied VALUES (?, ?, ?, ?, ?, 1) ON CONFLICT (topic, partition_id, record_offset) DO UPDATE SET attempts = applied.attempts + 1"
	}
	upsert = e.db.Dialect.Rebind(upsert)
	return func(ctx context.Context, tx *sql.Tx, r *kgo.Record) error {
		if strings.HasPrefix(string(r.Value), "bad") {
			return Malformed(fmt.Errorf("value %q", r.Value))
		}
		_, err := tx.ExecContext(ctx, upsert, r.Topic, r.Partition, r.Offset, string(r.Value), id)
		return err
	}
}

// produce writes n records in one transaction, every fifth malformed;
// abort aborts it. It returns the good and the malformed count committed.
func (e *env) produce(n int, abort bool) (good, bad int) {
	t := e.t
	t.Helper()
	require.NoError(t, e.cl.BeginTransaction())
	for range n {
		v := fmt.Sprintf("v%d", e.seq)
		if e.seq%5 == 4 && !e.allGood {
			v, bad = "bad"+v, bad+1
		} else {
			good++
		}
		e.cl.Produce(ctxT(t), &kgo.Record{Key: []byte(fmt.Sprint(e.seq % 7)), Value: []byte(v)}, nil)
		e.seq++
	}
	require.NoError(t, e.cl.Flush(ctxT(t)))
	require.NoError(t, e.cl.EndTransaction(ctxT(t), kgo.TransactionEndTry(!abort)))
	if abort {
		return 0, 0
	}
	return good, bad
}

// sink returns a sink of instance id with test timings.
func (e *env) sink(id string, h Handler, opts ...Opt) *Sink {
	e.t.Helper()
	if h == nil {
		h = e.handler(id)
	}
	base := []Opt{
		Brokers(e.c.ListenAddrs()...), Topics(topic), InstanceID(id), MaxRecords(50),
		FetchMaxWait(100 * time.Millisecond), WithLogger(testLogger(e.t)),
		ClientOpts(kgo.HeartbeatInterval(100*time.Millisecond), kgo.SessionTimeout(6*time.Second), kgo.RebalanceTimeout(6*time.Second)),
	}
	s, err := New("sink", e.db.DB, e.db.Dialect, h, append(base, opts...)...)
	require.NoError(e.t, err)
	return s
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("EXACTLY_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
}

// running is a sink's Run in the background.
type running struct {
	s    *Sink
	done chan error
}

func start(t *testing.T, s *Sink) *running {
	r := &running{s: s, done: make(chan error, 1)}
	var wg sync.WaitGroup
	wg.Go(func() { r.done <- s.Run(context.Background()) })
	t.Cleanup(func() { s.Close(); wg.Wait() })
	return r
}

// stop closes the sink and requires a clean stop.
func (r *running) stop(t *testing.T) {
	t.Helper()
	r.s.Close()
	select {
	case err := <-r.done:
		require.NoError(t, err)
	case <-time.After(time.Minute):
		t.Fatal("the sink did not stop")
	}
}

// appliedRow is a row of applied.
type appliedRow struct {
	value, by string
	attempts  int
}

func (e *env) applied() map[string]appliedRow {
	e.t.Helper()
	rows, err := e.db.QueryContext(ctxT(e.t), "SELECT value, applied_by, attempts FROM applied")
	require.NoError(e.t, err)
	defer rows.Close()
	out := make(map[string]appliedRow)
	for rows.Next() {
		var r appliedRow
		require.NoError(e.t, rows.Scan(&r.value, &r.by, &r.attempts))
		out[r.value] = r
	}
	require.NoError(e.t, rows.Err())
	return out
}

func (e *env) deadLetters() int {
	var n int
	require.NoError(e.t, e.db.QueryRowContext(ctxT(e.t), "SELECT COUNT(*) FROM exactly_sink_dead_letters").Scan(&n))
	return n
}

// waitApplied waits until good rows are applied and bad dead-lettered,
// then checks that each was applied exactly once.
func (e *env) waitApplied(good, bad int) map[string]appliedRow {
	e.t.Helper()
	var got map[string]appliedRow
	waitFor(e.t, 30*time.Second, fmt.Sprintf("%d rows applied and %d dead-lettered", good, bad), func() bool {
		got = e.applied()
		return len(got) >= good && e.deadLetters() >= bad
	})
	require.Len(e.t, got, good, "rows applied")
	require.Equal(e.t, bad, e.deadLetters(), "dead letters")
	for v, r := range got {
		require.Equal(e.t, 1, r.attempts, "record %s applied %d times", v, r.attempts)
		require.False(e.t, strings.HasPrefix(v, "bad"), "malformed record %s applied", v)
	}
	return got
}

func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// holdHeartbeats takes the group's only member and returns freeze, after
// which its heartbeats hang as a frozen process's would (the group expels
// it after its session timeout), and unfreeze, which lets them through.
func (e *env) holdHeartbeats() (freeze, unfreeze func()) {
	t := e.t
	t.Helper()
	groups, err := kadm.NewClient(e.cl).DescribeGroups(ctxT(t), "sink")
	require.NoError(t, err)
	require.Len(t, groups["sink"].Members, 1)
	member := groups["sink"].Members[0].MemberID
	var frozen atomic.Bool
	_, unfreeze = kfaketest.HoldRequests(t, e.c, kmsg.Heartbeat, func(req kmsg.Request) bool {
		return frozen.Load() && req.(*kmsg.HeartbeatRequest).MemberID == member
	})
	return func() { frozen.Store(true) }, unfreeze
}
