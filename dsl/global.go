package dsl

import (
	"github.com/exactly-stream/exactly/topology"
)

// GlobalTable is a table replicated whole on every instance (Kafka
// Streams' GlobalKTable): the latest value of every key of its topic, in
// a read-only global store (topology.GlobalStore). A stream joins it with
// JoinGlobal or LeftJoinGlobal, looking up a key it computes from each
// record, so neither co-partitioning nor the stream's key matters.
type GlobalTable[K, V any] struct {
	d     *Builder
	name  string
	store topology.StoreRef[K, V]
}

// GlobalTableFrom declares the global table name, replicating topic
// (normally compacted) into the global store name: a record puts its key,
// a record with a null value (a tombstone) deletes it. The processor reads
// topic to its end before it processes any record (bootstrap), then
// follows it in the background; every instance holds the whole topic
// (its memory and disk), and a read is not synchronized with the stream's
// timestamps (see "Joins" in the package documentation). topic must not
// also be read as a stream or table: Build fails.
//
// The processor deletes a key on a Kafka null before decoding, so vs only
// ever decodes non-nil bytes; a value that vs decodes as nil (JSON's
// null into a pointer, map, slice or interface type) is treated as an
// absent entry by the joins, as TableFrom treats it as a deletion. ks
// must encode keys as the topic's producer does: the joins look up the
// encoded key.
func GlobalTableFrom[K, V any](d *Builder, name, topic string, ks topology.Serde[K], vs topology.Serde[V]) *GlobalTable[K, V] {
	d.take(name)
	return &GlobalTable[K, V]{d: d, name: name, store: topology.GlobalStore(d.b, name, topic, ks, vs)}
}

// Name returns the global table's name, also its store's.
func (g *GlobalTable[K, V]) Name() string { return g.name }

// Store returns the global store, for reading it in a hand-written node
// (declare it with topology.Stores; it is read-only).
func (g *GlobalTable[K, V]) Store() topology.StoreRef[K, V] { return g.store }

// JoinGlobal joins the stream with the global table (Kafka Streams'
// KStream-GlobalKTable inner join): for each record of s, it looks up
// key(record key, value) in g and, when g has an entry, emits
// joiner(key, value, g's value) with the record's key, timestamp and
// headers. A record whose looked-up key is absent (or nil) produces
// nothing, as does a record with a nil value. Only stream records trigger
// output: a global table update does not.
//
// Unlike Join, the stream need not be co-partitioned with g's topic and
// may be re-keyed (g is whole in every task): the output keeps the
// record's key and partition, so it is re-keyed when s is. g is read as
// far as the instance has read its topic, not as of the record's
// timestamp (see "Joins" in the package documentation). The operator is
// named "<stream>-global-join" unless Named; it owns no state.
func JoinGlobal[K, V, KG, VG, VR any](s *Stream[K, V], g *GlobalTable[KG, VG], key func(K, V) KG, joiner func(K, V, VG) VR, opts ...Opt) *Stream[K, VR] {
	return globalJoin(s, g, key, "global-join", opts, func(k K, v V, vg VG, found bool) (VR, bool) {
		if !found {
			var zero VR
			return zero, false
		}
		return joiner(k, v, vg), true
	})
}

// LeftJoinGlobal is JoinGlobal, except that a record whose looked-up key
// is absent from g (or nil: it is not looked up) is joined too: joiner
// gets found false and the zero VG. A record with a nil value still
// produces nothing. The operator is named "<stream>-global-left-join"
// unless Named.
func LeftJoinGlobal[K, V, KG, VG, VR any](s *Stream[K, V], g *GlobalTable[KG, VG], key func(K, V) KG, joiner func(k K, v V, vg VG, found bool) VR, opts ...Opt) *Stream[K, VR] {
	return globalJoin(s, g, key, "global-left-join", opts, func(k K, v V, vg VG, found bool) (VR, bool) {
		return joiner(k, v, vg, found), true
	})
}

// globalJoin adds the join node: fed by s, reading g's global store with
// the key key selects. join returns the output value and whether there is
// one.
func globalJoin[K, V, KG, VG, VR any](s *Stream[K, V], g *GlobalTable[KG, VG], key func(K, V) KG, op string, opts []Opt,
	join func(k K, v V, vg VG, found bool) (VR, bool)) *Stream[K, VR] {
	d := s.d
	name := d.opName(s.name, op, opts, false)
	out := &Stream[K, VR]{d: d, name: name, procs: []string{name}, rekeyed: s.rekeyed}
	store := g.store
	valNil, keyNil, gNil := nilFunc[V](), nilFunc[KG](), nilFunc[VG]()
	fn := func(c *topology.Call, r topology.Record[K, V]) error {
		if valNil(r.Value) {
			return nil
		}
		var vg VG
		var found bool
		if kg := key(r.Key, r.Value); !keyNil(kg) {
			var err error
			if vg, found, err = store.Get(c, kg); err != nil {
				return err
			}
			if found && gNil(vg) {
				var zero VG
				vg, found = zero, false
			}
		}
		v, ok := join(r.Key, r.Value, vg, found)
		if !ok {
			return nil
		}
		return out.push(c, topology.Record[K, VR]{Key: r.Key, Value: v, Timestamp: r.Timestamp, Headers: r.Headers})
	}
	ref := topology.Node(d.b, name, topology.NodeFunc[K, V](fn), topology.Stores(store.Name()), topology.Parents(s.parents()...))
	s.feed(ref.SendRecord)
	return out
}
