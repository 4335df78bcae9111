package topologytest

import (
	"github.com/exactly-stream/exactly/state"
	"github.com/exactly-stream/exactly/topology"
)

// InputTopic pipes typed records into one input topic.
type InputTopic[K, V any] struct {
	d     *Driver
	topic string
	ks    topology.Serde[K]
	vs    topology.Serde[V]
}

// Input returns a typed writer of topic.
func Input[K, V any](d *Driver, topic string, ks topology.Serde[K], vs topology.Serde[V]) InputTopic[K, V] {
	return InputTopic[K, V]{d: d, topic: topic, ks: ks, vs: vs}
}

// Pipe runs key and value, at the driver's wall-clock time, into the
// partition key's bytes hash to.
func (in InputTopic[K, V]) Pipe(key K, value V) {
	in.d.t.Helper()
	in.PipeRecord(topology.Record[K, V]{Key: key, Value: value, Timestamp: in.d.now})
}

// PipeRecord runs r into the partition its key's bytes hash to.
func (in InputTopic[K, V]) PipeRecord(r topology.Record[K, V]) {
	in.d.t.Helper()
	k, v := in.encode(r.Key, r.Value)
	in.d.PipeRaw(in.topic, Record{Partition: in.d.Partition(k), Key: k, Value: v, Timestamp: r.Timestamp, Headers: r.Headers})
}

// PipeTo runs r into partition part.
func (in InputTopic[K, V]) PipeTo(part int32, r topology.Record[K, V]) {
	in.d.t.Helper()
	k, v := in.encode(r.Key, r.Value)
	in.d.PipeRaw(in.topic, Record{Partition: part, Key: k, Value: v, Timestamp: r.Timestamp, Headers: r.Headers})
}

func (in InputTopic[K, V]) encode(key K, value V) ([]byte, []byte) {
	in.d.t.Helper()
	k, err := in.ks.Encode(key)
	if err != nil {
		in.d.fatalf("encoding key for %s: %v", in.topic, err)
	}
	v, err := in.vs.Encode(value)
	if err != nil {
		in.d.fatalf("encoding value for %s: %v", in.topic, err)
	}
	return k, v
}

// OutputTopic reads the typed records produced to one topic, each once.
type OutputTopic[K, V any] struct {
	d     *Driver
	topic string
	ks    topology.Serde[K]
	vs    topology.Serde[V]
}

// Output returns a typed reader of topic. Readers of one topic share its
// read position.
func Output[K, V any](d *Driver, topic string, ks topology.Serde[K], vs topology.Serde[V]) OutputTopic[K, V] {
	return OutputTopic[K, V]{d: d, topic: topic, ks: ks, vs: vs}
}

// Len returns how many records are produced and not yet read.
func (o OutputTopic[K, V]) Len() int { return len(o.d.topics[o.topic]) - o.d.read[o.topic] }

// Read returns the next unread record; ok is false when there is none.
func (o OutputTopic[K, V]) Read() (r topology.Record[K, V], ok bool) {
	o.d.t.Helper()
	recs := o.d.topics[o.topic]
	i := o.d.read[o.topic]
	if i >= len(recs) {
		return r, false
	}
	o.d.read[o.topic] = i + 1
	return o.decode(recs[i]), true
}

// ReadAll returns every unread record, in order.
func (o OutputTopic[K, V]) ReadAll() []topology.Record[K, V] {
	o.d.t.Helper()
	var out []topology.Record[K, V]
	for {
		r, ok := o.Read()
		if !ok {
			return out
		}
		out = append(out, r)
	}
}

// ReadKeyValues returns every unread record's key and value as a map, the
// last value per key winning (a table's view of the topic).
func (o OutputTopic[K, V]) ReadKeyValues() map[string]V {
	o.d.t.Helper()
	out := make(map[string]V)
	i := o.d.read[o.topic]
	for _, raw := range o.d.topics[o.topic][i:] {
		out[string(raw.Key)] = o.decode(raw).Value
	}
	o.d.read[o.topic] = len(o.d.topics[o.topic])
	return out
}

func (o OutputTopic[K, V]) decode(raw Record) topology.Record[K, V] {
	o.d.t.Helper()
	var r topology.Record[K, V]
	var err error
	if r.Key, err = o.ks.Decode(raw.Key); err != nil {
		o.d.fatalf("decoding key from %s: %v", o.topic, err)
	}
	if r.Value, err = o.vs.Decode(raw.Value); err != nil {
		o.d.fatalf("decoding value from %s: %v", o.topic, err)
	}
	r.Timestamp, r.Headers = raw.Timestamp, raw.Headers
	return r
}

// Get reads key from store, in the partition key hashes to when the store
// is keyed like its input, else in whichever partition holds it (a store's
// partition is its task's; the driver looks through all of them).
func Get[K, V any](d *Driver, store topology.StoreRef[K, V], key K) (V, bool) {
	d.t.Helper()
	ks, vs := store.Serdes()
	for p := range d.opts.Partitions {
		v, ok, err := state.NewView(d.db, store.Name(), p, ks, vs).Get(key)
		if err != nil {
			d.fatalf("reading store %s partition %d: %v", store.Name(), p, err)
		}
		if ok {
			return v, true
		}
	}
	var zero V
	return zero, false
}

// All returns every entry of store over all partitions, keyed by the key's
// encoded bytes as a string (typed keys need not be comparable).
func All[K, V any](d *Driver, store topology.StoreRef[K, V]) map[string]V {
	d.t.Helper()
	ks, vs := store.Serdes()
	out := make(map[string]V)
	for p := range d.opts.Partitions {
		seq, done := state.NewView(d.db, store.Name(), p, ks, vs).All()
		for k, v := range seq {
			kb, err := ks.Encode(k)
			if err != nil {
				d.fatalf("encoding key of store %s: %v", store.Name(), err)
			}
			out[string(kb)] = v
		}
		if err := done(); err != nil {
			d.fatalf("reading store %s partition %d: %v", store.Name(), p, err)
		}
	}
	return out
}
