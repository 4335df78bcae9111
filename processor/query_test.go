package processor

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/topology"
)

// TestGetTypedQuery: Get encodes the key and decodes the committed value
// with the store's serdes, and says where the answer came from; Query is
// the same read in bytes; Assigned names the tasks (partitions) owned.
func TestGetTypedQuery(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1)
	brokers := c.ListenAddrs()
	produceInputs(t, brokers, 2, 5, nil)
	in := start(t, counterTopology(t), brokers, t.TempDir(), "a")
	in.waitRecords(t, 10)
	waitFor(t, 30*time.Second, "ready", in.p.Ready)

	// A handle with the same name and serdes as counterTopology's store.
	counts := topology.Store(topology.NewBuilder(), "counts", topology.String(), topology.Int64())
	n, res, err := Get(context.Background(), in.p, counts, "k1")
	require.NoError(t, err)
	require.Equal(t, int64(5), n)
	require.True(t, res.Found)
	require.Equal(t, int32(0), res.Partition)
	require.GreaterOrEqual(t, res.Offset, int64(9), "the state reflects every input")

	raw, err := in.p.Query(context.Background(), "counts", []byte("k1"))
	require.NoError(t, err)
	require.Equal(t, res, raw)

	n, res, err = Get(context.Background(), in.p, counts, "absent")
	require.NoError(t, err)
	require.Zero(t, n)
	require.False(t, res.Found)

	_, err = in.p.Query(context.Background(), "nope", []byte("k1"))
	require.ErrorContains(t, err, `querying store "nope"`)

	require.Equal(t, Tasks{{Partition: 0}}, in.p.Assigned())
	require.Equal(t, []int32{0}, in.p.Assigned().Partitions())
	in.close(t)
}

// windowTopology counts records per key and minute of their timestamp into
// a window store, and on each record closes the minutes that ended before
// it (stream time), deleting them through the end index.
func windowTopology(t testing.TB) (*topology.Topology, topology.WindowStoreRef[string, int64]) {
	b := topology.NewBuilder()
	topology.Source(b, "in", "in", topology.String(), topology.String())
	wins := topology.WindowStore(b, "wins", topology.String(), topology.Int64())
	topology.Node(b, "count", func(c *topology.Call, r topology.Record[string, string]) error {
		start := r.Timestamp.Truncate(time.Minute)
		w := topology.Window{Start: start, End: start.Add(time.Minute)}
		n, _, err := wins.Get(c, r.Key, w)
		if err != nil {
			return err
		}
		if err := wins.Put(c, r.Key, w, n+1); err != nil {
			return err
		}
		return wins.Ended(c, c.StreamTime().Add(-2*time.Minute), func(w topology.Windowed[string], _ int64) (bool, error) {
			return true, wins.Delete(c, w.Key, w.Window)
		})
	}, topology.Parents("in"), topology.Stores("wins"))
	topo, err := b.Build()
	require.NoError(t, err)
	return topo, wins
}

// TestQueryWindows: a window store's committed windows are read per key
// and time range (FetchWindows, QueryWindows), survive a restore from the
// changelog into an empty state directory, including the deletions of
// expired windows, and Query refuses a window store.
func TestQueryWindows(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1)
	brokers := c.ListenAddrs()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	require.NoError(t, err)
	defer cl.Close()
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	var recs []*kgo.Record
	for i, m := range []int{0, 0, 1, 3, 3, 3, 4} { // minute of each record of key a
		recs = append(recs, &kgo.Record{Topic: "in", Key: []byte("a"), Value: []byte("x"), Timestamp: t0.Add(time.Duration(m)*time.Minute + time.Duration(i)*time.Second)})
	}
	recs = append(recs, &kgo.Record{Topic: "in", Key: []byte("b"), Value: []byte("x"), Timestamp: t0.Add(4 * time.Minute)})
	require.NoError(t, cl.ProduceSync(context.Background(), recs...).FirstErr())

	topo, wins := windowTopology(t)
	type win struct {
		start int
		n     int64
	}
	check := func(in *instance) {
		t.Helper()
		got, res, err := FetchWindows(context.Background(), in.p, wins, "a", t0, t0.Add(time.Hour))
		require.NoError(t, err)
		require.True(t, res.Found)
		require.GreaterOrEqual(t, res.Offset, int64(7))
		var ws []win
		for _, g := range got {
			require.Equal(t, time.Minute, g.Window.End.Sub(g.Window.Start))
			ws = append(ws, win{int(g.Window.Start.Sub(t0) / time.Minute), g.Value})
		}
		// Minutes 0 and 1 ended 2 minutes before stream time (4:07): deleted.
		require.Equal(t, []win{{3, 3}, {4, 1}}, ws)
		got, _, err = FetchWindows(context.Background(), in.p, wins, "a", t0.Add(4*time.Minute), t0.Add(4*time.Minute))
		require.NoError(t, err)
		require.Len(t, got, 1, "from and to bound the window start, inclusive")
		_, res, err = FetchWindows(context.Background(), in.p, wins, "nobody", t0, t0.Add(time.Hour))
		require.NoError(t, err)
		require.False(t, res.Found)
		_, err = in.p.Query(context.Background(), "wins", []byte("a"))
		require.ErrorIs(t, err, ErrWindowStore)
	}
	in := start(t, topo, brokers, t.TempDir(), "a")
	in.waitRecords(t, int64(len(recs)))
	waitFor(t, 30*time.Second, "ready", in.p.Ready)
	check(in)
	in.close(t)

	in = start(t, topo, brokers, t.TempDir(), "a") // empty directory: restored from the changelog
	waitFor(t, 30*time.Second, "ready", in.p.Ready)
	check(in)
	in.close(t)
}
