package topologytest_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/exactly-stream/exactly/topology"
	"github.com/exactly-stream/exactly/topologytest"
)

// enrichTopology reads orders (key: order id, value: customer id) and
// emits order id = customer name, looked up in the global store
// "customers" (topic "customer-profiles"), or "?" when absent.
func enrichTopology(t testing.TB) (*topology.Topology, topology.StoreRef[string, string]) {
	t.Helper()
	b := topology.NewBuilder()
	str := topology.String()
	src := topology.Source(b, "orders", "orders", str, str)
	customers := topology.GlobalStore(b, "customers", "customer-profiles", str, str)
	out := topology.Sink(b, "out", "out", str, str, topology.Parents("enrich"))
	topology.Node(b, "enrich", func(c *topology.Call, r topology.Record[string, string]) error {
		name, ok, err := customers.Get(c, r.Value)
		if err != nil {
			return err
		}
		if !ok {
			name = "?"
		}
		return out.Send(c, r.Key, name)
	}, topology.Parents(src.Name()), topology.Stores(customers.Name()))
	topo, err := b.Build()
	require.NoError(t, err)
	return topo, customers
}

func TestGlobalStoreTopic(t *testing.T) {
	topo, customers := enrichTopology(t)
	d := topologytest.New(t, topo, topologytest.Options{Partitions: 3})
	str := topology.String()
	profiles := topologytest.Input(d, "customer-profiles", str, str)
	orders := topologytest.Input(d, "orders", str, str)
	out := topologytest.Output(d, "out", str, str)

	// A global record is in the store for every task, whatever partition
	// it came in on, and produces nothing.
	profiles.Pipe("c1", "Ann")
	d.PipeRaw("customer-profiles", topologytest.Record{Partition: 2, Key: []byte("c2"), Value: []byte("Bob")})
	require.Empty(t, d.Produced("customer-profiles-changelog"))
	require.Zero(t, out.Len())
	v, ok := topologytest.Get(d, customers, "c2")
	require.True(t, ok)
	require.Equal(t, "Bob", v)

	ts := time.Unix(10, 0)
	for p := range int32(3) {
		orders.PipeTo(p, topology.Record[string, string]{Key: "o1", Value: "c1", Timestamp: ts})
		orders.PipeTo(p, topology.Record[string, string]{Key: "o2", Value: "c2", Timestamp: ts})
	}
	got := out.ReadAll()
	require.Len(t, got, 6)
	for i, r := range got {
		require.Equal(t, []string{"Ann", "Bob"}[i%2], r.Value, "record %d", i)
	}

	// An update replaces the value; a nil value (a Kafka null) deletes.
	profiles.Pipe("c1", "Ann2")
	d.PipeRaw("customer-profiles", topologytest.Record{Key: []byte("c2")})
	_, ok = topologytest.Get(d, customers, "c2")
	require.False(t, ok)
	orders.PipeTo(1, topology.Record[string, string]{Key: "o3", Value: "c1", Timestamp: ts})
	orders.PipeTo(2, topology.Record[string, string]{Key: "o4", Value: "c2", Timestamp: ts})
	got = out.ReadAll()
	require.Len(t, got, 2)
	require.Equal(t, "Ann2", got[0].Value)
	require.Equal(t, "?", got[1].Value)
	require.Empty(t, d.DeadLetters())

	// Deleting a key the store does not hold is harmless.
	d.PipeRaw("customer-profiles", topologytest.Record{Key: []byte("nobody")})
	require.Equal(t, map[string]string{"c1": "Ann2"}, topologytest.All(d, customers))
}
