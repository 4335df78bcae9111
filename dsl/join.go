package dsl

import (
	"errors"
	"fmt"

	"github.com/exactly-stream/exactly/topology"
)

// ErrNotMaterialized is wrapped by the *BuildError of a join with a table
// that has no store (a table derived with Filter or MapTableValues, or a
// windowed table): a join reads the table's store, so call Materialize on
// it first.
var ErrNotMaterialized = errors.New("dsl: joined table is not materialized")

// ErrRekeyed is wrapped by the *BuildError of a join of a re-keyed stream
// (after Map, SelectKey, FlatMap, or a Merge with such a stream): its
// records are still in the partitions of their old keys, where the task
// does not hold the table's entries for the new ones. Call Repartition
// before the join.
var ErrRekeyed = errors.New("dsl: joined stream is re-keyed")

// Join joins the stream with the table (Kafka Streams' KStream-KTable
// inner join): for each record of s whose key has an entry in t's store,
// it emits joiner(key, value, table value), with the record's key,
// timestamp and headers. A record whose key has no entry produces
// nothing, as does a record whose key or value is nil. Only stream
// records trigger output: a table update does not.
//
// The table is read when the stream record is processed. The runtime
// processes a task's inputs in timestamp order, so the table is as of the
// record's timestamp even when a backlog of both topics is read at once;
// see "Joins" in the package documentation for that, and for the
// co-partitioning the join needs (s and t's topics must have the same
// partition count and be keyed alike).
//
// t must be materialized (TableFrom and the aggregations are; a derived
// table needs Materialize) and s must not be re-keyed (call Repartition
// after a key change): otherwise Build fails (ErrNotMaterialized,
// ErrRekeyed). The operator is named "<stream>-join" unless Named; it owns
// no state (it reads t's store), so RequireNames does not require a name.
func Join[K, V, VT, VR any](s *Stream[K, V], t *Table[K, VT], joiner func(K, V, VT) VR, opts ...Opt) *Stream[K, VR] {
	return streamTableJoin(s, t, "join", false, opts, func(k K, v V, vt VT, found bool) (VR, bool) {
		if !found {
			var zero VR
			return zero, false
		}
		return joiner(k, v, vt), true
	})
}

// LeftJoin is Join, except that a stream record whose key has no entry in
// the table is joined too: joiner gets found false and the zero VT (found
// tells an absent entry from a zero value). A record with a nil key is
// joined without a lookup (found false), as in Kafka Streams since
// KIP-962; a record with a nil value produces nothing. The operator is
// named "<stream>-left-join" unless Named.
func LeftJoin[K, V, VT, VR any](s *Stream[K, V], t *Table[K, VT], joiner func(k K, v V, vt VT, found bool) VR, opts ...Opt) *Stream[K, VR] {
	return streamTableJoin(s, t, "left-join", true, opts, func(k K, v V, vt VT, found bool) (VR, bool) {
		return joiner(k, v, vt, found), true
	})
}

// streamTableJoin adds the join node: fed by s, reading t's store. join
// returns the output value and whether there is one.
func streamTableJoin[K, V, VT, VR any](s *Stream[K, V], t *Table[K, VT], op string, left bool, opts []Opt,
	join func(k K, v V, vt VT, found bool) (VR, bool)) *Stream[K, VR] {
	d := s.d
	name := d.opName(s.name, op, opts, false)
	out := &Stream[K, VR]{d: d, name: name, procs: []string{name}}
	if s.rekeyed {
		if ks, vs, ok := repartitionSerdes[K, V](opts); ok {
			s = repartition(s, d.take(name+"-repartition"), ks, vs)
		} else {
			d.fail(name, fmt.Errorf("%w: stream %q was re-keyed; call Repartition(ks, vs) before joining it with table %q, or give the join RepartitionWith(ks, vs)",
				ErrRekeyed, s.name, t.name))
		}
	}
	var nodeOpts []topology.NodeOpt
	if t.store == nil {
		d.fail(name, notMaterialized(t.name))
	} else {
		nodeOpts = append(nodeOpts, topology.Stores(t.store.Name()))
	}
	store := t.store
	keyNil, valNil := nilFunc[K](), nilFunc[V]()
	fn := func(c *topology.Call, r topology.Record[K, V]) error {
		if store == nil || valNil(r.Value) {
			return nil // store nil: the build failed
		}
		var vt VT
		var found bool
		if keyNil(r.Key) {
			if !left {
				return nil
			}
		} else {
			var err error
			if vt, found, err = store.Get(c, r.Key); err != nil {
				return err
			}
		}
		v, ok := join(r.Key, r.Value, vt, found)
		if !ok {
			return nil
		}
		return out.push(c, topology.Record[K, VR]{Key: r.Key, Value: v, Timestamp: r.Timestamp, Headers: r.Headers})
	}
	nodeOpts = append(nodeOpts, topology.Parents(s.parents()...))
	ref := topology.Node(d.b, name, topology.NodeFunc[K, V](fn), nodeOpts...)
	s.feed(ref.SendRecord)
	return out
}

func notMaterialized(table string) error {
	return fmt.Errorf("%w: table %q has no store; call Materialize on it before the join", ErrNotMaterialized, table)
}

// TableJoin joins two tables (Kafka Streams' non-windowed KTable-KTable
// inner join): the result has an entry for a key when both a and b do,
// joiner(key, a's value, b's value). A change of either side (an update or
// a deletion) reads the other side's store and emits the key's new
// result, or its deletion when the key no longer has one; a result for
// which joiner returns nil is a deletion too.
//
// A change is emitted with the timestamp and headers of the change that
// caused it (Kafka Streams takes the later of the two sides' timestamps;
// stores here keep none). Kafka Streams emits a deletion only when a
// result existed; the join does not remember its results, so it emits a
// deletion whenever the key has no result now but would have had one had
// the changed side held a value before: a tombstone for a key the side
// did not hold can give a deletion of a key without a result, harmless to
// a consumer that keeps a table.
//
// Both tables must be materialized (else Build fails, ErrNotMaterialized)
// and co-partitioned, as for Join. The result is not materialized: call
// Materialize to read it or to join it again. The operator is named
// "<a>-join" unless Named; its two nodes are "<name>-this" (a's changes)
// and "<name>-other" (b's).
func TableJoin[K, V1, V2, VR any](a *Table[K, V1], b *Table[K, V2], joiner func(K, V1, V2) VR, opts ...Opt) *Table[K, VR] {
	return tableJoin(a, b, "join", opts, func(ok1, ok2 bool) bool { return ok1 && ok2 },
		func(k K, v1 V1, _ bool, v2 V2, _ bool) VR { return joiner(k, v1, v2) })
}

// TableLeftJoin is TableJoin, except that the result has an entry for
// every key of a: joiner gets found false and the zero V2 when b has none
// (found tells an absent entry from a zero value). Named
// "<a>-left-join" unless Named.
func TableLeftJoin[K, V1, V2, VR any](a *Table[K, V1], b *Table[K, V2], joiner func(k K, v1 V1, v2 V2, found bool) VR, opts ...Opt) *Table[K, VR] {
	return tableJoin(a, b, "left-join", opts, func(ok1, _ bool) bool { return ok1 },
		func(k K, v1 V1, _ bool, v2 V2, ok2 bool) VR { return joiner(k, v1, v2, ok2) })
}

// TableOuterJoin is TableJoin, except that the result has an entry for
// every key of a or b: joiner gets ok1 (ok2) false and the zero V1 (V2)
// when a (b) has none. Named "<a>-outer-join" unless Named.
func TableOuterJoin[K, V1, V2, VR any](a *Table[K, V1], b *Table[K, V2], joiner func(k K, v1 V1, ok1 bool, v2 V2, ok2 bool) VR, opts ...Opt) *Table[K, VR] {
	return tableJoin(a, b, "outer-join", opts, func(ok1, ok2 bool) bool { return ok1 || ok2 }, joiner)
}

// tableJoin adds the two nodes of a table-table join: "<name>-this", fed
// by a's changes and reading b's store, and "<name>-other", the reverse.
// has says whether the join has a result given which sides hold the key;
// joiner is called only when it has.
func tableJoin[K, V1, V2, VR any](a *Table[K, V1], b *Table[K, V2], op string, opts []Opt,
	has func(ok1, ok2 bool) bool, joiner func(k K, v1 V1, ok1 bool, v2 V2, ok2 bool) VR) *Table[K, VR] {
	d := a.d
	name := d.opName(a.name, op, opts, false)
	this, other := d.take(name+"-this"), d.take(name+"-other")
	out := &Table[K, VR]{d: d, name: name, procs: []string{this, other}}
	if a.store == nil {
		d.fail(name, notMaterialized(a.name))
	}
	if b.store == nil {
		d.fail(name, notMaterialized(b.name))
	}
	resNil := nilFunc[VR]()
	// emit sends the key's new result, or its deletion when there is none
	// now but there would be one had the changed side held a value (so one
	// may have existed before the change); could is that condition.
	emit := func(c *topology.Call, r topology.Record[K, VR], now, could bool, v1 V1, ok1 bool, v2 V2, ok2 bool) error {
		if now {
			if r.Value = joiner(r.Key, v1, ok1, v2, ok2); !resNil(r.Value) {
				return out.push(c, r, false)
			}
			var zero VR
			r.Value = zero
		}
		if !now && !could {
			return nil
		}
		return out.push(c, r, true)
	}
	joinSide(d, this, a, b.store, func(c *topology.Call, r topology.Record[K, V1], deleted bool, v2 V2, ok2 bool) error {
		o := topology.Record[K, VR]{Key: r.Key, Timestamp: r.Timestamp, Headers: r.Headers}
		return emit(c, o, has(!deleted, ok2), has(true, ok2), r.Value, !deleted, v2, ok2)
	})
	joinSide(d, other, b, a.store, func(c *topology.Call, r topology.Record[K, V2], deleted bool, v1 V1, ok1 bool) error {
		o := topology.Record[K, VR]{Key: r.Key, Timestamp: r.Timestamp, Headers: r.Headers}
		return emit(c, o, has(ok1, !deleted), has(ok1, true), v1, ok1, r.Value, !deleted)
	})
	return out
}

// joinSide adds the node name, fed by t's changes and reading the other
// side's store (nil when that side is not materialized: the build fails),
// and calls fn with each change and the other side's value for its key.
// t's own store already holds the change (Table.apply writes before it
// forwards), though fn does not need it.
func joinSide[K, V, VO any](d *Builder, name string, t *Table[K, V], other *topology.StoreRef[K, VO],
	fn func(c *topology.Call, r topology.Record[K, V], deleted bool, vo VO, found bool) error) {
	opts := []topology.NodeOpt{topology.Parents(t.procs...)}
	if other != nil {
		opts = append(opts, topology.Stores(other.Name()))
	}
	ref := topology.Node(d.b, name, func(c *topology.Call, r topology.Record[K, nullable[V]]) error {
		if other == nil {
			return nil // the build failed
		}
		vo, found, err := other.Get(c, r.Key)
		if err != nil {
			return err
		}
		return fn(c, topology.Record[K, V]{Key: r.Key, Value: r.Value.v, Timestamp: r.Timestamp, Headers: r.Headers}, r.Value.null, vo, found)
	}, opts...)
	attach(d, &t.next, func(c *topology.Call, r topology.Record[K, V], deleted bool) error {
		n := topology.Record[K, nullable[V]]{Key: r.Key, Value: nullable[V]{v: r.Value, null: deleted}, Timestamp: r.Timestamp, Headers: r.Headers}
		return ref.SendRecord(c, n)
	})
}
