package topology

import (
	"fmt"
	"reflect"
	"time"
)

// Header is a record header.
type Header struct {
	Key   string
	Value []byte
}

// Record is what a processor receives: a decoded key and value with the
// input record's timestamp and headers.
type Record[K, V any] struct {
	Key       K
	Value     V
	Timestamp time.Time
	Headers   []Header
}

type nodeKind int

const (
	kindSource nodeKind = iota
	kindProcessor
	kindSink
	kindPunctuator
)

func (k nodeKind) String() string {
	return [...]string{"source", "processor", "sink", "punctuator"}[k]
}

// handler receives one record at a node. key and value are typed values
// (the node's input types) boxed in any.
type handler func(ctx *Call, key, value any, ts time.Time, hdrs []Header) error

type node struct {
	name    string
	kind    nodeKind
	topic   string   // sources and sinks
	parents []string // processors and sinks
	stores  []string // processors
	keyType reflect.Type
	valType reflect.Type

	// decode turns raw input into typed key and value (sources).
	decode func(k, v []byte) (key, value any, part string, err error)
	// handle runs the node on a typed record (processors and sinks).
	handle handler

	// tsFn extracts a record's timestamp (sources; nil: the record's).
	tsFn func(key, value any, recordTime time.Time) time.Time
	// repartition marks both halves of a repartition topic; partitions is
	// its partition count (0: the inputs').
	repartition bool
	partitions  int32
	// punctuators
	interval time.Duration
	ptype    PunctuationType
	punct    PunctuateFunc

	children []*node // set by Build
}

type store struct {
	name     string
	keyType  reflect.Type
	valType  reflect.Type
	windowed bool   // a WindowStore: keys are window store keys
	global   string // a GlobalStore: the topic it replicates
}

// Builder collects nodes and stores; Build validates them into a Topology.
// A Builder is not safe for concurrent use.
type Builder struct {
	nodes  []*node
	stores []*store
}

// NewBuilder returns an empty Builder.
func NewBuilder() *Builder { return &Builder{} }

func (b *Builder) add(n *node) {
	b.nodes = append(b.nodes, n)
}

func typeOf[T any]() reflect.Type { return reflect.TypeFor[T]() }

// unbox returns x as a T. A nil interface (a JSON null decoded into an
// interface type) becomes T's zero value instead of a panic.
func unbox[T any](x any) T {
	v, _ := x.(T)
	return v
}

// SourceRef is the handle of a source node.
type SourceRef[K, V any] struct{ name string }

// Name returns the node's name.
func (s SourceRef[K, V]) Name() string { return s.name }

// Source adds a source node reading topic, decoding keys and values with ks
// and vs.
func Source[K, V any](b *Builder, name, topic string, ks Serde[K], vs Serde[V], opts ...SourceOpt[K, V]) SourceRef[K, V] {
	n := &node{
		name: name, kind: kindSource, topic: topic,
		keyType: typeOf[K](), valType: typeOf[V](),
		decode: func(k, v []byte) (any, any, string, error) {
			key, err := ks.Decode(k)
			if err != nil {
				return nil, nil, "key", err
			}
			val, err := vs.Decode(v)
			if err != nil {
				return nil, nil, "value", err
			}
			return key, val, "", nil
		},
	}
	for _, o := range opts {
		o.applySource(n)
	}
	b.add(n)
	return SourceRef[K, V]{name}
}

// NodeFunc processes one record. A returned error marks the record as
// bad input (it goes to the dead-letter topic and its effects are dropped);
// it must not be used for transient conditions.
type NodeFunc[K, V any] func(ctx *Call, r Record[K, V]) error

// NodeRef is the handle of a processor node; other processors that
// list it as a child send records to it with Send.
type NodeRef[K, V any] struct{ name string }

// Name returns the node's name.
func (p NodeRef[K, V]) Name() string { return p.name }

// Send passes a record to this processor. The calling node must be one of
// its parents.
func (p NodeRef[K, V]) Send(ctx *Call, key K, value V) error {
	return ctx.send(p.name, key, value, ctx.ts, nil)
}

// SendRecord is Send with a timestamp and headers.
func (p NodeRef[K, V]) SendRecord(ctx *Call, r Record[K, V]) error {
	return ctx.send(p.name, r.Key, r.Value, r.Timestamp, r.Headers)
}

// NodeOpt configures a node added with Node or Sink.
type NodeOpt interface{ apply(*node) }

type nodeOpt func(*node)

func (o nodeOpt) apply(n *node) { o(n) }

// Parents names the nodes (sources or processors) that feed this node.
func Parents(names ...string) NodeOpt {
	return nodeOpt(func(n *node) { n.parents = append(n.parents, names...) })
}

// Stores names the stores this processor reads and writes.
func Stores(names ...string) NodeOpt {
	return nodeOpt(func(n *node) { n.stores = append(n.stores, names...) })
}

// Node adds a processor node running fn on records of type K, V.
func Node[K, V any](b *Builder, name string, fn NodeFunc[K, V], opts ...NodeOpt) NodeRef[K, V] {
	n := &node{name: name, kind: kindProcessor, keyType: typeOf[K](), valType: typeOf[V]()}
	for _, o := range opts {
		o.apply(n)
	}
	n.handle = func(ctx *Call, key, value any, ts time.Time, hdrs []Header) error {
		return fn(ctx, Record[K, V]{Key: unbox[K](key), Value: unbox[V](value), Timestamp: ts, Headers: hdrs})
	}
	b.add(n)
	return NodeRef[K, V]{name}
}

// SinkRef is the handle of a sink node.
type SinkRef[K, V any] struct {
	name  string
	topic string
}

// Name returns the node's name.
func (s SinkRef[K, V]) Name() string { return s.name }

// Topic returns the topic the sink writes.
func (s SinkRef[K, V]) Topic() string { return s.topic }

// Send encodes and produces a record to the sink's topic (inside the
// current transaction). The calling node must be one of the sink's parents.
func (s SinkRef[K, V]) Send(ctx *Call, key K, value V) error {
	return ctx.send(s.name, key, value, ctx.ts, nil)
}

// SendRecord is Send with a timestamp and headers.
func (s SinkRef[K, V]) SendRecord(ctx *Call, r Record[K, V]) error {
	return ctx.send(s.name, r.Key, r.Value, r.Timestamp, r.Headers)
}

// Sink adds a sink node writing topic, encoding with ks and vs. Its
// parents (processors, or a source to copy records through) are given with
// Parents, as for Node. A value vs encodes as nil is produced as a
// tombstone (a record with a null value).
func Sink[K, V any](b *Builder, name, topic string, ks Serde[K], vs Serde[V], opts ...NodeOpt) SinkRef[K, V] {
	n := &node{
		name: name, kind: kindSink, topic: topic,
		keyType: typeOf[K](), valType: typeOf[V](),
	}
	for _, o := range opts {
		o.apply(n)
	}
	n.handle = func(ctx *Call, key, value any, ts time.Time, hdrs []Header) error {
		k, err := ks.Encode(unbox[K](key))
		if err != nil {
			return fmt.Errorf("encoding key for sink %q: %w", name, err)
		}
		v, err := vs.Encode(unbox[V](value))
		if err != nil {
			return fmt.Errorf("encoding value for sink %q: %w", name, err)
		}
		return ctx.emit(ctx.node.topic, k, v, ts, hdrs) // the node's: ForApplication renames repartition topics
	}
	b.add(n)
	return SinkRef[K, V]{name: name, topic: topic}
}

// StoreRef is a typed handle on a named state store. Its methods are valid
// only inside a processor that declared the store with Stores.
type StoreRef[K, V any] struct {
	name string
	ks   Serde[K]
	vs   Serde[V]
}

// Name returns the store's name.
func (s StoreRef[K, V]) Name() string { return s.name }

// Serdes returns the store's key and value serdes, for reading the store's
// bytes outside a processor (processor.Get).
func (s StoreRef[K, V]) Serdes() (Serde[K], Serde[V]) { return s.ks, s.vs }

// Store declares a named state store with key and value serdes.
func Store[K, V any](b *Builder, name string, ks Serde[K], vs Serde[V]) StoreRef[K, V] {
	b.stores = append(b.stores, &store{name: name, keyType: typeOf[K](), valType: typeOf[V]()})
	return StoreRef[K, V]{name: name, ks: ks, vs: vs}
}

// GlobalStore adds a read-only store holding the latest value of every key
// of topic (normally compacted; a record with a null value deletes its
// key), replicated whole on every instance: Kafka Streams' global store,
// which a GlobalKTable reads. It is not partitioned with the tasks, so a
// node of any task reads any key (look the key up with whatever the record
// holds: a join with a key selector), and topic need not be co-partitioned
// with anything. The processor reads topic to its end before the first
// record is processed (bootstrap), then follows it in the background: a
// read sees the topic as far as the instance has read it, which is not
// synchronized with the task's inputs (as in Kafka Streams). Nodes read it
// with Get and Range after declaring it with Stores; Put and Delete on it
// are a *UsageError. topic must not also be read by a Source.
func GlobalStore[K, V any](b *Builder, name, topic string, ks Serde[K], vs Serde[V]) StoreRef[K, V] {
	b.stores = append(b.stores, &store{name: name, keyType: typeOf[K](), valType: typeOf[V](), global: topic})
	return StoreRef[K, V]{name: name, ks: ks, vs: vs}
}

// Get reads key, seeing this transaction's own earlier writes.
func (s StoreRef[K, V]) Get(ctx *Call, key K) (V, bool, error) {
	var zero V
	k, err := s.ks.Encode(key)
	if err != nil {
		return zero, false, fmt.Errorf("encoding key for store %q: %w", s.name, err)
	}
	b, ok, err := ctx.get(s.name, k)
	if err != nil || !ok {
		return zero, false, err
	}
	v, err := s.vs.Decode(b)
	if err != nil {
		return zero, false, fmt.Errorf("decoding value from store %q: %w", s.name, err)
	}
	return v, true, nil
}

// Put writes key. The write becomes durable only if the transaction commits.
//
// A value the store's serde encodes as nil (a tombstone: JSON encodes a nil
// pointer so) deletes key, as Delete does: the changelog would carry it as a
// tombstone, which a restore applies as a delete, so the local store must
// not keep it either.
func (s StoreRef[K, V]) Put(ctx *Call, key K, value V) error {
	k, err := s.ks.Encode(key)
	if err != nil {
		return fmt.Errorf("encoding key for store %q: %w", s.name, err)
	}
	v, err := s.vs.Encode(value)
	if err != nil {
		return fmt.Errorf("encoding value for store %q: %w", s.name, err)
	}
	if v == nil {
		return ctx.del(s.name, k)
	}
	return ctx.put(s.name, k, v)
}

// Range calls fn in key order for every entry whose encoded key is in
// [lo, hi) (nil lo: from the first key, nil hi: to the last), decoded with
// the store's serdes, until fn returns false. The bounds are encoded keys
// because the order is that of the encoded bytes, which a serde need not
// keep (topology.Int64 keeps it for non-negative numbers, JSON does not).
// Writes made while Range runs need not be seen by it; a node that writes
// what it ranges over collects first.
func (s StoreRef[K, V]) Range(ctx *Call, lo, hi []byte, fn func(key K, value V) bool) error {
	var derr error
	err := ctx.rangeKeys(s.name, lo, hi, func(bk, bv []byte) bool {
		k, err := s.ks.Decode(bk)
		if err != nil {
			derr = fmt.Errorf("decoding key from store %q: %w", s.name, err)
			return false
		}
		v, err := s.vs.Decode(bv)
		if err != nil {
			derr = fmt.Errorf("decoding value from store %q: %w", s.name, err)
			return false
		}
		return fn(k, v)
	})
	if err != nil {
		return err
	}
	return derr
}

// Raw returns a handle on the same store that reads and writes its bytes
// as they are (the Bytes serde): for a node that compares or forwards
// stored values without decoding them. It declares nothing; the node
// still lists the store in Stores.
func (s StoreRef[K, V]) Raw() StoreRef[[]byte, []byte] {
	return StoreRef[[]byte, []byte]{name: s.name, ks: Bytes(), vs: Bytes()}
}

// Delete removes key.
func (s StoreRef[K, V]) Delete(ctx *Call, key K) error {
	k, err := s.ks.Encode(key)
	if err != nil {
		return fmt.Errorf("encoding key for store %q: %w", s.name, err)
	}
	return ctx.del(s.name, k)
}
