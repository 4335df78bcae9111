package dsl_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/exactly-stream/exactly/dsl"
	"github.com/exactly-stream/exactly/topology"
	"github.com/exactly-stream/exactly/topologytest"
)

// BenchmarkTumblingCountEmitFinal measures the per-record cost of a
// tumbling 1 s Count over 100,000 and 1,000,000 keys, each record one
// transaction on the test driver (in-memory Pebble): stream time moves
// 1 ms per record, so about 1000 windows open and close per 1000 records.
// "final" emits each window once when it closes (and deletes it);
// "updates-expiry" emits every update and expires windows a second after
// they end (Retention): the cost of retention expiry. "count" is a plain
// GroupByKey().Count() on the same driver, for the driver's share.
func BenchmarkTumblingCountEmitFinal(b *testing.B) {
	for _, keys := range []int{100_000, 1_000_000} {
		names := make([][]byte, keys)
		for i := range names {
			names[i] = []byte("key-" + strconv.Itoa(i*7919%keys))
		}
		run := func(b *testing.B, build func(g *dsl.Grouped[string, string])) {
			d := dsl.New(nil)
			build(dsl.StreamFrom(d, "in", "in", str, str).GroupByKey(str, str))
			top, err := d.Build()
			if err != nil {
				b.Fatal(err)
			}
			drv := topologytest.New(b, top, topologytest.Options{Start: winT0})
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				drv.PipeRaw("in", topologytest.Record{Key: names[i%keys], Value: []byte("v"), Timestamp: winAt(int64(i))})
				i++
			}
		}
		k := "keys=" + strconv.Itoa(keys)
		b.Run(k+"/final", func(b *testing.B) {
			run(b, func(g *dsl.Grouped[string, string]) {
				dsl.WindowedBy(g, dsl.Tumbling(time.Second), dsl.EmitFinal()).Count(dsl.Named("c")).
					ToStream().To("out", winKeySerde, topology.Int64())
			})
		})
		b.Run(k+"/updates-expiry", func(b *testing.B) {
			run(b, func(g *dsl.Grouped[string, string]) {
				dsl.WindowedBy(g, dsl.Tumbling(time.Second), dsl.Retention(time.Second)).Count(dsl.Named("c")).
					ToStream().To("out", winKeySerde, topology.Int64())
			})
		})
		b.Run(k+"/count", func(b *testing.B) {
			run(b, func(g *dsl.Grouped[string, string]) {
				g.Count(dsl.Named("c")).ToStream().To("out", str, topology.Int64())
			})
		})
	}
}
