package processor

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/topology"
)

// tickTopology counts input records per partition in store "n" and, every
// interval of wall-clock time, increments a per-partition tick counter in
// "n" and emits "<tick>" to topic ticks keyed by the partition number.
// hook, when set, runs inside the punctuator after its writes and send.
func tickTopology(t testing.TB, every time.Duration, hook func(part int32, tick int64)) *topology.Topology {
	topo, err := newTickTopology(every, hook)
	require.NoError(t, err)
	return topo
}

func newTickTopology(every time.Duration, hook func(part int32, tick int64)) (*topology.Topology, error) {
	b := topology.NewBuilder()
	src := topology.Source(b, "in", "in", topology.String(), topology.String())
	n := topology.Store(b, "n", topology.String(), topology.Int64())
	topology.Node(b, "count", func(ctx *topology.Call, r topology.Record[string, string]) error {
		c, _, err := n.Get(ctx, "records")
		if err != nil {
			return err
		}
		return n.Put(ctx, "records", c+1)
	}, topology.Parents(src.Name()), topology.Stores(n.Name()))
	ticks := topology.Sink(b, "ticks", "ticks", topology.String(), topology.String(), topology.Parents("tick"))
	topology.Schedule(b, "tick", every, topology.WallClock, func(ctx *topology.Call, _ time.Time) error {
		c, _, err := n.Get(ctx, "ticks")
		if err != nil {
			return err
		}
		c++
		if err := n.Put(ctx, "ticks", c); err != nil {
			return err
		}
		if err := ticks.Send(ctx, strconv.Itoa(int(ctx.Partition())), strconv.FormatInt(c, 10)); err != nil {
			return err
		}
		if hook != nil {
			hook(ctx.Partition(), c)
		}
		return nil
	}, topology.Stores(n.Name()))
	return b.Build()
}

// ticksOf returns, per partition key, the committed tick values in order.
func ticksOf(t testing.TB, brokers []string) map[string][]int64 {
	t.Helper()
	out := make(map[string][]int64)
	for _, r := range readAll(t, brokers, "ticks") {
		v, err := strconv.ParseInt(string(r.Value), 10, 64)
		require.NoError(t, err)
		out[string(r.Key)] = append(out[string(r.Key)], v)
	}
	return out
}

// requireRun asserts ticks run 1..len with no gap and no repeat.
func requireRun(t testing.TB, ticks []int64, what string) {
	t.Helper()
	for i, v := range ticks {
		require.Equal(t, int64(i+1), v, "%s: ticks %v", what, ticks)
	}
}

func TestWallClockPunctuatorFiresOnIdlePartition(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2)
	brokers := c.ListenAddrs()
	// Records only ever reach partition 0.
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	require.NoError(t, err)
	defer cl.Close()
	require.NoError(t, cl.ProduceSync(context.Background(), &kgo.Record{Topic: "in", Partition: 0, Value: []byte("x")}).FirstErr())

	in := start(t, tickTopology(t, 100*time.Millisecond, nil), brokers, t.TempDir(), "a")
	waitFor(t, 30*time.Second, "ticks on both partitions", func() bool {
		n := in.p.Stats().Committed
		return n > 0 && len(ticksOf(t, brokers)["1"]) >= 3 && len(ticksOf(t, brokers)["0"]) >= 3
	})
	in.close(t)
	for part, ticks := range ticksOf(t, brokers) {
		requireRun(t, ticks, "partition "+part)
	}
}

// streamTimeTopology emits, per record, the task's stream time as seen by
// the record (Unix seconds) to topic seen.
func streamTimeTopology(t testing.TB) *topology.Topology {
	b := topology.NewBuilder()
	src := topology.Source(b, "in", "in", topology.String(), topology.String())
	n := topology.Store(b, "n", topology.String(), topology.Int64())
	seen := topology.Sink(b, "seen", "seen", topology.String(), topology.String(), topology.Parents("n"))
	topology.Node(b, "n", func(ctx *topology.Call, r topology.Record[string, string]) error {
		if err := n.Put(ctx, r.Key, ctx.Timestamp().Unix()); err != nil {
			return err
		}
		return seen.Send(ctx, r.Key, fmt.Sprintf("ts=%d stream=%d", ctx.Timestamp().Unix(), ctx.StreamTime().Unix()))
	}, topology.Parents(src.Name()), topology.Stores(n.Name()))
	topo, err := b.Build()
	require.NoError(t, err)
	return topo
}

// TestStreamTimeSurvivesRestore: a new instance on an empty state
// directory takes the task's stream time from the changelog, so a late
// record after the restart still sees the stream time reached before it.
func TestStreamTimeSurvivesRestore(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1)
	brokers := c.ListenAddrs()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	require.NoError(t, err)
	defer cl.Close()
	produce := func(key string, sec int64) {
		require.NoError(t, cl.ProduceSync(context.Background(), &kgo.Record{Topic: "in", Key: []byte(key), Value: []byte("v"), Timestamp: time.Unix(sec, 0)}).FirstErr())
	}
	topo := streamTimeTopology(t)
	produce("a", 1000)
	produce("b", 3000)
	in := start(t, topo, brokers, t.TempDir(), "a")
	in.waitRecords(t, 2)
	in.close(t)

	produce("c", 2000) // late
	in = start(t, topo, brokers, t.TempDir(), "b")
	in.waitRecords(t, 1)
	in.close(t)
	var got []string
	for _, r := range readAll(t, brokers, "seen") {
		got = append(got, string(r.Key)+" "+string(r.Value))
	}
	require.Equal(t, []string{"a ts=1000 stream=1000", "b ts=3000 stream=3000", "c ts=2000 stream=3000"}, got)
}

// repartitionedCount re-keys "k:v" lines by v through repartition "byval"
// and counts per value in store "counts", emitting value=count to out.
func repartitionedCount(t testing.TB) *topology.Topology {
	topo, err := newRepartitionedCount()
	require.NoError(t, err)
	return topo
}

func newRepartitionedCount() (*topology.Topology, error) {
	b := topology.NewBuilder()
	src := topology.Source(b, "in", "in", topology.String(), topology.String())
	by := topology.Repartition(b, "byval", topology.String(), topology.String(), topology.Parents("rekey"))
	topology.Node(b, "rekey", func(ctx *topology.Call, r topology.Record[string, string]) error {
		return by.Send(ctx, r.Value, r.Key)
	}, topology.Parents(src.Name()))
	counts := topology.Store(b, "counts", topology.String(), topology.Int64())
	out := topology.Sink(b, "out", "out", topology.String(), topology.String(), topology.Parents("count"))
	topology.Node(b, "count", countInto(counts, out), topology.Parents(by.Name()), topology.Stores(counts.Name()))
	return b.Build()
}

// TestRepartitionTopicCreatedUsedAndPurged: the processor creates
// app-byval-repartition with the input's partition count, counts through
// it, and deletes what it consumed and committed.
func TestRepartitionTopicCreatedUsedAndPurged(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3)
	brokers := c.ListenAddrs()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	require.NoError(t, err)
	defer cl.Close()
	var recs []*kgo.Record
	for i := range 90 {
		recs = append(recs, &kgo.Record{Topic: "in", Key: []byte(strconv.Itoa(i)), Value: []byte("v" + strconv.Itoa(i%5))})
	}
	require.NoError(t, cl.ProduceSync(context.Background(), recs...).FirstErr())

	in := start(t, repartitionedCount(t), brokers, t.TempDir(), "a")
	// 90 inputs, then 90 repartition records.
	in.waitRecords(t, 180)
	// Lag sums the task's inputs, each against its own offsets: caught up,
	// at most a commit marker per topic.
	waitFor(t, 10*time.Second, "no lag", func() bool {
		lag := in.p.Lag()
		for _, l := range lag {
			if l > 2 {
				return false
			}
		}
		return len(lag) == 3
	})
	adm := kadm.NewClient(cl)
	const topic = "app-byval-repartition"
	waitFor(t, 30*time.Second, "repartition topic purged", func() bool {
		starts, err := adm.ListStartOffsets(context.Background(), topic)
		if err != nil {
			return false
		}
		ends, err := adm.ListEndOffsets(context.Background(), topic)
		if err != nil {
			return false
		}
		purged := 0
		starts.Each(func(o kadm.ListedOffset) {
			if e, ok := ends.Lookup(o.Topic, o.Partition); ok && o.Offset > 0 && o.Offset >= e.Offset-1 {
				purged++
			}
		})
		return purged == 3
	})
	in.close(t)
	details, err := adm.ListTopics(context.Background(), topic)
	require.NoError(t, err)
	require.Len(t, details[topic].Partitions, 3)
	checkCounts(t, readAll(t, brokers, "out"), 5, map[string]int{"v0": 18, "v1": 18, "v2": 18, "v3": 18, "v4": 18})
}

// TestRepartitionPartitionCountMustMatchTheInputs: a task is a partition
// number, so a repartition topic with another count than the inputs (asked
// for, or found existing) is refused at start, naming it.
func TestRepartitionPartitionCountMustMatchTheInputs(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3)
	brokers := c.ListenAddrs()
	b := topology.NewBuilder()
	src := topology.Source(b, "in", "in", topology.String(), topology.String())
	by := topology.Repartition(b, "byval", topology.String(), topology.String(), topology.Parents(src.Name()), topology.Partitions(5))
	topology.Sink(b, "out", "out", topology.String(), topology.String(), topology.Parents(by.Name()))
	asked, err := b.Build()
	require.NoError(t, err)

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	require.NoError(t, err)
	defer cl.Close()
	_, err = kadm.NewClient(cl).CreateTopic(context.Background(), 2, 1, nil, "app-byval-repartition")
	require.NoError(t, err)

	for name, tc := range map[string]struct {
		topo *topology.Topology
		want string
	}{
		"asked for": {asked, `repartition "byval" asks for 5 partitions but the input topics have 3`},
		"existing":  {repartitionedCount(t), "repartition topic app-byval-repartition has 2 partitions but the input has 3"},
	} {
		t.Run(name, func(t *testing.T) {
			in := start(t, tc.topo, brokers, t.TempDir(), "a")
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
