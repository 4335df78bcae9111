package processor

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/internal/taskrun"
	"github.com/exactly-stream/exactly/state"
	"github.com/exactly-stream/exactly/topology"
)

// benchCounterTopology counts records per key in store "counts" and emits
// the count to topic "out": one Get, one Put, one Send per record, with
// cheap serdes, so the benchmarks below measure the runtime around the
// topology.
func benchCounterTopology(b *testing.B) *topology.Topology {
	bl := topology.NewBuilder()
	src := topology.Source(bl, "in", "in", topology.String(), topology.Bytes())
	counts := topology.Store(bl, "counts", topology.String(), topology.Int64())
	out := topology.Sink(bl, "out", "out", topology.String(), topology.Int64(), topology.Parents("count"))
	topology.Node(bl, "count", func(ctx *topology.Call, r topology.Record[string, []byte]) error {
		n, _, err := counts.Get(ctx, r.Key)
		if err != nil {
			return err
		}
		n++
		if err := counts.Put(ctx, r.Key, n); err != nil {
			return err
		}
		return out.Send(ctx, r.Key, n)
	}, topology.Parents(src.Name()), topology.Stores(counts.Name()))
	topo, err := bl.Build()
	if err != nil {
		b.Fatal(err)
	}
	return topo
}

// benchProcessor returns a Processor of topo with its local state open and
// no client: transactions are driven by hand and produce into nothing.
func benchProcessor(b *testing.B, topo *topology.Topology) *Processor {
	b.Helper()
	dir := b.TempDir()
	p, err := New(topo, Brokers("127.0.0.1:1"), Group("bench"), InstanceID("b1"), StateDir(dir))
	if err != nil {
		b.Fatal(err)
	}
	db, err := state.Open(dir, state.Options{})
	if err != nil {
		b.Fatal(err)
	}
	p.db.Store(db)
	b.Cleanup(func() { db.Close() })
	return p
}

// benchProduce stands for the session's Produce: it acknowledges at once.
func benchProduce(_ context.Context, r *kgo.Record, promise func(*kgo.Record, error)) {
	promise(r, nil)
}

// benchInputs returns n input records over keys customers of partition 3.
func benchInputs(n, keys int) []*kgo.Record {
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{
			Topic: "in", Partition: 3, Offset: int64(i),
			Key: fmt.Appendf(nil, "c-%04d", (i*7919)%keys), Value: make([]byte, 120), Timestamp: time.Unix(1, 0),
		}
	}
	return recs
}

// commitBench ends a transaction of the benchmarks as a committed one
// would: offset records, checkpoints, the staged batch applied.
func commitBench(b *testing.B, t *txn) {
	if err := t.finish(); err != nil {
		b.Fatal(err)
	}
	if err := t.apply(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkRecordRuntimeFlush measures moving one record's effects into
// the transaction: one state write staged and turned into a changelog
// record, one output produced.
func BenchmarkRecordRuntimeFlush(b *testing.B) {
	p := benchProcessor(b, benchCounterTopology(b))
	ctx := context.Background()
	t := p.newTxn(ctx, benchProduce)
	keys := benchInputs(1000, 1000)
	value := make([]byte, 8)
	var rt taskrun.Runtime
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		in := keys[i%len(keys)]
		from := topology.Input{Topic: in.Topic, Partition: in.Partition, Offset: in.Offset}
		rt.Reset(t, in.Partition)
		if err := rt.Put("counts", in.Key, value); err != nil {
			b.Fatal(err)
		}
		if err := rt.Emit("out", in.Key, value, in.Timestamp, nil); err != nil {
			b.Fatal(err)
		}
		if _, err := rt.Flush(&from); err != nil {
			b.Fatal(err)
		}
		if i++; i%1000 == 0 {
			t.staged.Discard()
			t = p.newTxn(ctx, benchProduce)
		}
	}
	t.staged.Discard()
}

// BenchmarkTxnProcess measures the whole per-record path of the
// transaction loop: the kgo record converted, the topology run against the
// record runtime (Get through the staged batch), its effects flushed; in
// transactions of 1000 records over 1000 keys that are committed to the
// local state as the loop does after End.
func BenchmarkTxnProcess(b *testing.B) {
	p := benchProcessor(b, benchCounterTopology(b))
	ctx := context.Background()
	recs := benchInputs(1000, 1000)
	t := p.newTxn(ctx, benchProduce)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := t.process(recs[i%len(recs)]); err != nil {
			b.Fatal(err)
		}
		if i++; i%1000 == 0 {
			commitBench(b, t)
			t = p.newTxn(ctx, benchProduce)
		}
	}
	t.staged.Discard()
	if s := p.stats.dlq.Load(); s != 0 {
		b.Fatalf("%d records dead-lettered", s)
	}
}

// BenchmarkOffsetRecords measures the end of a transaction that consumed
// six partitions: six offset records built and produced, six input
// checkpoints staged (txn.finish), and the parsing of one offset record as
// restore does.
func BenchmarkOffsetRecords(b *testing.B) {
	p := benchProcessor(b, benchCounterTopology(b))
	ctx := context.Background()
	b.Run("finish", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			t := p.newTxn(ctx, benchProduce)
			for part := range int32(6) {
				t.consumed[topicPart{"in", part}] = 1000
			}
			if err := t.finish(); err != nil {
				b.Fatal(err)
			}
			t.staged.Discard()
		}
	})
	b.Run("parse", func(b *testing.B) {
		rec := offsetRecord("in", 123456)
		b.ReportAllocs()
		for b.Loop() {
			if _, _, ok, err := parseOffsetRecord(rec); !ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	})
}

// BenchmarkApplyChangelogRecord measures the restore path per changelog
// record, without the fetch: classify the record and feed it to the
// Restorer (batches of the processor's default 10,000), with an offset
// record every 1000 records as a transaction of 1000 writes leaves.
func BenchmarkApplyChangelogRecord(b *testing.B) {
	p := benchProcessor(b, benchCounterTopology(b))
	r := p.db.Load().NewRestorer("counts", 3, p.cfg.restoreBatch)
	value := make([]byte, 80)
	b.ReportAllocs()
	offset := int64(0)
	for b.Loop() {
		var rec *kgo.Record
		if offset%1000 == 999 {
			rec = offsetRecord("in", offset)
		} else {
			rec = &kgo.Record{Key: fmt.Appendf(nil, "c-%07d", offset%1_000_000), Value: value}
		}
		rec.Offset = offset
		if err := applyChangelogRecord(r, "counts", rec); err != nil {
			b.Fatal(err)
		}
		offset++
	}
	if err := r.Flush(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
