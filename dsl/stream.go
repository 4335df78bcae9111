package dsl

import (
	"slices"
	"strconv"

	"github.com/exactly-stream/exactly/topology"
)

// consumer is a fused operator: it runs inside the handler of the
// low-level node that produced the record, as a plain typed call.
type consumer[K, V any] func(c *topology.Call, r topology.Record[K, V]) error

// Stream is a typed stream of records. Operators that keep the key and
// value types are methods; those that change them are functions (Map,
// MapValues, FlatMap, FlatMapValues, SelectKey), since Go methods take no
// type parameters.
//
// Stateless operators are fused: they add no low-level node of their own
// (except the first one after a source) but run as typed function calls
// inside the node that produced the record, so a chain costs no boxing
// and no allocation per operator. Every operator still has a name
// (Named, or derived: see Named and the package documentation).
type Stream[K, V any] struct {
	d    *Builder
	name string
	// The records of the stream come from these low-level nodes. Sources
	// run their children themselves; processors run next in their
	// handlers. A stream with sources is materialized (gets a node) as
	// soon as an operator is applied to it.
	srcs, procs []string
	rekeyed     bool // the key changed since the records were partitioned
	next        []consumer[K, V]
}

// StreamFrom adds a source reading topic, decoding keys with ks and values
// with vs, and returns its stream. name names the source node; opts are
// the source's (topology.WithTimestamp: the records' event time, which
// windows use). (The function cannot be called Stream: that is the type's
// name.)
func StreamFrom[K, V any](d *Builder, name, topic string, ks topology.Serde[K], vs topology.Serde[V], opts ...topology.SourceOpt[K, V]) *Stream[K, V] {
	src := topology.Source(d.b, d.take(name), topic, ks, vs, opts...)
	return &Stream[K, V]{d: d, name: name, srcs: []string{src.Name()}}
}

// Name returns the operator's name.
func (s *Stream[K, V]) Name() string { return s.name }

func (s *Stream[K, V]) push(c *topology.Call, r topology.Record[K, V]) error {
	for _, f := range s.next {
		if err := f(c, r); err != nil {
			return err
		}
	}
	return nil
}

// parents returns the low-level nodes a node fed by s lists as Parents.
func (s *Stream[K, V]) parents() []string {
	return append(slices.Clone(s.srcs), s.procs...)
}

// feed sends every record of s to send, the Send of a low-level node that
// lists s.parents(): sources reach it by themselves, processors through
// the send.
func (s *Stream[K, V]) feed(send consumer[K, V]) {
	if len(s.procs) > 0 {
		attach(s.d, &s.next, send)
	}
}

// derive adds a stateless operator whose output is out, fed by fn.
func derive[K, V, K2, V2 any](s *Stream[K, V], op string, opts []Opt, rekeys bool,
	mk func(out *Stream[K2, V2]) consumer[K, V]) *Stream[K2, V2] {
	name := s.d.opName(s.name, op, opts, false)
	out := &Stream[K2, V2]{d: s.d, name: name, rekeyed: s.rekeyed || rekeys}
	fn := mk(out)
	if len(s.srcs) == 0 {
		out.procs = slices.Clone(s.procs)
		attach(s.d, &s.next, fn)
		return out
	}
	ref := topology.Node(s.d.b, name, topology.NodeFunc[K, V](fn), topology.Parents(s.parents()...))
	s.feed(ref.SendRecord)
	out.procs = []string{name}
	return out
}

// Filter keeps the records for which keep returns true.
func (s *Stream[K, V]) Filter(keep func(K, V) bool, opts ...Opt) *Stream[K, V] {
	return derive(s, "filter", opts, false, func(out *Stream[K, V]) consumer[K, V] {
		return func(c *topology.Call, r topology.Record[K, V]) error {
			if !keep(r.Key, r.Value) {
				return nil
			}
			return out.push(c, r)
		}
	})
}

// FilterNot drops the records for which drop returns true.
func (s *Stream[K, V]) FilterNot(drop func(K, V) bool, opts ...Opt) *Stream[K, V] {
	return derive(s, "filter-not", opts, false, func(out *Stream[K, V]) consumer[K, V] {
		return func(c *topology.Call, r topology.Record[K, V]) error {
			if drop(r.Key, r.Value) {
				return nil
			}
			return out.push(c, r)
		}
	})
}

// Peek calls fn on every record and passes the record on unchanged.
func (s *Stream[K, V]) Peek(fn func(K, V), opts ...Opt) *Stream[K, V] {
	return derive(s, "peek", opts, false, func(out *Stream[K, V]) consumer[K, V] {
		return func(c *topology.Call, r topology.Record[K, V]) error {
			fn(r.Key, r.Value)
			return out.push(c, r)
		}
	})
}

// Branch splits the stream by predicates: a record goes to the stream of
// the first predicate it satisfies, and is dropped if it satisfies none
// (as Kafka Streams' split). Branch i is named "<name>-<i>" after the
// operator's name.
func (s *Stream[K, V]) Branch(preds []func(K, V) bool, opts ...Opt) []*Stream[K, V] {
	var outs []*Stream[K, V]
	split := derive(s, "branch", opts, false, func(out *Stream[K, V]) consumer[K, V] { return out.push })
	for i := range preds {
		outs = append(outs, &Stream[K, V]{
			d: s.d, name: s.d.take(split.name + "-" + strconv.Itoa(i)), procs: split.procs, rekeyed: split.rekeyed,
		})
	}
	attach(split.d, &split.next, func(c *topology.Call, r topology.Record[K, V]) error {
		for i, p := range preds {
			if p(r.Key, r.Value) {
				return outs[i].push(c, r)
			}
		}
		return nil
	})
	return outs
}

// Merge returns the union of s and other. It is re-keyed if either is.
func (s *Stream[K, V]) Merge(other *Stream[K, V], opts ...Opt) *Stream[K, V] {
	out := &Stream[K, V]{
		d: s.d, name: s.d.opName(s.name, "merge", opts, false),
		rekeyed: s.rekeyed || other.rekeyed,
	}
	for _, in := range []*Stream[K, V]{s, other} {
		for _, n := range in.srcs {
			if !slices.Contains(out.srcs, n) {
				out.srcs = append(out.srcs, n)
			}
		}
		for _, n := range in.procs {
			if !slices.Contains(out.procs, n) {
				out.procs = append(out.procs, n)
			}
		}
		in.feed(out.push)
	}
	return out
}

// To writes the stream to topic, encoding with ks and vs, inside the
// transaction. A value vs encodes as nil is produced as a tombstone. The
// sink node is named "<name>-to" unless Named.
func (s *Stream[K, V]) To(topic string, ks topology.Serde[K], vs topology.Serde[V], opts ...Opt) {
	name := s.d.opName(s.name, "to", opts, false)
	sink := topology.Sink(s.d.b, name, topic, ks, vs, topology.Parents(s.parents()...))
	s.feed(sink.SendRecord)
}

// KeyValue is one output record of FlatMap.
type KeyValue[K, V any] struct {
	Key   K
	Value V
}

// Map turns each record into a new key and value. The result is re-keyed:
// a stateful operator after it needs a repartition.
func Map[K, V, K2, V2 any](s *Stream[K, V], fn func(K, V) (K2, V2), opts ...Opt) *Stream[K2, V2] {
	return derive(s, "map", opts, true, func(out *Stream[K2, V2]) consumer[K, V] {
		return func(c *topology.Call, r topology.Record[K, V]) error {
			k, v := fn(r.Key, r.Value)
			return out.push(c, topology.Record[K2, V2]{Key: k, Value: v, Timestamp: r.Timestamp, Headers: r.Headers})
		}
	})
}

// MapValues turns each value into a new one; the key stays, so the result
// is not re-keyed.
func MapValues[K, V, V2 any](s *Stream[K, V], fn func(K, V) V2, opts ...Opt) *Stream[K, V2] {
	return derive(s, "map-values", opts, false, func(out *Stream[K, V2]) consumer[K, V] {
		return func(c *topology.Call, r topology.Record[K, V]) error {
			return out.push(c, topology.Record[K, V2]{Key: r.Key, Value: fn(r.Key, r.Value), Timestamp: r.Timestamp, Headers: r.Headers})
		}
	})
}

// SelectKey gives each record a new key computed from it. The result is
// re-keyed.
func SelectKey[K, V, K2 any](s *Stream[K, V], fn func(K, V) K2, opts ...Opt) *Stream[K2, V] {
	return derive(s, "select-key", opts, true, func(out *Stream[K2, V]) consumer[K, V] {
		return func(c *topology.Call, r topology.Record[K, V]) error {
			return out.push(c, topology.Record[K2, V]{Key: fn(r.Key, r.Value), Value: r.Value, Timestamp: r.Timestamp, Headers: r.Headers})
		}
	})
}

// FlatMap turns each record into zero or more records, in order. The
// result is re-keyed. fn's slice is read before fn is called again, so fn
// may reuse it.
func FlatMap[K, V, K2, V2 any](s *Stream[K, V], fn func(K, V) []KeyValue[K2, V2], opts ...Opt) *Stream[K2, V2] {
	return derive(s, "flat-map", opts, true, func(out *Stream[K2, V2]) consumer[K, V] {
		return func(c *topology.Call, r topology.Record[K, V]) error {
			for _, kv := range fn(r.Key, r.Value) {
				err := out.push(c, topology.Record[K2, V2]{Key: kv.Key, Value: kv.Value, Timestamp: r.Timestamp, Headers: r.Headers})
				if err != nil {
					return err
				}
			}
			return nil
		}
	})
}

// FlatMapValues turns each value into zero or more values with the same
// key, in order; the result is not re-keyed. fn may reuse its slice.
func FlatMapValues[K, V, V2 any](s *Stream[K, V], fn func(K, V) []V2, opts ...Opt) *Stream[K, V2] {
	return derive(s, "flat-map-values", opts, false, func(out *Stream[K, V2]) consumer[K, V] {
		return func(c *topology.Call, r topology.Record[K, V]) error {
			for _, v := range fn(r.Key, r.Value) {
				err := out.push(c, topology.Record[K, V2]{Key: r.Key, Value: v, Timestamp: r.Timestamp, Headers: r.Headers})
				if err != nil {
					return err
				}
			}
			return nil
		}
	})
}
