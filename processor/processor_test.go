package processor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/exactly-stream/exactly/exactlytest"
	"github.com/exactly-stream/exactly/internal/kfaketest"
	"github.com/exactly-stream/exactly/state"
	"github.com/exactly-stream/exactly/topology"
)

// counterTopology counts records per key in store "counts" and emits
// "key=count" to topic out. A value "bad" is rejected by the processor, so it
// goes to the dead-letter topic.
func counterTopology(t testing.TB) *topology.Topology {
	b := topology.NewBuilder()
	src := topology.Source(b, "in", "in", topology.String(), topology.String())
	counts := topology.Store(b, "counts", topology.String(), topology.Int64())
	out := topology.Sink(b, "out", "out", topology.String(), topology.String(), topology.Parents("count"))
	count := countInto(counts, out)
	topology.Node(b, "count", func(ctx *topology.Call, r topology.Record[string, string]) error {
		if r.Value == "bad" {
			return errors.New("bad value")
		}
		if r.Value == "huge" {
			n, _, err := counts.Get(ctx, r.Key)
			if err != nil {
				return err
			}
			if err := counts.Put(ctx, r.Key, n+1000); err != nil {
				return err
			}
			return out.Send(ctx, r.Key, strings.Repeat("x", 2<<20))
		}
		return count(ctx, r)
	}, topology.Parents(src.Name()), topology.Stores(counts.Name()))
	topo, err := b.Build()
	require.NoError(t, err)
	return topo
}

// countInto counts records per key in counts and sends "key=count" to out.
func countInto(counts topology.StoreRef[string, int64], out topology.SinkRef[string, string]) topology.NodeFunc[string, string] {
	return func(ctx *topology.Call, r topology.Record[string, string]) error {
		n, _, err := counts.Get(ctx, r.Key)
		if err != nil {
			return err
		}
		n++
		if err := counts.Put(ctx, r.Key, n); err != nil {
			return err
		}
		return out.Send(ctx, r.Key, fmt.Sprintf("%s=%d", r.Key, n))
	}
}

func newCluster(t testing.TB, partitions int32) *kfake.Cluster {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, "in"))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

func produceInputs(t testing.TB, brokers []string, keys, perKey int, bad map[int]bool) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	require.NoError(t, err)
	defer cl.Close()
	var recs []*kgo.Record
	for i := 0; i < perKey; i++ {
		for k := 0; k < keys; k++ {
			v := strconv.Itoa(i)
			if bad[i*keys+k] {
				v = "bad"
			}
			recs = append(recs, &kgo.Record{Topic: "in", Key: []byte("k" + strconv.Itoa(k)), Value: []byte(v)})
		}
	}
	require.NoError(t, cl.ProduceSync(context.Background(), recs...).FirstErr())
}

// readAll reads every committed record of topic with read_committed, in
// partition order.
func readAll(t testing.TB, brokers []string, topic string) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	require.NoError(t, err)
	defer cl.Close()
	recs, err := exactlytest.ReadCommitted(context.Background(), cl, topic, exactlytest.ReadOptions{Timeout: 30 * time.Second})
	require.NoError(t, err, "reading %s", topic)
	return exactlytest.Records(recs)
}

type instance struct {
	p    *Processor
	err  chan error
	stop context.CancelFunc
}

func start(t testing.TB, topo *topology.Topology, brokers []string, dir, id string, opts ...Opt) *instance {
	t.Helper()
	base := []Opt{Brokers(brokers...), Group("app"), InstanceID(id), StateDir(dir),
		CommitInterval(50 * time.Millisecond), MaxRecordsPerTxn(50), DeadLetterTopic("dlq"),
		KgoOpts(kgo.SessionTimeout(6*time.Second), kgo.HeartbeatInterval(200*time.Millisecond)), WithLogger(testLogger(t))}
	p, err := New(topo, append(base, opts...)...)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{p: p, err: make(chan error, 1), stop: cancel}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); in.err <- p.Run(ctx) }()
	t.Cleanup(func() { cancel(); wg.Wait() })
	return in
}

func (in *instance) close(t testing.TB) {
	t.Helper()
	in.stop()
	select {
	case err := <-in.err:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("instance did not stop")
	}
}

// waitRecords waits until the instance committed n input records, failing
// at once if it stopped with an error.
func (in *instance) waitRecords(t testing.TB, n int64) {
	t.Helper()
	in.waitStats(t, 60*time.Second, fmt.Sprintf("%d records committed", n), func(st Stats) bool { return st.Records == n })
}

// waitStats waits until cond holds of the instance's Stats, failing at
// once if it stopped with an error.
func (in *instance) waitStats(t testing.TB, timeout time.Duration, what string, cond func(Stats) bool) {
	t.Helper()
	waitFor(t, timeout, what, func() bool {
		select {
		case err := <-in.err:
			in.err <- err
			require.NoError(t, err, "instance stopped")
		default:
		}
		return cond(in.p.Stats())
	})
}

func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkCounts asserts every key's outputs run key=1..perKey in order, once.
func checkCounts(t testing.TB, recs []*kgo.Record, keys int, perKey map[string]int) {
	t.Helper()
	next := map[string]int{}
	for _, r := range recs {
		k := string(r.Key)
		next[k]++
		require.Equal(t, fmt.Sprintf("%s=%d", k, next[k]), string(r.Value), "output sequence of %s", k)
	}
	require.Len(t, next, keys)
	for k, n := range perKey {
		require.Equal(t, n, next[k], "outputs of %s", k)
	}
}

func localCounts(t testing.TB, dir string, partitions int32) map[string]int64 {
	t.Helper()
	parts := make([]int32, partitions)
	for p := range partitions {
		parts[p] = p
	}
	counts, err := exactlytest.ReadStore(dir, "counts", parts, topology.String(), topology.Int64())
	require.NoError(t, err)
	return exactlytest.Merge(counts)
}

// TestInputCheckpointName pins exactlytest's name of a store's input
// checkpoint, which tests use to read and write state directories, to the
// processor's.
func TestInputCheckpointName(t *testing.T) {
	t.Parallel()
	require.Equal(t, inputCheckpointName("counts", "in"), exactlytest.InputCheckpointName("counts", "in"))
}

func TestProcessExactlyOnceAndRestoreFromCheckpoint(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3)
	brokers := c.ListenAddrs()
	topo := counterTopology(t)
	dir := t.TempDir()
	produceInputs(t, brokers, 5, 40, map[int]bool{7: true, 101: true})

	in := start(t, topo, brokers, dir, "a")
	in.waitRecords(t, 200)
	in.close(t)
	require.EqualValues(t, 2, in.p.Stats().DeadLettered)

	outs := readAll(t, brokers, "out")
	require.Len(t, outs, 198)
	dlq := readAll(t, brokers, "dlq")
	require.Len(t, dlq, 2)
	for _, r := range dlq {
		require.Equal(t, "bad", string(r.Value))
		require.Equal(t, HeaderError, r.Headers[0].Key)
	}
	local := localCounts(t, dir, 3)
	require.Len(t, local, 5)
	var sum int64
	for _, n := range local {
		sum += n
	}
	require.EqualValues(t, 198, sum)

	// A restart on the same state directory restores from its checkpoint:
	// it reads only the markers past it, no state record.
	var restored []RestoreInfo
	var mu sync.Mutex
	produceInputs(t, brokers, 5, 2, nil)
	in2 := start(t, topo, brokers, dir, "a", WithHooks(Hooks{OnRestore: func(i RestoreInfo) {
		mu.Lock()
		defer mu.Unlock()
		restored = append(restored, i)
	}}))
	in2.waitRecords(t, 10)
	in2.close(t)
	mu.Lock()
	require.Len(t, restored, 3)
	for _, r := range restored {
		require.Zero(t, r.Records, "restore of partition %d read state records", r.Partition)
		require.False(t, r.Wiped)
	}
	mu.Unlock()
	perKey := map[string]int{}
	for k := range 5 {
		perKey["k"+strconv.Itoa(k)] = 42
	}
	perKey["k2"]-- // record 7 is key k2
	perKey["k1"]-- // record 101 is key k1
	checkCounts(t, readAll(t, brokers, "out"), 5, perKey)
}

// countedHundred starts a cluster, counts 100 inputs over keys k0-k3 (25
// each) with one instance and closes it, leaving the counts in the
// changelog for another instance to restore.
func countedHundred(t *testing.T) (*kfake.Cluster, []string, *topology.Topology) {
	t.Helper()
	c := newCluster(t, 2)
	brokers := c.ListenAddrs()
	topo := counterTopology(t)
	produceInputs(t, brokers, 4, 25, nil)
	in := start(t, topo, brokers, t.TempDir(), "a")
	in.waitRecords(t, 100)
	in.close(t)
	return c, brokers, topo
}

func TestFreshInstanceRestoresEverything(t *testing.T) {
	t.Parallel()
	_, brokers, topo := countedHundred(t)

	dir := t.TempDir()
	produceInputs(t, brokers, 4, 1, nil)
	in2 := start(t, topo, brokers, dir, "b")
	in2.waitRecords(t, 4)
	in2.close(t)
	require.EqualValues(t, 100, in2.p.Stats().Restored, "a fresh instance restores every state write")
	require.Equal(t, map[string]int64{"k0": 26, "k1": 26, "k2": 26, "k3": 26}, localCounts(t, dir, 2))
	checkCounts(t, readAll(t, brokers, "out"), 4, map[string]int{"k0": 26, "k1": 26, "k2": 26, "k3": 26})
}

// TestAbortedTransactionsLeaveNoTrace fails EndTxn commits and
// TxnOffsetCommit now and then: those transactions abort, their staged state
// is dropped, and the records are processed again; outputs and state still
// count every record exactly once.
func TestAbortedTransactionsLeaveNoTrace(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2)
	brokers := c.ListenAddrs()
	var mu sync.Mutex
	n := 0
	c.ControlKey(int16(kmsg.EndTxn), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		r := req.(*kmsg.EndTxnRequest)
		mu.Lock()
		defer mu.Unlock()
		n++
		if !r.Commit || n%3 != 0 {
			return nil, nil, false
		}
		resp := r.ResponseKind().(*kmsg.EndTxnResponse)
		resp.ErrorCode = kerr.TransactionAbortable.Code
		return resp, nil, true
	})
	topo := counterTopology(t)
	dir := t.TempDir()
	produceInputs(t, brokers, 3, 60, nil)
	var aborts int
	in := start(t, topo, brokers, dir, "a", WithHooks(Hooks{OnAbort: func(error) { mu.Lock(); aborts++; mu.Unlock() }}))
	in.waitRecords(t, 180)
	in.close(t)
	mu.Lock()
	require.Positive(t, aborts)
	mu.Unlock()
	checkCounts(t, readAll(t, brokers, "out"), 3, map[string]int{"k0": 60, "k1": 60, "k2": 60})
	require.Equal(t, map[string]int64{"k0": 60, "k1": 60, "k2": 60}, localCounts(t, dir, 2))
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	require.NoError(t, err)
	defer cl.Close()
	visible, aborted, err := exactlytest.AbortedVisible(context.Background(), cl, "out", exactlytest.ReadOptions{Timeout: 30 * time.Second})
	require.NoError(t, err)
	require.Positive(t, aborted, "the failed commits aborted outputs")
	require.Empty(t, visible)
}

func TestStateAheadOfGroupIsRefused(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1)
	brokers := c.ListenAddrs()
	topo := counterTopology(t)
	dir := t.TempDir()
	produceInputs(t, brokers, 2, 10, nil)
	in := start(t, topo, brokers, dir, "a")
	in.waitRecords(t, 20)
	in.close(t)

	// An operator moves the group back to offset 5.
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	require.NoError(t, err)
	defer cl.Close()
	os := kadm.Offsets{}
	os.Add(kadm.Offset{Topic: "in", Partition: 0, At: 5})
	_, err = kadm.NewClient(cl).CommitOffsets(context.Background(), "app", os)
	require.NoError(t, err)

	in2 := start(t, topo, brokers, dir, "a")
	select {
	case err := <-in2.err:
		require.ErrorIs(t, err, ErrStateAhead)
		require.True(t, IsFatal(err))
	case <-time.After(30 * time.Second):
		t.Fatal("instance did not refuse")
	}

	// The explicit way out: reset the state. It is rebuilt from offset 5
	// on: offsets 5..19 alternate k1 (odd) and k0 (even).
	in3 := start(t, topo, brokers, dir, "a", ResetState(true))
	in3.waitRecords(t, 15)
	in3.close(t)
	require.Equal(t, map[string]int64{"k0": 7, "k1": 8}, localCounts(t, dir, 1))

	// And a normal restart after the reset restores without complaint.
	produceInputs(t, brokers, 2, 1, nil)
	in4 := start(t, topo, brokers, t.TempDir(), "b")
	in4.waitRecords(t, 2)
	in4.close(t)
}

func TestUnsafeClientSettingsRefused(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1)
	for name, tc := range map[string]struct {
		opt  kgo.Opt
		want string
	}{
		"read uncommitted": {kgo.FetchIsolationLevel(kgo.ReadUncommitted()), "isolation level"},
		"leader acks":      {kgo.RequiredAcks(kgo.LeaderAck()), "acks"},
		"short txn":        {kgo.TransactionTimeout(10 * time.Millisecond), "transaction timeout"},
		// kgo counts it from the record timestamp, which outputs copy from
		// their input: a backlog older than it would never be sent.
		"delivery timeout": {kgo.RecordDeliveryTimeout(time.Minute), "record delivery timeout"},
	} {
		t.Run(name, func(t *testing.T) {
			in := start(t, counterTopology(t), c.ListenAddrs(), t.TempDir(), "a", KgoOpts(tc.opt))
			select {
			case err := <-in.err:
				require.ErrorIs(t, err, ErrConfig)
				require.ErrorContains(t, err, tc.want)
			case <-time.After(20 * time.Second):
				t.Fatal("not refused")
			}
		})
	}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	topo := counterTopology(t)
	ok := []Opt{Brokers("x:1"), Group("g"), StateDir("d"), InstanceID("i")}
	for name, tc := range map[string]struct {
		opts []Opt
		want string
	}{
		"no brokers":             {[]Opt{Group("g"), StateDir("d")}, "brokers"},
		"no group":               {[]Opt{Brokers("x:1"), StateDir("d")}, "group"},
		"no state dir":           {[]Opt{Brokers("x:1"), Group("g")}, "state dir"},
		"zero records":           {append(ok, MaxRecordsPerTxn(0)), "max records"},
		"txn too short":          {append(ok, CommitInterval(time.Second), TransactionTimeout(time.Second)), "transaction timeout"},
		"reset without creation": {append(ok, ResetState(true), CreateTopics(false)), "reset state: the reset deletes the changelogs"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := New(topo, tc.opts...)
			require.ErrorIs(t, err, ErrConfig)
			require.ErrorContains(t, err, tc.want)
		})
	}
	p, err := New(topo, ok...)
	require.NoError(t, err)
	require.Equal(t, "g-i", p.TransactionalID())
}

func TestOffsetRecordRoundTrip(t *testing.T) {
	t.Parallel()
	r := offsetRecord("orders", 12345)
	topic, off, ok, err := parseOffsetRecord(r)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "orders", topic)
	require.EqualValues(t, 12345, off)

	_, _, ok, err = parseOffsetRecord(&kgo.Record{Key: r.Key, Value: r.Value})
	require.NoError(t, err)
	require.False(t, ok, "a state record with the reserved key but no header is a state record")

	_, _, ok, err = parseOffsetRecord(&kgo.Record{Key: []byte("x"), Value: []byte{1}, Headers: r.Headers})
	require.True(t, ok)
	require.Error(t, err)
}

// testLogger logs to the test at debug level when EXACTLY_TEST_LOG is set.
func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("EXACTLY_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func TestErrorPolicies(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		policy  ErrorPolicy
		outputs int
		dlq     int
		skipped int64
		fail    bool
	}{
		{DeadLetter, 98, 2, 0, false},
		{Skip, 98, 0, 2, false},
		{Fail, 0, 0, 0, true},
	} {
		t.Run(tc.policy.String(), func(t *testing.T) {
			t.Parallel()
			c := newCluster(t, 1)
			brokers := c.ListenAddrs()
			produceInputs(t, brokers, 2, 50, map[int]bool{40: true, 77: true})
			in := start(t, counterTopology(t), brokers, t.TempDir(), "a", OnBadRecordFrom("in", tc.policy))
			if tc.fail {
				select {
				case err := <-in.err:
					var bre *BadRecordError
					require.ErrorAs(t, err, &bre)
					require.Equal(t, "in", bre.Topic)
					require.EqualValues(t, 40, bre.Offset, "the first bad record is named")
					require.True(t, IsFatal(err))
				case <-time.After(30 * time.Second):
					t.Fatal("did not stop on the bad record")
				}
				// Only transactions wholly before the bad record committed.
				for _, r := range readAll(t, brokers, "out") {
					require.Less(t, r.Offset, int64(40))
				}
				return
			}
			in.waitRecords(t, 100)
			in.close(t)
			require.Len(t, readAll(t, brokers, "out"), tc.outputs)
			require.Len(t, readAll(t, brokers, "dlq"), tc.dlq)
			require.Equal(t, tc.skipped, in.p.Stats().Skipped)
		})
	}
}

// TestRefusedOutputIsDeadLettered: an output the producer refuses for good
// (here larger than the batch limit) aborts its transaction; on the retry
// its input record goes to the dead-letter topic instead, with the cause,
// and leaves no state. Before, such a record would abort forever.
func TestRefusedOutputIsDeadLettered(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1)
	brokers := c.ListenAddrs()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	require.NoError(t, err)
	defer cl.Close()
	var recs []*kgo.Record
	for i := range 30 {
		v := strconv.Itoa(i)
		if i == 12 {
			v = "huge"
		}
		recs = append(recs, &kgo.Record{Topic: "in", Key: []byte("k"), Value: []byte(v)})
	}
	require.NoError(t, cl.ProduceSync(context.Background(), recs...).FirstErr())

	dir := t.TempDir()
	in := start(t, counterTopology(t), brokers, dir, "a")
	in.waitRecords(t, 30)
	in.close(t)
	outs := readAll(t, brokers, "out")
	require.Len(t, outs, 29)
	require.Equal(t, "k=29", string(outs[28].Value), "the refused record left no count behind")
	dlq := readAll(t, brokers, "dlq")
	require.Len(t, dlq, 1)
	require.Equal(t, "huge", string(dlq[0].Value))
	require.Contains(t, string(dlq[0].Headers[0].Value), "MESSAGE_TOO_LARGE")
	require.Equal(t, map[string]int64{"k": 29}, localCounts(t, dir, 1))
}

// TestAbortLimitStops: a cluster that aborts every commit stops the instance
// after the configured number of consecutive aborts, naming the cause,
// instead of retrying forever.
func TestAbortLimitStops(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1)
	brokers := c.ListenAddrs()
	c.ControlKey(int16(kmsg.EndTxn), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		r := req.(*kmsg.EndTxnRequest)
		if !r.Commit {
			return nil, nil, false
		}
		resp := r.ResponseKind().(*kmsg.EndTxnResponse)
		resp.ErrorCode = kerr.TransactionAbortable.Code
		return resp, nil, true
	})
	produceInputs(t, brokers, 1, 10, nil)
	in := start(t, counterTopology(t), brokers, t.TempDir(), "a", MaxConsecutiveAborts(3))
	select {
	case err := <-in.err:
		var ale *AbortLimitError
		require.ErrorAs(t, err, &ale)
		require.Equal(t, 3, ale.Aborts)
		require.ErrorIs(t, err, ErrTxnAborted)
	case <-time.After(30 * time.Second):
		t.Fatal("did not stop")
	}
	require.Empty(t, readAll(t, brokers, "out"))
}

func TestStartupErrorsNameTheCause(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1)
	locked := t.TempDir()
	db, err := state.Open(locked, state.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	file := t.TempDir() + "/file"
	require.NoError(t, os.WriteFile(file, nil, 0o600))

	for name, tc := range map[string]struct {
		brokers []string
		dir     string
		opts    []Opt
		want    string
	}{
		"unreachable brokers": {[]string{"127.0.0.1:1"}, t.TempDir(), []Opt{StartupTimeout(time.Second)}, "brokers [127.0.0.1:1]: no answer within 1s"},
		"locked state dir":    {c.ListenAddrs(), locked, nil, "locked by another running instance"},
		"unusable state dir":  {c.ListenAddrs(), file + "/state", nil, "state dir"},
		"missing topics":      {c.ListenAddrs(), t.TempDir(), []Opt{CreateTopics(false)}, "does not exist and topic creation is off"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			in := start(t, counterTopology(t), tc.brokers, tc.dir, "a", tc.opts...)
			select {
			case err := <-in.err:
				require.ErrorIs(t, err, ErrConfig)
				require.ErrorContains(t, err, tc.want)
			case <-time.After(20 * time.Second):
				t.Fatal("no start-up error")
			}
		})
	}
}

// TestStopWhileStarting stops an instance while it still waits for its
// brokers. Regression: Run returned a configuration error ("brokers ...:
// no answer within 30s: ... operation was canceled") for a stop that came
// during start-up, so a clean stop looked like a failure.
func TestStopWhileStarting(t *testing.T) {
	t.Parallel()
	in := start(t, counterTopology(t), []string{"127.0.0.1:1"}, t.TempDir(), "a")
	time.Sleep(300 * time.Millisecond)
	in.close(t)
}

func TestChangelogMismatchRefused(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		partitions int32
		configs    map[string]*string
		want       string
	}{
		"partition count": {3, map[string]*string{"cleanup.policy": ptr("compact")}, "has 3 partitions but the input has 2"},
		"not compacted":   {2, map[string]*string{"cleanup.policy": ptr("delete")}, "cleanup.policy=delete, want compact"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t, 2)
			cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
			require.NoError(t, err)
			defer cl.Close()
			_, err = kadm.NewClient(cl).CreateTopic(context.Background(), tc.partitions, 1, tc.configs, ChangelogTopic("app", "counts"))
			require.NoError(t, err)
			in := start(t, counterTopology(t), c.ListenAddrs(), t.TempDir(), "a")
			select {
			case err := <-in.err:
				require.ErrorIs(t, err, ErrConfig)
				require.ErrorContains(t, err, tc.want)
			case <-time.After(20 * time.Second):
				t.Fatal("not refused")
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestTransactionTimeoutAboveBrokerMaximum(t *testing.T) {
	t.Parallel()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "in"),
		kfake.BrokerConfigs(map[string]string{"transaction.max.timeout.ms": "5000"}))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	in := start(t, counterTopology(t), c.ListenAddrs(), t.TempDir(), "a", TransactionTimeout(10*time.Second))
	select {
	case err := <-in.err:
		require.ErrorIs(t, err, ErrConfig)
		require.ErrorContains(t, err, "exceeds the broker's transaction.max.timeout.ms (5000ms)")
	case <-time.After(20 * time.Second):
		t.Fatal("not refused")
	}
}

// TestTransactionalIDNotAuthorized: a cluster that lets the instance read
// and join its group but not use its transactional ID stops it with the
// authorization error, not an endless retry.
func TestTransactionalIDNotAuthorized(t *testing.T) {
	t.Parallel()
	allow := func(res kmsg.ACLResourceType, name string) kfake.ACL {
		return kfake.ACL{Resource: res, Name: name, Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: kmsg.ACLOperationAll, Allow: true}
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "in"), kfake.EnableSASL(), kfake.EnableACLs(),
		kfake.Superuser("PLAIN", "admin", "admin"),
		kfake.User("PLAIN", "app", "app",
			allow(kmsg.ACLResourceTypeTopic, "*"), allow(kmsg.ACLResourceTypeGroup, "*"), allow(kmsg.ACLResourceTypeCluster, "kafka-cluster")))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	adminAuth := kgo.SASL(plain.Auth{User: "admin", Pass: "admin"}.AsMechanism())
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), adminAuth)
	require.NoError(t, err)
	defer cl.Close()
	require.NoError(t, cl.ProduceSync(context.Background(), &kgo.Record{Topic: "in", Key: []byte("k"), Value: []byte("1")}).FirstErr())

	in := start(t, counterTopology(t), c.ListenAddrs(), t.TempDir(), "a",
		KgoOpts(kgo.SASL(plain.Auth{User: "app", Pass: "app"}.AsMechanism())))
	select {
	case err := <-in.err:
		require.ErrorIs(t, err, kerr.TransactionalIDAuthorizationFailed)
		require.True(t, IsFatal(err))
	case <-time.After(30 * time.Second):
		t.Fatal("not refused")
	}
}

// TestStopDuringAHeldRebalance stops an instance whose JoinGroup the
// coordinator holds, as it does during a rebalance until every member
// rejoined or the rebalance timeout (60 s by default) passed. Run returns
// without waiting for that answer, and what it committed stays.
//
// Regression: Run waited in kgo's Close, which waits for the JoinGroup
// answer before it leaves; under the chaos soak a clean stop took over a
// minute, past any deployment's grace period.
func TestStopDuringAHeldRebalance(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3)
	brokers := c.ListenAddrs()
	produceInputs(t, brokers, 5, 20, nil)
	var clients clientCount
	a := start(t, counterTopology(t), brokers, t.TempDir(), "a", KgoOpts(kgo.WithHooks(&clients)))
	a.waitRecords(t, 100)

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	require.NoError(t, err)
	defer cl.Close()
	groups, err := kadm.NewClient(cl).DescribeGroups(context.Background(), "app")
	require.NoError(t, err)
	require.Len(t, groups["app"].Members, 1)
	memberA := groups["app"].Members[0].MemberID

	held, _ := kfaketest.HoldRequests(t, c, kmsg.JoinGroup, func(req kmsg.Request) bool {
		return req.(*kmsg.JoinGroupRequest).MemberID == memberA
	})
	start(t, counterTopology(t), brokers, t.TempDir(), "b") // the group rebalances
	select {
	case <-held:
	case <-time.After(30 * time.Second):
		t.Fatal("instance a never rejoined")
	}

	a.stopWithin(t, leaveTimeout+20*time.Second, "Run is still waiting for the held JoinGroup")
	require.EqualValues(t, 100, a.p.Stats().Records)
	// Regression: the session's Close went on in a goroutine nobody
	// waited for, after Run returned.
	opened, closed := clients.counts()
	require.Equal(t, opened, closed, "every client Run opened is closed when Run returns")
}

// clientCount is a kgo hook counting clients created and closed.
type clientCount struct{ opened, closed atomic.Int64 }

func (c *clientCount) OnNewClient(*kgo.Client)    { c.opened.Add(1) }
func (c *clientCount) OnClientClosed(*kgo.Client) { c.closed.Add(1) }
func (c *clientCount) counts() (opened, closed int64) {
	return c.opened.Load(), c.closed.Load()
}

// TestFencedWhileAStaleMemberHasItsID fences an instance while the group
// has another member with its transactional ID as client ID that is not
// alive: a static member that stopped without leaving, as a crashed
// predecessor stays a member until its session times out. The instance
// must go on; only a member still there after 1.5 session timeouts is a
// twin (TestFencedByTwinInstance in integration has a live one).
//
// Regression: the chaos soak stopped a lone instance with ErrFenced,
// taking a member of its own past for a twin.
func TestFencedWhileAStaleMemberHasItsID(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 4)
	brokers := c.ListenAddrs()
	produceInputs(t, brokers, 8, 20, nil)
	a := start(t, counterTopology(t), brokers, t.TempDir(), "a")
	a.waitRecords(t, 160) // all of them: waitRecords wants the exact count

	stale, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumerGroup("app"), kgo.ConsumeTopics("in"),
		kgo.ClientID(a.p.TransactionalID()), kgo.InstanceID("stale"), kgo.SessionTimeout(6*time.Second),
		kgo.HeartbeatInterval(200*time.Millisecond))
	require.NoError(t, err)
	adm := kadm.NewClient(stale)
	waitFor(t, 30*time.Second, "the stale member in the stable group", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		stale.PollFetches(ctx)
		gs, err := adm.DescribeGroups(context.Background(), "app")
		if err != nil || gs["app"].State != "Stable" {
			return false
		}
		for _, m := range gs["app"].Members {
			if m.InstanceID != nil && *m.InstanceID == "stale" {
				return true
			}
		}
		return false
	})
	stale.Close() // a static member: no LeaveGroup

	fault := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.EndTxn}, TxnID: a.p.TransactionalID(), Err: kerr.ProducerFenced, Count: 1})
	produceInputs(t, brokers, 8, 20, nil)
	waitFor(t, 30*time.Second, "the fence injected", func() bool { return fault.Hits() > 0 })
	a.waitRecords(t, 320)
	require.Positive(t, a.p.Stats().SessionRestart)
}

// TestStopDuringARestore stops an instance while its assignment callback
// restores a changelog partition whose fetch the broker holds. Run returns
// without waiting for the restore, and a restart on the same directory
// restores and goes on.
//
// kgo gives the callback the client's context, which ends only once the
// client is closed, and the close waits for the callback: without the
// restore also watching Run's context, the stop hung for good.
func TestStopDuringARestore(t *testing.T) {
	t.Parallel()
	c, brokers, topo := countedHundred(t)
	held, release := holdChangelogFetches(t, c, brokers)

	dir := t.TempDir()
	b := start(t, topo, brokers, dir, "b")
	select {
	case <-held:
	case <-time.After(30 * time.Second):
		t.Fatal("the restore never fetched the changelog")
	}
	b.stopWithin(t, leaveTimeout+20*time.Second, "Run is still waiting for the held restore")

	release()
	produceInputs(t, brokers, 4, 1, nil)
	b2 := start(t, topo, brokers, dir, "b")
	b2.waitRecords(t, 4)
	b2.close(t)
	require.Equal(t, map[string]int64{"k0": 26, "k1": 26, "k2": 26, "k3": 26}, localCounts(t, dir, 2))
}

// stopWithin stops the instance and requires Run to return nil within d.
func (in *instance) stopWithin(t testing.TB, d time.Duration, msg string) {
	t.Helper()
	stopped := make(chan error, 1)
	go func() {
		in.stop()
		stopped <- <-in.err
	}()
	select {
	case err := <-stopped:
		require.NoError(t, err)
	case <-time.After(d):
		t.Fatal(msg)
	}
}

// TestRestoreTimeoutBoundsTheRead holds every fetch of the changelog while
// an instance restores it. The restore must fail after the restore timeout
// with an error naming the store and partition, and Run must return it.
//
// Regression: the timeout covered only the wait for the offset records;
// reading the changelog polled with the session's context, which has no
// deadline, so a changelog that never reached its target (a broker down)
// held the assign callback, and the instance, forever.
func TestRestoreTimeoutBoundsTheRead(t *testing.T) {
	t.Parallel()
	c, brokers, topo := countedHundred(t)
	holdChangelogFetches(t, c, brokers)
	b := start(t, topo, brokers, t.TempDir(), "b", RestoreTimeout(2*time.Second))
	select {
	case err := <-b.err:
		require.ErrorIs(t, err, ErrRestoreIncomplete)
		var re *RestoreError
		require.ErrorAs(t, err, &re)
		require.Equal(t, "counts", re.Store)
		require.Contains(t, err.Error(), `restoring store "counts" partition`)
		require.Contains(t, err.Error(), "restore timeout")
	case <-time.After(45 * time.Second):
		t.Fatal("the restore of a changelog whose fetches the broker holds never timed out")
	}
}

// holdChangelogFetches holds every fetch of the changelog of
// countedHundred's topology until release (or the test's end); held is
// closed once the first is held.
func holdChangelogFetches(t *testing.T, c *kfake.Cluster, brokers []string) (held <-chan struct{}, release func()) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	require.NoError(t, err)
	defer cl.Close()
	changelog := ChangelogTopic("app", "counts")
	topics, err := kadm.NewClient(cl).ListTopics(context.Background(), changelog)
	require.NoError(t, err)
	id := topics[changelog].ID
	return kfaketest.HoldRequests(t, c, kmsg.Fetch, func(req kmsg.Request) bool {
		return slices.ContainsFunc(req.(*kmsg.FetchRequest).Topics, func(ft kmsg.FetchRequestTopic) bool {
			return ft.Topic == changelog || ft.TopicID == id
		})
	})
}

// TestQueriesWhileStarting reads the processor's queries (state metrics,
// lookups, readiness, assignment, lag) from other goroutines while Run
// opens the state and restores, as `exactly run` serves /metrics and
// /state before Run starts. Run under the race detector.
//
// Regression: the state handle was written by Run and read by the state
// metrics unguarded: a data race.
func TestQueriesWhileStarting(t *testing.T) {
	t.Parallel()
	_, brokers, topo := countedHundred(t)
	p, err := New(topo, Brokers(brokers...), Group("app"), InstanceID("q"), StateDir(t.TempDir()),
		CommitInterval(50*time.Millisecond), KgoOpts(kgo.SessionTimeout(6*time.Second), kgo.HeartbeatInterval(200*time.Millisecond)),
		WithLogger(testLogger(t)))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	stopped := make(chan error, 1)
	wg.Add(2)
	go func() { defer wg.Done(); stopped <- p.Run(ctx) }()
	ready := make(chan struct{})
	go func() {
		defer wg.Done()
		defer close(ready)
		for !p.Ready() {
			_ = p.StateMetrics()
			_, _ = p.Query(context.Background(), "counts", []byte("k0"))
			_ = p.Assigned().Partitions()
			_ = p.Lag()
			time.Sleep(time.Millisecond)
		}
	}()
	select {
	case <-ready:
	case err := <-stopped:
		t.Fatalf("Run stopped: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("never ready")
	}
	l, err := p.Query(context.Background(), "counts", []byte("k0"))
	require.NoError(t, err)
	require.True(t, l.Found)
	require.NotNil(t, p.StateMetrics())
	cancel()
	wg.Wait()
	require.NoError(t, <-stopped)
}

// TestIdleRebalanceDoesNotAbortTheNextTransaction lets the group rebalance
// twice while an instance has no input (a member joins, taking some of its
// partitions, and leaves, giving them back), then feeds it again: its first
// transaction must commit, and its partitions, the ones that came back
// included, go on from their committed counts.
//
// Regression: kgo's session kept the revoke flag of the idle rebalance
// until the next End, so the next transaction aborted for a revoke that had
// completed before it began ("transaction aborted by the cluster" on the
// real cluster), and the revoke callback of the second rebalance was
// dropped.
func TestIdleRebalanceDoesNotAbortTheNextTransaction(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 4)
	brokers := c.ListenAddrs()
	produceInputs(t, brokers, 8, 5, nil)
	var aborts atomic.Int64
	a := start(t, counterTopology(t), brokers, t.TempDir(), "a",
		WithHooks(Hooks{OnAbort: func(error) { aborts.Add(1) }}), KgoOpts(kgo.FetchMaxWait(250*time.Millisecond)))
	a.waitRecords(t, 40)
	waitFor(t, 10*time.Second, "a ready", a.p.Ready)

	b := start(t, counterTopology(t), brokers, t.TempDir(), "b", KgoOpts(kgo.FetchMaxWait(250*time.Millisecond)))
	waitFor(t, 30*time.Second, "b to take partitions from a", func() bool {
		return len(a.p.Assigned()) < 4 && len(b.p.Assigned()) > 0 && b.p.Ready()
	})
	b.close(t)
	waitFor(t, 30*time.Second, "a to get every partition back", func() bool {
		return slices.Equal(a.p.Assigned().Partitions(), []int32{0, 1, 2, 3}) && a.p.Ready()
	})
	require.Zero(t, aborts.Load(), "no transaction was open: nothing to abort")

	produceInputs(t, brokers, 8, 5, nil)
	a.waitRecords(t, 80)
	require.Zero(t, aborts.Load(), "the first transactions after the idle rebalances must commit")
	a.close(t)
	checkCounts(t, readAll(t, brokers, "out"), 8, nil)
}
