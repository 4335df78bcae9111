package processor

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/exactly-stream/exactly/topology"
)

// TestUndeclaredStoreStopsTheProcessor: a node whose code uses a store it
// did not declare has a bug that every record would hit. Before, the
// topology reported it as a bad record and the processor dead-lettered the
// whole input, one record at a time, and kept running. Now Process returns
// a *topology.UsageError, IsFatal says so, and Run stops with an error
// naming the node and the store, committing nothing.
func TestUndeclaredStoreStopsTheProcessor(t *testing.T) {
	t.Parallel()
	b := topology.NewBuilder()
	src := topology.Source(b, "in", "in", topology.String(), topology.String())
	counts := topology.Store(b, "counts", topology.String(), topology.Int64())
	topology.Node(b, "owner", func(*topology.Call, topology.Record[string, string]) error { return nil },
		topology.Parents(src.Name()), topology.Stores(counts.Name()))
	topology.Node(b, "sloppy", func(ctx *topology.Call, r topology.Record[string, string]) error {
		return counts.Put(ctx, r.Key, 1) // "counts" is not in its Stores
	}, topology.Parents(src.Name()))
	topo, err := b.Build()
	require.NoError(t, err)

	c := newCluster(t, 1)
	brokers := c.ListenAddrs()
	produceInputs(t, brokers, 2, 5, nil)
	in := start(t, topo, brokers, t.TempDir(), "a")
	select {
	case err := <-in.err:
		var ue *topology.UsageError
		require.ErrorAs(t, err, &ue, "error: %v", err)
		require.Equal(t, topology.UsageError{Node: "sloppy", Store: "counts"}, *ue)
		require.True(t, IsFatal(err))
		require.Contains(t, err.Error(), `node "sloppy" uses store "counts"`)
	case <-time.After(30 * time.Second):
		t.Fatal("the processor did not stop on a programming error")
	}
	require.Zero(t, in.p.Stats().DeadLettered)
	require.Zero(t, in.p.Stats().Committed)
	require.Empty(t, readAll(t, brokers, "dlq"), "a programming error is not a bad record")
}

func TestIsFatalUsageError(t *testing.T) {
	t.Parallel()
	require.True(t, IsFatal(&topology.UsageError{Node: "p", Child: "q"}))
}
