package processor

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

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
