package dsl

import (
	"github.com/exactly-stream/exactly/topology"
)

// Grouped is a stream grouped by key, ready for an aggregation.
type Grouped[K, V any] struct {
	s    *Stream[K, V]
	name string
	ks   topology.Serde[K]
	vs   topology.Serde[V]
}

// GroupByKey groups the stream by its key. ks encodes keys in the
// aggregation's store; vs encodes values in Reduce's store, and both encode
// the records of the repartition topic a re-keyed stream needs (as Kafka
// Streams' Grouped.with). After Map, SelectKey or FlatMap the records are
// still in the partition of their old key: the grouping then sends them
// through a repartition topic named after it (<group>-<grouping>-repartition,
// see Repartition), so that every record of a key reaches the task that owns
// the key's aggregate. The grouping is named "<name>-group" unless Named; a
// topology whose re-keyed groupings are all Named keeps its repartition
// topics (and so their records in flight) across changes elsewhere.
func (s *Stream[K, V]) GroupByKey(ks topology.Serde[K], vs topology.Serde[V], opts ...Opt) *Grouped[K, V] {
	name := s.d.opName(s.name, "group", opts, s.rekeyed)
	if s.rekeyed {
		s = repartition(s, name, ks, vs)
	}
	return &Grouped[K, V]{s: s, name: name, ks: ks, vs: vs}
}

// GroupBy groups the stream by a new key, key(k, v), through a repartition
// topic: SelectKey then GroupByKey, as Kafka Streams' groupBy.
func GroupBy[K, V, K2 any](s *Stream[K, V], key func(K, V) K2, ks topology.Serde[K2], vs topology.Serde[V], opts ...Opt) *Grouped[K2, V] {
	return SelectKey(s, key).GroupByKey(ks, vs, opts...)
}

// Repartition writes the stream to a repartition topic and reads it back,
// so that its records are in the partition of their current key again (a
// stateful operator downstream then sees every record of a key). The
// processor names the topic <group>-<name>-repartition, creates it with the
// input's partition count, consumes it in the same transactions as
// everything else and purges what it consumed (topology.Repartition). The
// operator is named "<stream>-repartition" unless Named: name it, since a
// renamed topic orphans the records in flight in the old one.
func (s *Stream[K, V]) Repartition(ks topology.Serde[K], vs topology.Serde[V], opts ...Opt) *Stream[K, V] {
	return repartition(s, s.d.opName(s.name, "repartition", opts, true), ks, vs)
}

// Through is Repartition, under Kafka Streams' older name.
func (s *Stream[K, V]) Through(ks topology.Serde[K], vs topology.Serde[V], opts ...Opt) *Stream[K, V] {
	return s.Repartition(ks, vs, opts...)
}

// repartition adds the repartition topic name for s and returns the stream
// read back from it.
func repartition[K, V any](s *Stream[K, V], name string, ks topology.Serde[K], vs topology.Serde[V]) *Stream[K, V] {
	r := topology.Repartition(s.d.b, name, ks, vs, topology.Parents(s.parents()...))
	s.feed(r.SendRecord)
	return &Stream[K, V]{d: s.d, name: name, srcs: []string{r.Name()}}
}

// Count counts the records per key into a table (store: the operator's
// name, "<grouping>-count" unless Named). Records with a nil value are
// skipped, as in Kafka Streams.
func (g *Grouped[K, V]) Count(opts ...Opt) *Table[K, int64] {
	return aggregate(g, "count", topology.Int64(), opts, func(_ K, _ V, n int64, _ bool) int64 { return n + 1 })
}

// Reduce folds the values per key with fn, starting from the key's first
// value, into a table whose store encodes values with the grouping's
// value serde. Records with a
// nil value are skipped; a result that is nil deletes the key (and is
// forwarded as a deletion).
func (g *Grouped[K, V]) Reduce(fn func(agg, v V) V, opts ...Opt) *Table[K, V] {
	return aggregate(g, "reduce", g.vs, opts, func(_ K, v, agg V, found bool) V {
		if !found {
			return v
		}
		return fn(agg, v)
	})
}

// Aggregate folds the values per key with fn, starting from init(), into a
// table whose store encodes aggregates with as. Records with a nil value
// are skipped; an aggregate that is nil deletes the key.
func Aggregate[K, V, A any](g *Grouped[K, V], init func() A, fn func(k K, v V, agg A) A, as topology.Serde[A], opts ...Opt) *Table[K, A] {
	return aggregate(g, "aggregate", as, opts, func(k K, v V, agg A, found bool) A {
		if !found {
			agg = init()
		}
		return fn(k, v, agg)
	})
}

// aggregate adds the node and store of an aggregation. step gets the
// key's current aggregate (found false: none yet) and returns the new one.
func aggregate[K, V, A any](g *Grouped[K, V], op string, as topology.Serde[A], opts []Opt,
	step func(k K, v V, agg A, found bool) A) *Table[K, A] {
	d := g.s.d
	name := d.opName(g.name, op, opts, true)
	store := topology.Store(d.b, name, g.ks, as)
	t := &Table[K, A]{d: d, name: name, procs: []string{name}, store: &store}
	keyNil, valNil, aggNil := nilFunc[K](), nilFunc[V](), nilFunc[A]()
	fn := func(c *topology.Call, r topology.Record[K, V]) error {
		if keyNil(r.Key) || valNil(r.Value) {
			return nil
		}
		old, found, err := store.Get(c, r.Key)
		if err != nil {
			return err
		}
		out := topology.Record[K, A]{Key: r.Key, Value: step(r.Key, r.Value, old, found), Timestamp: r.Timestamp, Headers: r.Headers}
		return t.apply(c, out, aggNil(out.Value))
	}
	ref := topology.Node(d.b, name, fn, topology.Parents(g.s.parents()...), topology.Stores(name))
	g.s.feed(ref.SendRecord)
	return t
}
