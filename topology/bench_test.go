package topology_test

import (
	"context"
	"testing"

	"github.com/exactly-stream/exactly/topology"
)

// BenchmarkProcess runs one record through source -> processor (Get and Put
// on a store) -> sink with JSON serdes and the in-memory fake runtime.
func BenchmarkProcess(b *testing.B) {
	top := orderPipeline(b)
	rt := newFakeRuntime()
	in := &topology.Input{
		Topic: "orders",
		Key:   []byte("o1"),
		Value: []byte(`{"id":"o1","customer":"c1","amount":5}`),
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		rt.emitted = rt.emitted[:0]
		if err := top.Dispatch(ctx, rt, in); err != nil {
			b.Fatal(err)
		}
	}
}

func benchSerde[T any](b *testing.B, s topology.Serde[T], v T) {
	b.Helper()
	b.ReportAllocs()
	for b.Loop() {
		enc, err := s.Encode(v)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Decode(enc); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSerde measures one Encode plus one Decode per serde.
func BenchmarkSerde(b *testing.B) {
	b.Run("Bytes", func(b *testing.B) { benchSerde(b, topology.Bytes(), []byte("some-record-payload")) })
	b.Run("String", func(b *testing.B) { benchSerde(b, topology.String(), "some-record-payload") })
	b.Run("Int64", func(b *testing.B) { benchSerde(b, topology.Int64(), 1234567890) })
	b.Run("JSON", func(b *testing.B) {
		benchSerde(b, topology.JSON[order](), order{ID: "o1", Customer: "c1", Amount: 5})
	})
}
