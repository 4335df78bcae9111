package outbox_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/exactlytest"
	"github.com/exactly-stream/exactly/internal/dbtest"
	"github.com/exactly-stream/exactly/outbox"
)

const topic = "events"

// env is one test's broker and database.
type env struct {
	t       testing.TB
	kc      *kfake.Cluster // nil on a real cluster (benchEnv)
	brokers []string       // a real cluster's brokers (benchEnv on KAFKA_BROKERS)
	topic   string         // what the benchmarks write: topic, or one of their own on a real cluster
	cl      *kgo.Client
	db      *dbtest.DB
	w       *outbox.Writer
	name    string
}

func newEnv(t testing.TB, db *dbtest.DB) *env {
	t.Helper()
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, topic))
	require.NoError(t, err)
	t.Cleanup(kc.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(kc.ListenAddrs()...), kgo.MetadataMinAge(50*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	_, err = db.ExecContext(ctxT(t), outbox.Schema(db.Dialect, outbox.DefaultTable))
	require.NoError(t, err)
	w, err := outbox.NewWriter(db.Dialect, outbox.DefaultTable)
	require.NoError(t, err)
	return &env{t: t, kc: kc, cl: cl, db: db, w: w, name: "orders", topic: topic}
}

// addrs returns the brokers the relay and consumers dial.
func (e *env) addrs() []string {
	if e.kc == nil {
		return e.brokers
	}
	return e.kc.ListenAddrs()
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// write commits msgs in one database transaction.
func (e *env) write(msgs ...outbox.Message) {
	e.t.Helper()
	tx, err := e.db.BeginTx(ctxT(e.t), nil)
	require.NoError(e.t, err)
	require.NoError(e.t, e.w.Write(ctxT(e.t), tx, msgs...))
	require.NoError(e.t, tx.Commit())
}

// msg is a message of the test topic.
func msg(key, value string) outbox.Message {
	return outbox.Message{Topic: topic, Key: []byte(key), Value: []byte(value)}
}

// running is a relay running in the background.
type running struct {
	r    *outbox.Relay
	done chan error
}

func (e *env) start(opts ...outbox.Opt) *running {
	e.t.Helper()
	opts = append([]outbox.Opt{outbox.Brokers(e.addrs()...), outbox.PollInterval(20 * time.Millisecond),
		outbox.KgoOpts(kgo.MetadataMinAge(50 * time.Millisecond))}, opts...)
	r, err := outbox.NewRelay(e.name, e.db.DB, e.db.Dialect, opts...)
	require.NoError(e.t, err)
	run := &running{r: r, done: make(chan error, 1)}
	go func() { run.done <- r.Run(context.Background()) }() // ends with Close
	e.t.Cleanup(r.Close)
	return run
}

// stop closes the relay and returns Run's error.
func (run *running) stop(t testing.TB) error {
	t.Helper()
	run.r.Close()
	select {
	case err := <-run.done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("the relay did not stop")
		return nil
	}
}

// rowCount counts the outbox rows left.
func (e *env) rowCount() int {
	e.t.Helper()
	var n int
	require.NoError(e.t, e.db.QueryRowContext(ctxT(e.t), "SELECT COUNT(*) FROM outbox").Scan(&n))
	return n
}

// waitDrained waits until the table is empty and the topic holds want
// committed records, and returns them.
func (e *env) waitDrained(want int) []*kgo.Record {
	e.t.Helper()
	var recs []*kgo.Record
	waitFor(e.t, 30*time.Second, func() bool {
		if e.rowCount() != 0 {
			return false
		}
		recs = e.published()
		return len(recs) >= want
	})
	require.Len(e.t, recs, want)
	return recs
}

// published returns the committed records of the test topic.
func (e *env) published() []*kgo.Record {
	e.t.Helper()
	got, err := exactlytest.ReadCommitted(ctxT(e.t), e.cl, topic, exactlytest.ReadOptions{Timeout: 30 * time.Second})
	require.NoError(e.t, err)
	return exactlytest.Records(got)
}

// outboxID returns a record's exactly.outbox.id header.
func outboxID(t *testing.T, r *kgo.Record) int64 {
	t.Helper()
	for _, h := range r.Headers {
		if h.Key == outbox.HeaderID {
			id, err := strconv.ParseInt(string(h.Value), 10, 64)
			require.NoError(t, err)
			return id
		}
	}
	t.Fatalf("record %s has no %s header", r.Value, outbox.HeaderID)
	return 0
}

// requireOnce fails unless every value of want was published exactly
// once and nothing else was.
func requireOnce(t *testing.T, recs []*kgo.Record, want []string) {
	t.Helper()
	count := make(map[string]int)
	for _, r := range recs {
		count[string(r.Value)]++
	}
	for _, v := range want {
		require.Equal(t, 1, count[v], "value %s published %d times", v, count[v])
	}
	require.Len(t, recs, len(want), "extra records published")
}

func waitFor(t testing.TB, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// createTopic makes a topic on the test cluster.
func (e *env) createTopic(name string) {
	e.t.Helper()
	_, err := kadm.NewClient(e.cl).CreateTopic(ctxT(e.t), 1, -1, nil, name)
	require.NoError(e.t, err)
}
