package topology_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/exactly-stream/exactly/topology"
)

// dispatchRuntime is a minimal Runtime for the dispatch benchmarks: one
// value per key, written in place; emits are counted.
type dispatchRuntime struct {
	state map[string][]byte
	emits int
}

func (r *dispatchRuntime) Get(_ string, key []byte) ([]byte, bool, error) {
	v, ok := r.state[string(key)]
	return v, ok, nil
}

func (r *dispatchRuntime) Put(_ string, key, value []byte) error {
	r.state[string(key)] = value
	return nil
}

func (r *dispatchRuntime) Delete(_ string, key []byte) error {
	delete(r.state, string(key))
	return nil
}

func (r *dispatchRuntime) Range(string, []byte, []byte, func(k, v []byte) bool) error {
	return errors.New("dispatchRuntime: no ranges")
}

func (r *dispatchRuntime) Emit(string, []byte, []byte, time.Time, []topology.Header) error {
	r.emits++
	return nil
}

// dispatchTopologies are graphs with byte serdes, so that the benchmarks
// measure the per-record dispatch (decode call, Context, node calls, store
// checks, sink encode call) and not a codec.
func dispatchTopologies(b *testing.B) map[string]*topology.Topology {
	build := func(fn func(*topology.Builder)) *topology.Topology {
		bl := topology.NewBuilder()
		fn(bl)
		t, err := bl.Build()
		if err != nil {
			b.Fatal(err)
		}
		return t
	}
	by := topology.Bytes()
	return map[string]*topology.Topology{
		// source -> sink: the least a record costs.
		"copy": build(func(bl *topology.Builder) {
			src := topology.Source(bl, "in", "in", by, by)
			topology.Sink(bl, "out", "out", by, by, topology.Parents(src.Name()))
		}),
		// source -> processor (Get, Put, Send) -> sink: the order
		// service's shape.
		"get-put-send": build(func(bl *topology.Builder) {
			src := topology.Source(bl, "in", "in", by, by)
			st := topology.Store(bl, "st", by, by)
			out := topology.Sink(bl, "out", "out", by, by, topology.Parents("p"))
			topology.Node(bl, "p", func(ctx *topology.Call, r topology.Record[[]byte, []byte]) error {
				if _, _, err := st.Get(ctx, r.Key); err != nil {
					return err
				}
				if err := st.Put(ctx, r.Key, r.Value); err != nil {
					return err
				}
				return out.Send(ctx, r.Key, r.Value)
			}, topology.Parents(src.Name()), topology.Stores(st.Name()))
		}),
		// source -> three processors in a row -> sink.
		"chain-3": build(func(bl *topology.Builder) {
			src := topology.Source(bl, "in", "in", by, by)
			out := topology.Sink(bl, "out", "out", by, by, topology.Parents("p3"))
			p3 := topology.Node(bl, "p3", func(ctx *topology.Call, r topology.Record[[]byte, []byte]) error {
				return out.Send(ctx, r.Key, r.Value)
			}, topology.Parents("p2"))
			p2 := topology.Node(bl, "p2", func(ctx *topology.Call, r topology.Record[[]byte, []byte]) error {
				return p3.Send(ctx, r.Key, r.Value)
			}, topology.Parents("p1"))
			topology.Node(bl, "p1", func(ctx *topology.Call, r topology.Record[[]byte, []byte]) error {
				return p2.Send(ctx, r.Key, r.Value)
			}, topology.Parents(src.Name()))
		}),
	}
}

// BenchmarkDispatch measures Topology.Process per record with byte serdes.
func BenchmarkDispatch(b *testing.B) {
	for _, name := range []string{"copy", "get-put-send", "chain-3"} {
		topo := dispatchTopologies(b)[name]
		b.Run(name, func(b *testing.B) {
			rt := &dispatchRuntime{state: map[string][]byte{}}
			in := &topology.Input{Topic: "in", Key: []byte("customer-42"), Value: make([]byte, 120)}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if err := topo.Dispatch(ctx, rt, in); err != nil {
					b.Fatal(err)
				}
			}
			if rt.emits != b.N {
				b.Fatalf("%d emits for %d records", rt.emits, b.N)
			}
		})
	}
}
