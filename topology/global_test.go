package topology_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/exactly-stream/exactly/topology"
)

// globalTopology reads orders keyed by id, whose value is a customer id,
// and looks the customer up in the global store "customers" (topic
// "customer-profiles"); a value "write" makes it write the global store.
func globalTopology(t *testing.T) *topology.Topology {
	t.Helper()
	b := topology.NewBuilder()
	str := topology.String()
	src := topology.Source(b, "orders", "orders", str, str)
	customers := topology.GlobalStore(b, "customers", "customer-profiles", str, str)
	out := topology.Sink(b, "out", "out", str, str, topology.Parents("enrich"))
	topology.Node(b, "enrich", func(c *topology.Call, r topology.Record[string, string]) error {
		if r.Value == "write" {
			return customers.Put(c, r.Key, "x")
		}
		p, _, err := customers.Get(c, r.Value)
		if err != nil {
			return err
		}
		return out.Send(c, r.Key, p)
	}, topology.Parents(src.Name()), topology.Stores(customers.Name()))
	topo, err := b.Build()
	require.NoError(t, err)
	return topo
}

func TestGlobalStore(t *testing.T) {
	topo := globalTopology(t)
	require.Empty(t, topo.StoreNames(), "a global store has no changelog and no task partition")
	require.Equal(t, map[string]string{"customers": "customer-profiles"}, topo.GlobalStores())
	require.Empty(t, topo.StoreSources("customers"))
	require.Equal(t, []string{"orders"}, topo.SourceTopics(), "the group does not consume a global topic")
	require.Contains(t, topo.Describe(), `global store "customers" [string, string] topic=customer-profiles`)

	rt := newFakeRuntime()
	rt.stores["customers"] = map[string][]byte{"c1": []byte("Ann")}
	in := &topology.Input{Topic: "orders", Key: []byte("o1"), Value: []byte("c1"), Timestamp: time.Unix(1, 0)}
	require.NoError(t, topo.Dispatch(context.Background(), rt, in))
	require.Equal(t, "Ann", string(rt.emitted[0].Value))

	in = &topology.Input{Topic: "orders", Key: []byte("o2"), Value: []byte("write"), Timestamp: time.Unix(2, 0)}
	err := topo.Dispatch(context.Background(), rt, in)
	var ue *topology.UsageError
	require.True(t, errors.As(err, &ue), "a write to a global store is a programming error: %v", err)
	require.True(t, ue.ReadOnly)
	require.EqualError(t, ue, `topology: node "enrich" writes global store "customers", which is read-only: write its topic instead`)
	require.Equal(t, "Ann", string(rt.stores["customers"]["c1"]))
}

func TestGlobalStoreTopicIsNotAnInput(t *testing.T) {
	b := topology.NewBuilder()
	str := topology.String()
	src := topology.Source(b, "profiles", "profiles", str, str)
	g := topology.GlobalStore(b, "g", "profiles", str, str)
	topology.Node(b, "n", func(*topology.Call, topology.Record[string, string]) error { return nil },
		topology.Parents(src.Name()), topology.Stores(g.Name()))
	_, err := b.Build()
	require.ErrorContains(t, err, `global store replicates topic "profiles", which source "profiles" reads`)
}
