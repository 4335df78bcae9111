package dsl_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/exactly-stream/exactly/dsl"
	"github.com/exactly-stream/exactly/topology"
)

// nullRuntime is a Runtime that allocates nothing: one store slot per
// store name, emitted records dropped. It isolates the topology's own
// allocations.
type nullRuntime struct{ slot map[string][]byte }

func (n *nullRuntime) Get(store string, _ []byte) ([]byte, bool, error) {
	v, ok := n.slot[store]
	return v, ok, nil
}

func (n *nullRuntime) Put(store string, _, value []byte) error {
	n.slot[store] = value
	return nil
}

func (n *nullRuntime) Delete(store string, _ []byte) error {
	delete(n.slot, store)
	return nil
}

func (n *nullRuntime) Range(string, []byte, []byte, func(k, v []byte) bool) error {
	return errors.New("nullRuntime: no ranges")
}

func (n *nullRuntime) Emit(string, []byte, []byte, time.Time, []topology.Header) error { return nil }

func keep(_, v string) bool     { return len(v) > 0 }
func upper(_, v string) string  { return v + "!" }
func notEmpty(_, v string) bool { return v == "" }
func build(t testing.TB, d *dsl.Builder) *topology.Topology {
	t.Helper()
	top, err := d.Build()
	require.NoError(t, err)
	return top
}

// chainDSL is the benchmarked 3-operator stateless chain.
func chainDSL(t testing.TB) *topology.Topology {
	d := dsl.New(nil)
	s := dsl.StreamFrom(d, "in", "in", str, str).Filter(keep)
	s = dsl.MapValues(s, upper)
	s.FilterNot(notEmpty).To("out", str, str)
	return build(t, d)
}

// chainLowLevel is the same chain written as one hand-made node: the
// floor the DSL is held to.
func chainLowLevel(t testing.TB) *topology.Topology {
	b := topology.NewBuilder()
	topology.Source(b, "in", "in", str, str)
	sink := topology.Sink(b, "to", "out", str, str, topology.Parents("chain"))
	topology.Node(b, "chain", func(c *topology.Call, r topology.Record[string, string]) error {
		if !keep(r.Key, r.Value) {
			return nil
		}
		if r.Value = upper(r.Key, r.Value); notEmpty(r.Key, r.Value) {
			return nil
		}
		return sink.SendRecord(c, r)
	}, topology.Parents("in"))
	top, err := b.Build()
	require.NoError(t, err)
	return top
}

// countDSL is GroupByKey+Count with its table's stream to a topic.
func countDSL(t testing.TB) *topology.Topology {
	d := dsl.New(nil)
	dsl.StreamFrom(d, "in", "in", str, str).GroupByKey(str, str).Count(dsl.Named("counts")).
		ToStream().To("out", str, topology.Int64())
	return build(t, d)
}

// countLowLevel is the same count by hand.
func countLowLevel(t testing.TB) *topology.Topology {
	b := topology.NewBuilder()
	topology.Source(b, "in", "in", str, str)
	counts := topology.Store(b, "counts", str, topology.Int64())
	sink := topology.Sink(b, "to", "out", str, topology.Int64(), topology.Parents("count"))
	topology.Node(b, "count", func(c *topology.Call, r topology.Record[string, string]) error {
		n, _, err := counts.Get(c, r.Key)
		if err != nil {
			return err
		}
		if err := counts.Put(c, r.Key, n+1); err != nil {
			return err
		}
		return sink.SendRecord(c, topology.Record[string, int64]{Key: r.Key, Value: n + 1, Timestamp: r.Timestamp, Headers: r.Headers})
	}, topology.Parents("in"), topology.Stores("counts"))
	top, err := b.Build()
	require.NoError(t, err)
	return top
}

func dispatchAllocs(t *testing.T, top *topology.Topology) float64 {
	rt := &nullRuntime{slot: make(map[string][]byte)}
	in := &topology.Input{Topic: "in", Key: []byte("key"), Value: []byte("value"), Timestamp: time.Unix(1, 0)}
	ctx := context.Background()
	return testing.AllocsPerRun(200, func() {
		if err := top.Dispatch(ctx, rt, in); err != nil {
			t.Fatal(err)
		}
	})
}

// TestNoAllocationBeyondHandWritten holds the DSL to the allocations of
// the same logic written as one low-level node: the fused operators must
// add none per record. (Checked to fail: with every stateless operator
// made its own low-level node, the chain costs 4 more allocations, the
// boxing of key and value at each extra hop.)
func TestNoAllocationBeyondHandWritten(t *testing.T) {
	chain, chainFloor := dispatchAllocs(t, chainDSL(t)), dispatchAllocs(t, chainLowLevel(t))
	require.Equal(t, chainFloor, chain, "3-operator chain: DSL %v allocs/record, hand-written %v", chain, chainFloor)
	count, countFloor := dispatchAllocs(t, countDSL(t)), dispatchAllocs(t, countLowLevel(t))
	require.Equal(t, countFloor, count, "GroupByKey+Count: DSL %v allocs/record, hand-written %v", count, countFloor)
	t.Logf("allocs/record: chain %v, count %v", chain, count)
}

func benchDispatch(b *testing.B, top *topology.Topology) {
	rt := &nullRuntime{slot: make(map[string][]byte)}
	in := &topology.Input{Topic: "in", Key: []byte("key"), Value: []byte("value"), Timestamp: time.Unix(1, 0)}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := top.Dispatch(ctx, rt, in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStatelessChain: Filter, MapValues, FilterNot, To per record,
// against the same logic as one hand-written node.
func BenchmarkStatelessChain(b *testing.B) {
	b.Run("dsl", func(b *testing.B) { benchDispatch(b, chainDSL(b)) })
	b.Run("low-level", func(b *testing.B) { benchDispatch(b, chainLowLevel(b)) })
}

// BenchmarkGroupByKeyCount: GroupByKey, Count, ToStream, To per record
// (store access on an in-memory slot), against a hand-written count.
func BenchmarkGroupByKeyCount(b *testing.B) {
	b.Run("dsl", func(b *testing.B) { benchDispatch(b, countDSL(b)) })
	b.Run("low-level", func(b *testing.B) { benchDispatch(b, countLowLevel(b)) })
}
