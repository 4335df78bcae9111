package dsl

import (
	"github.com/exactly-stream/exactly/topology"
)

// Process feeds the stream to a hand-written low-level node: it adds
// topology.Node(name, fn) with the stream's nodes as its Parents (opts
// adds more, such as topology.Stores) and sends it every record of the
// stream. The node sends on with the handles it holds: a topology sink,
// another low-level node, or a DSL stream made by FromNode.
//
// (A low-level node cannot simply list a stream's Name in
// topology.Parents: fused operators have no node of their own, and a
// topology processor runs only the children it sends to by name.)
func Process[K, V any](s *Stream[K, V], name string, fn topology.NodeFunc[K, V], opts ...topology.NodeOpt) topology.NodeRef[K, V] {
	ref := topology.Node(s.d.b, s.d.take(name), fn, append([]topology.NodeOpt{topology.Parents(s.parents()...)}, opts...)...)
	s.feed(ref.SendRecord)
	return ref
}

// FromNode returns a DSL stream of the records a low-level node sends to
// it. parent is the node's name: a source (whose records all reach the
// stream), or a processor, which sends with the returned NodeRef. The
// stream's node is named "<parent>-stream" unless Named.
//
// A processor may change keys; the DSL cannot see that, so the stream is
// taken as keyed as its input was. After a node that re-keys, call
// Repartition (or group with GroupBy) before a stateful operator.
func FromNode[K, V any](d *Builder, parent string, opts ...Opt) (*Stream[K, V], topology.NodeRef[K, V]) {
	s := &Stream[K, V]{d: d, name: d.opName(parent, "stream", opts, false)}
	s.procs = []string{s.name}
	ref := topology.Node(d.b, s.name, topology.NodeFunc[K, V](s.push), topology.Parents(parent))
	return s, ref
}
