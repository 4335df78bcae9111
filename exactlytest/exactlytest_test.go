package exactlytest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/state"
	"github.com/exactly-stream/exactly/topology"
)

// testCluster is a kfake cluster with topic "t" of three partitions.
type testCluster struct {
	c  *kfake.Cluster
	cl *kgo.Client
}

func newTestCluster(t *testing.T) *testCluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.SeedTopics(3, "t"))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	return &testCluster{c: c, cl: cl}
}

// txn returns a transactional client writing to the partitions records
// name.
func (tc *testCluster) txn(t *testing.T, id string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(tc.c.ListenAddrs()...), kgo.TransactionalID(id),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	return cl
}

// writeTxn writes values to partition p in one transaction, committed or
// aborted.
func (tc *testCluster) writeTxn(t *testing.T, p int32, commit bool, values ...string) {
	t.Helper()
	cl := tc.txn(t, fmt.Sprintf("w-%d", p))
	require.NoError(t, cl.BeginTransaction())
	for _, v := range values {
		require.NoError(t, cl.ProduceSync(context.Background(), &kgo.Record{Topic: "t", Partition: p, Value: []byte(v)}).FirstErr())
	}
	require.NoError(t, cl.EndTransaction(context.Background(), kgo.TransactionEndTry(commit)))
}

func values(recs map[int32][]*kgo.Record) map[int32][]string {
	out := make(map[int32][]string)
	for p, rs := range recs {
		for _, r := range rs {
			out[p] = append(out[p], string(r.Value))
		}
	}
	return out
}

func TestReadCommitted(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t)
	tc.writeTxn(t, 0, true, "a", "b")
	tc.writeTxn(t, 0, false, "x")
	tc.writeTxn(t, 1, false, "y")
	tc.writeTxn(t, 1, true, "c")
	ctx := context.Background()

	for _, c := range []struct {
		name string
		opts ReadOptions
		want map[int32][]string
	}{
		{"all", ReadOptions{}, map[int32][]string{0: {"a", "b"}, 1: {"c"}}},
		{"partitions", ReadOptions{Partitions: []int32{1, 2}}, map[int32][]string{1: {"c"}}},
		{"from", ReadOptions{From: map[int32]int64{0: 1}}, map[int32][]string{0: {"b"}, 1: {"c"}}},
		{"ends", ReadOptions{Ends: map[int32]int64{0: 1}}, map[int32][]string{0: {"a"}}},
		{"uncommitted", ReadOptions{Uncommitted: true}, map[int32][]string{0: {"a", "b", "x"}, 1: {"y", "c"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := ReadCommitted(ctx, tc.cl, "t", c.opts)
			require.NoError(t, err)
			require.Equal(t, c.want, values(got))
			for _, rs := range got {
				for i := 1; i < len(rs); i++ {
					require.Less(t, rs[i-1].Offset, rs[i].Offset, "offset order")
				}
			}
		})
	}
}

func TestReadCommittedMissingTopic(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t)
	_, err := ReadCommitted(context.Background(), tc.cl, "no-such-topic", ReadOptions{})
	require.ErrorContains(t, err, "no-such-topic")
}

// TestReadCommittedOpenTransaction stops at the last stable offset: the
// records of a transaction still open are neither waited for nor
// returned.
func TestReadCommittedOpenTransaction(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t)
	tc.writeTxn(t, 0, true, "a")
	open := tc.txn(t, "open")
	require.NoError(t, open.BeginTransaction())
	require.NoError(t, open.ProduceSync(context.Background(), &kgo.Record{Topic: "t", Value: []byte("open")}).FirstErr())

	got, err := ReadCommitted(context.Background(), tc.cl, "t", ReadOptions{Timeout: 10 * time.Second})
	require.NoError(t, err)
	require.Equal(t, map[int32][]string{0: {"a"}}, values(got))
}

// TestReadCommittedHiddenTail leaves partition 0 ending, just below its
// last stable offset, in an aborted record whose abort marker comes after
// an open transaction's first record. read_committed never shows that
// tail, so reading must end by IdleTimeout with ErrIdle, or by Timeout,
// naming the partition, and still return what it read.
func TestReadCommittedHiddenTail(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t)
	ctx := context.Background()
	tc.writeTxn(t, 0, true, "a")
	aborted, open := tc.txn(t, "aborted"), tc.txn(t, "open")
	require.NoError(t, aborted.BeginTransaction())
	require.NoError(t, aborted.ProduceSync(ctx, &kgo.Record{Topic: "t", Value: []byte("x")}).FirstErr())
	require.NoError(t, open.BeginTransaction())
	require.NoError(t, open.ProduceSync(ctx, &kgo.Record{Topic: "t", Value: []byte("open")}).FirstErr())
	require.NoError(t, aborted.EndTransaction(ctx, kgo.TryAbort))
	stable, err := StableOffsets(ctx, kadm.NewClient(tc.cl), "t")
	require.NoError(t, err)
	require.EqualValues(t, 3, stable[0], "a, commit marker, aborted x: the open transaction's first record holds the last stable offset")

	for _, c := range []struct {
		name string
		opts ReadOptions
		want error
	}{
		{"idle", ReadOptions{IdleTimeout: 500 * time.Millisecond}, ErrIdle},
		{"timeout", ReadOptions{Timeout: 500 * time.Millisecond}, context.DeadlineExceeded},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := ReadCommitted(ctx, tc.cl, "t", c.opts)
			var inc *IncompleteError
			require.ErrorAs(t, err, &inc)
			require.ErrorIs(t, err, c.want)
			require.Equal(t, []int32{0}, inc.Partitions)
			require.Equal(t, map[int32][]string{0: {"a"}}, values(got), "the visible records are returned")
		})
	}
}

func TestReadCommittedFuncStopsOnError(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t)
	tc.writeTxn(t, 0, true, "a", "b", "c")
	stop := errors.New("stop")
	n := 0
	err := ReadCommittedFunc(context.Background(), tc.cl, "t", ReadOptions{}, func(*kgo.Record) error {
		n++
		return stop
	})
	require.ErrorIs(t, err, stop)
	require.Equal(t, 1, n)
}

func TestAbortedVisible(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t)
	tc.writeTxn(t, 0, true, "a")
	tc.writeTxn(t, 0, false, "x", "y")
	tc.writeTxn(t, 1, false, "z")
	ctx := context.Background()

	ab, err := ReadAborted(ctx, tc.cl, "t", ReadOptions{})
	require.NoError(t, err)
	require.Equal(t, map[int32][]string{0: {"x", "y"}, 1: {"z"}}, values(ab))

	violations, n, err := AbortedVisible(ctx, tc.cl, "t", ReadOptions{})
	require.NoError(t, err)
	require.Empty(t, violations)
	require.Equal(t, 3, n)
}

func TestAbortedMarkers(t *testing.T) {
	t.Parallel()
	rec := func(off, pid int64, txn bool, marker []byte) *kgo.Record {
		r := &kgo.Record{Offset: off, ProducerID: pid, Key: marker}
		if txn {
			r.Attrs = attrs(t, marker != nil)
		}
		return r
	}
	abort, commit := []byte{0, 0, 0, 0}, []byte{0, 0, 0, 1}
	recs := []*kgo.Record{
		rec(0, 1, true, nil), rec(1, 2, true, nil), rec(2, 1, true, abort),
		rec(3, 2, true, nil), rec(4, 2, true, commit), rec(5, 3, false, nil), rec(6, 4, true, nil),
	}
	var got []int64
	for _, r := range aborted(recs) {
		got = append(got, r.Offset)
	}
	require.Equal(t, []int64{0}, got, "only producer 1's transaction aborted; 4's is open")
}

// attrs returns the attributes of a transactional record, a control
// record if control.
func attrs(t *testing.T, control bool) kgo.RecordAttrs {
	t.Helper()
	// kgo.RecordAttrs has no constructor: take them from real records.
	tc := newTestCluster(t)
	tc.writeTxn(t, 0, true, "a")
	var out kgo.RecordAttrs
	err := readWithControlFunc(tc, t, func(r *kgo.Record) {
		if r.Attrs.IsControl() == control {
			out = r.Attrs
		}
	})
	require.NoError(t, err)
	require.True(t, out.IsTransactional())
	return out
}

func readWithControlFunc(tc *testCluster, t *testing.T, fn func(*kgo.Record)) error {
	t.Helper()
	recs, err := readWithControl(context.Background(), tc.cl, "t", ReadOptions{})
	for _, r := range Records(recs) {
		fn(r)
	}
	return err
}

func TestDuplicatesAndMissing(t *testing.T) {
	t.Parallel()
	rec := func(p int32, off int64, v string) *kgo.Record {
		return &kgo.Record{Topic: "t", Partition: p, Offset: off, Value: []byte(v)}
	}
	recs := map[int32][]*kgo.Record{0: {rec(0, 0, "a"), rec(0, 1, "b"), rec(0, 2, "")}, 1: {rec(1, 0, "a")}}
	id := func(r *kgo.Record) string { return string(r.Value) }
	require.Equal(t, []string{`"a" is in 2 records: [t[0]@0 t[1]@0]`}, Duplicates(recs, id))
	require.Empty(t, Duplicates(map[int32][]*kgo.Record{0: {rec(0, 0, "a")}}, id))
	require.Equal(t, []string{`"c" is in no record`}, Missing([]string{"c", "b", "a", "c"}, recs, id))
}

func TestOffsets(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t)
	ctx := context.Background()
	adm := kadm.NewClient(tc.cl)
	tc.writeTxn(t, 0, true, "a", "b")
	ends, err := EndOffsets(ctx, adm, "t")
	require.NoError(t, err)
	require.Equal(t, map[int32]int64{0: 3, 1: 0, 2: 0}, ends, "two records and a commit marker")

	hanging, err := CheckNoHangingTransactions(ctx, adm, 0, "t")
	require.NoError(t, err)
	require.Empty(t, hanging)

	open := tc.txn(t, "open")
	require.NoError(t, open.BeginTransaction())
	require.NoError(t, open.ProduceSync(ctx, &kgo.Record{Topic: "t", Partition: 2, Value: []byte("x")}).FirstErr())
	start := time.Now()
	hanging, err = CheckNoHangingTransactions(ctx, adm, 300*time.Millisecond, "t")
	require.NoError(t, err)
	require.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond, "waits for the marker")
	require.Equal(t, []string{"t[2]: last stable offset 0 below high watermark 1: a transaction is left open"}, hanging)
	_, err = ListOffsets(ctx, adm, "t", "no-such-topic")
	require.ErrorContains(t, err, "no-such-topic")

	// A group that committed 2 of partition 0's 3 offsets.
	resp, err := adm.CommitOffsets(ctx, "g", kadm.OffsetsFromRecords(kgo.Record{Topic: "t", Partition: 0, Offset: 1}))
	require.NoError(t, err)
	require.NoError(t, resp.Error())
	got, err := GroupOffsets(ctx, adm, "g", "t")
	require.NoError(t, err)
	require.Equal(t, map[int32]int64{0: 2}, got)
	lag, err := Lag(ctx, adm, "g", "t")
	require.NoError(t, err)
	require.EqualValues(t, 1+1, lag, "one offset of partition 0, the open record of partition 2")
}

func TestSleep(t *testing.T) {
	t.Parallel()
	require.NoError(t, Sleep(context.Background(), time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, Sleep(ctx, time.Hour), context.Canceled)
}

func TestStateDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db, err := state.Open(dir, state.Options{})
	require.NoError(t, err)
	s := db.NewStaged()
	for p, kv := range map[int32]map[string]int64{0: {"a": 1, "b": 2}, 2: {"c": 3}} {
		for k, v := range kv {
			b, err := topology.Int64().Encode(v)
			require.NoError(t, err)
			require.NoError(t, s.Put("counts", p, []byte(k), b))
		}
		require.NoError(t, s.SetCheckpoint("counts", p, int64(10+p)))
	}
	require.NoError(t, s.SetInputCheckpoint(InputCheckpointName("counts", "in"), 2, 7))
	require.NoError(t, s.Apply())
	require.NoError(t, db.Close())

	all, err := ReadStore(dir, "counts", nil, topology.String(), topology.Int64())
	require.NoError(t, err)
	require.Equal(t, map[int32]map[string]int64{0: {"a": 1, "b": 2}, 2: {"c": 3}}, all)
	some, err := ReadStore(dir, "counts", []int32{}, topology.String(), topology.Int64())
	require.NoError(t, err)
	require.Empty(t, some, "an empty list reads no partition")
	require.Equal(t, map[string]int64{"a": 1, "b": 2, "c": 3}, Merge(all))

	sd, err := OpenStateDir(dir)
	require.NoError(t, err)
	defer sd.Close()
	raw, err := sd.Store("counts", []int32{2})
	require.NoError(t, err)
	require.Len(t, raw[2], 1)
	off, ok, err := sd.Checkpoint("counts", 2)
	require.NoError(t, err)
	require.True(t, ok)
	require.EqualValues(t, 12, off)
	off, ok, err = sd.InputCheckpoint("counts", "in", 2)
	require.NoError(t, err)
	require.True(t, ok)
	require.EqualValues(t, 7, off)
	_, ok, err = sd.InputCheckpoint("counts", "in", 0)
	require.NoError(t, err)
	require.False(t, ok)
}

func TestDiffState(t *testing.T) {
	t.Parallel()
	require.Empty(t, DiffState(map[string]int{"a": 1}, map[string]int{"a": 1}))
	require.Equal(t, []string{
		"key a: local state 2, fold 1",
		"key b: missing from local state, fold 2",
		"key c: in local state 3 but not in the fold",
	}, DiffState(map[string]int{"a": 1, "b": 2}, map[string]int{"a": 2, "c": 3}))
}
