package topology

import (
	"fmt"
	"slices"
)

// RepartitionRef is the handle of a repartition topic: its parents send
// records to it with Send, and it is the source, by its Name, of the nodes
// that list it with Parents.
type RepartitionRef[K, V any] struct{ name string }

// Name returns the name of the repartition's source half: children list it
// with Parents.
func (r RepartitionRef[K, V]) Name() string { return r.name }

// Send produces a record to the repartition topic (inside the current
// transaction), keyed by key: it is read back by the task that owns key's
// partition. The calling node must be one of the repartition's parents.
func (r RepartitionRef[K, V]) Send(ctx *Call, key K, value V) error {
	return ctx.send(repartitionSink(r.name), key, value, ctx.ts, nil)
}

// SendRecord is Send with a timestamp and headers.
func (r RepartitionRef[K, V]) SendRecord(ctx *Call, rec Record[K, V]) error {
	return ctx.send(repartitionSink(r.name), rec.Key, rec.Value, rec.Timestamp, rec.Headers)
}

// Repartition adds a repartition topic: records its parents (given with
// Parents) send to it are produced, partitioned by key, to an internal
// topic and read back as a source named name. The runtime names the topic
// RepartitionTopic(application, name) and creates it with the input
// topics' partition count unless Partitions says otherwise. name is
// required and must stay the same across versions of an application: it
// names the topic, so renaming it strands the records in flight (Kafka's
// KIP-1111 lesson).
//
// The source half is the node name; the sink half is a node named
// name + "/in", which is what Describe shows its parents feeding.
func Repartition[K, V any](b *Builder, name string, ks Serde[K], vs Serde[V], opts ...NodeOpt) RepartitionRef[K, V] {
	topic := RepartitionTopic("", name)
	Sink(b, repartitionSink(name), topic, ks, vs, opts...)
	in := b.nodes[len(b.nodes)-1]
	src := Source(b, name, topic, ks, vs)
	out := b.nodes[len(b.nodes)-1]
	in.repartition, out.repartition, out.partitions = true, true, in.partitions
	return RepartitionRef[K, V](src)
}

func repartitionSink(name string) string { return name + "/in" }

// Partitions sets the partition count of a repartition topic. The default
// is the input topics' count.
func Partitions(n int32) NodeOpt { return nodeOpt(func(nd *node) { nd.partitions = n }) }

// RepartitionTopic returns the topic of repartition name in application
// app: <app>-<name>-repartition (<name>-repartition when app is empty).
func RepartitionTopic(app, name string) string {
	if app == "" {
		return name + "-repartition"
	}
	return app + "-" + name + "-repartition"
}

// RepartitionInfo describes a repartition topic.
type RepartitionInfo struct {
	Name       string
	Topic      string
	Partitions int32 // 0: the input topics' count
}

// Repartitions returns the repartition topics in declaration order.
func (t *Topology) Repartitions() []RepartitionInfo {
	var out []RepartitionInfo
	for _, n := range t.nodes {
		if n.kind == kindSource && n.repartition {
			out = append(out, RepartitionInfo{n.name, n.topic, n.partitions})
		}
	}
	return out
}

// IsRepartition reports whether topic is one of the topology's repartition
// topics.
func (t *Topology) IsRepartition(topic string) bool {
	n := t.byTopic[topic]
	return n != nil && n.repartition
}

// ForApplication returns the topology with its repartition topics named
// for application app (RepartitionTopic(app, name)). A topology without
// repartition topics is returned as it is. Runtimes call it with their
// application ID (the processor: its group) before anything else.
func (t *Topology) ForApplication(app string) (*Topology, error) {
	if len(t.Repartitions()) == 0 {
		return t, nil
	}
	b := &Builder{nodes: cloneNodes(t.nodes), stores: slices.Clone(t.stores)}
	for _, n := range b.nodes {
		if n.repartition {
			name := n.name
			if n.kind == kindSink {
				name = name[:len(name)-len("/in")]
			}
			n.topic = RepartitionTopic(app, name)
		}
	}
	nt, err := b.Build()
	if err != nil {
		return nil, fmt.Errorf("naming repartition topics for application %q: %w", app, err)
	}
	return nt, nil
}
