package dsl

import (
	"reflect"

	"github.com/exactly-stream/exactly/topology"
)

// change is a fused table operator: r is a key's new value, or its
// deletion when deleted is true (r.Value is then the zero value).
type change[K, V any] func(c *topology.Call, r topology.Record[K, V], deleted bool) error

// changeOld is a change with the key's value before it (had false: the
// key had none), for an operator that must undo what the old value did
// (the foreign-key join unsubscribes the old foreign key).
type changeOld[K, V any] func(c *topology.Call, r topology.Record[K, V], deleted bool, old V, had bool) error

// Table is a typed changelog stream: the latest value per key, with
// deletions. Tables made by TableFrom and by the aggregations are
// materialized in a store (changelog-backed, as every store is); tables
// derived from them with Filter and MapTableValues are not (they forward
// changes only) unless Materialize gives them a store.
type Table[K, V any] struct {
	d     *Builder
	name  string
	procs []string // the low-level nodes that produce the changes
	store *topology.StoreRef[K, V]
	wins  any // a windowed aggregation's topology.WindowStoreRef (see WindowStoreOf)
	next  []change[K, V]
	// nextOld get the old value too; only a materialized table has them
	// (apply reads the old value, and only when there are any).
	nextOld []changeOld[K, V]
}

// WindowStoreOf returns the window store of a windowed table (made by a
// WindowedBy or SessionWindowedBy aggregation), for reading it in a
// hand-written node (declare it with topology.Stores) or from outside
// (processor.FetchWindows, the HTTP state API); ok is false for another
// table. (Table.Store is for key-value stores.)
func WindowStoreOf[K, A any](t *Table[topology.Windowed[K], A]) (ref topology.WindowStoreRef[K, A], ok bool) {
	ref, ok = t.wins.(topology.WindowStoreRef[K, A])
	return ref, ok
}

// Name returns the operator's name. For a materialized table it is also
// the store's name.
func (t *Table[K, V]) Name() string { return t.name }

// Store returns the table's store, for reading it in a hand-written node
// (declare it with topology.Stores) or from outside (processor.Get, the
// HTTP state API); ok is false for a table that is not materialized.
func (t *Table[K, V]) Store() (ref topology.StoreRef[K, V], ok bool) {
	if t.store == nil {
		return ref, false
	}
	return *t.store, true
}

func (t *Table[K, V]) push(c *topology.Call, r topology.Record[K, V], deleted bool) error {
	for _, f := range t.next {
		if err := f(c, r, deleted); err != nil {
			return err
		}
	}
	return nil
}

// apply writes a change to the store of a materialized table (a deletion
// deletes the key) and forwards it, to nextOld with the value it replaced.
func (t *Table[K, V]) apply(c *topology.Call, r topology.Record[K, V], deleted bool) error {
	var old V
	var had bool
	var err error
	if len(t.nextOld) > 0 {
		if old, had, err = t.store.Get(c, r.Key); err != nil {
			return err
		}
	}
	if deleted {
		err = t.store.Delete(c, r.Key)
	} else {
		err = t.store.Put(c, r.Key, r.Value)
	}
	if err != nil {
		return err
	}
	if err := t.push(c, r, deleted); err != nil {
		return err
	}
	for _, f := range t.nextOld {
		if err := f(c, r, deleted, old, had); err != nil {
			return err
		}
	}
	return nil
}

// ToStream returns the table's changes as a stream: an update as its new
// value, a deletion as a record with the zero value (which a JSON serde of
// a pointer, map, slice or interface type produces as a tombstone, as in
// Kafka Streams).
func (t *Table[K, V]) ToStream(opts ...Opt) *Stream[K, V] {
	out := &Stream[K, V]{d: t.d, name: t.d.opName(t.name, "to-stream", opts, false), procs: t.procs}
	attach(t.d, &t.next, func(c *topology.Call, r topology.Record[K, V], _ bool) error {
		return out.push(c, r)
	})
	return out
}

// Filter returns the table of the entries for which keep returns true: an
// update that fails keep is forwarded as a deletion, as Kafka Streams
// does.
func (t *Table[K, V]) Filter(keep func(K, V) bool, opts ...Opt) *Table[K, V] {
	out := &Table[K, V]{d: t.d, name: t.d.opName(t.name, "filter", opts, false), procs: t.procs}
	attach(t.d, &t.next, func(c *topology.Call, r topology.Record[K, V], deleted bool) error {
		if !deleted && !keep(r.Key, r.Value) {
			var zero V
			r.Value, deleted = zero, true
		}
		return out.push(c, r, deleted)
	})
	return out
}

// MapTableValues returns the table of fn applied to each value; a
// deletion stays a deletion. (It is not called MapValues: that is the
// stream's.)
func MapTableValues[K, V, V2 any](t *Table[K, V], fn func(K, V) V2, opts ...Opt) *Table[K, V2] {
	out := &Table[K, V2]{d: t.d, name: t.d.opName(t.name, "map-values", opts, false), procs: t.procs}
	attach(t.d, &t.next, func(c *topology.Call, r topology.Record[K, V], deleted bool) error {
		o := topology.Record[K, V2]{Key: r.Key, Timestamp: r.Timestamp, Headers: r.Headers}
		if !deleted {
			o.Value = fn(r.Key, r.Value)
		}
		return out.push(c, o, deleted)
	})
	return out
}

// Materialize writes the table into a store of its own, named after the
// operator ("<name>-materialize" unless Named; its changelog follows), so
// that a hand-written node or a query can read it: a derived table (Filter,
// MapTableValues) has no store. A table that already has one is returned
// as it is.
func (t *Table[K, V]) Materialize(ks topology.Serde[K], vs topology.Serde[V], opts ...Opt) *Table[K, V] {
	if t.store != nil {
		return t
	}
	name := t.d.opName(t.name, "materialize", opts, true)
	store := topology.Store(t.d.b, name, ks, vs)
	out := &Table[K, V]{d: t.d, name: name, procs: []string{name}, store: &store}
	ref := topology.Node(t.d.b, name, func(c *topology.Call, r topology.Record[K, nullable[V]]) error {
		return out.apply(c, topology.Record[K, V]{Key: r.Key, Value: r.Value.v, Timestamp: r.Timestamp, Headers: r.Headers}, r.Value.null)
	}, topology.Parents(t.procs...), topology.Stores(name))
	attach(t.d, &t.next, func(c *topology.Call, r topology.Record[K, V], deleted bool) error {
		n := topology.Record[K, nullable[V]]{Key: r.Key, Value: nullable[V]{v: r.Value, null: deleted}, Timestamp: r.Timestamp, Headers: r.Headers}
		return ref.SendRecord(c, n)
	})
	return out
}

// nullable is a table source's value: a Kafka null (a tombstone) is told
// apart from whatever the value serde decodes from nil.
type nullable[V any] struct {
	v    V
	null bool
}

type nullableSerde[V any] struct{ vs topology.Serde[V] }

func (s nullableSerde[V]) Encode(n nullable[V]) ([]byte, error) {
	if n.null {
		return nil, nil
	}
	return s.vs.Encode(n.v)
}

func (s nullableSerde[V]) Decode(b []byte) (nullable[V], error) {
	if b == nil {
		return nullable[V]{null: true}, nil
	}
	v, err := s.vs.Decode(b)
	return nullable[V]{v: v}, err
}

// TableFrom reads topic (normally compacted) into a table materialized in
// the store name (changelog <group>-<name>-changelog): a record puts its
// key, a tombstone (a record with a null value) deletes it. The source
// node is named "<name>-source", the node writing the store name.
func TableFrom[K, V any](d *Builder, name, topic string, ks topology.Serde[K], vs topology.Serde[V]) *Table[K, V] {
	d.take(name)
	src := topology.Source(d.b, d.take(name+"-source"), topic, ks, topology.Serde[nullable[V]](nullableSerde[V]{vs}))
	store := topology.Store(d.b, name, ks, vs)
	t := &Table[K, V]{d: d, name: name, procs: []string{name}, store: &store}
	isNil := nilFunc[V]()
	topology.Node(d.b, name, func(c *topology.Call, r topology.Record[K, nullable[V]]) error {
		out := topology.Record[K, V]{Key: r.Key, Value: r.Value.v, Timestamp: r.Timestamp, Headers: r.Headers}
		return t.apply(c, out, r.Value.null || isNil(out.Value))
	}, topology.Parents(src.Name()), topology.Stores(name))
	return t
}

// nilFunc returns a function telling whether a T is nil (a null in Kafka's
// sense): true only for nil pointers, maps, slices, channels, functions
// and interfaces; a T of another kind is never nil. The kind is looked at
// once, not per record.
func nilFunc[T any]() func(T) bool {
	switch reflect.TypeFor[T]().Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Chan, reflect.Func, reflect.Interface, reflect.UnsafePointer:
		return func(v T) bool { return reflect.ValueOf(&v).Elem().IsNil() }
	}
	return func(T) bool { return false }
}
