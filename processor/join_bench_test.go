package processor

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// joinBenchTable loads n customer profiles into partition 3 of the
// enrichment topology's store "profiles", as a restore would.
func joinBenchTable(b *testing.B, p *Processor, n int) {
	b.Helper()
	r := p.db.Load().NewRestorer("profiles", 3, 10_000)
	value := make([]byte, 100)
	for i := range n {
		if err := r.Put(int64(i), fmt.Appendf(nil, "c-%07d", i), value); err != nil {
			b.Fatal(err)
		}
	}
	if err := r.Flush(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkStreamTableJoin measures the per-record cost of a stream-table
// join against a table of 1,000,000 customers: the order decoded, the
// profile read (Get through the staged batch, over Pebble), the enriched
// order produced; in transactions of 1000 orders, half of them for a
// customer the table does not hold (a miss reads the filter and index
// blocks too). "ordered" runs the orders through the time order of joined
// inputs (queue, lowest timestamp first) with TaskIdle -1, so that what it
// adds is the ordering, not a wait.
func BenchmarkStreamTableJoin(b *testing.B) {
	for _, ordered := range []bool{false, true} {
		b.Run(fmt.Sprintf("ordered=%v", ordered), func(b *testing.B) {
			p := benchProcessor(b, enrichTopology(b))
			p.cfg.taskIdle = -1
			p.order.reset()
			const customers = 1_000_000
			joinBenchTable(b, p, customers)
			orders := make([]*kgo.Record, 1000)
			for i := range orders {
				c := (i * 7919) % customers
				if i%2 == 1 {
					c += customers // not in the table
				}
				orders[i] = &kgo.Record{Topic: "orders", Partition: 3, Key: fmt.Appendf(nil, "c-%07d", c),
					Value: []byte("order-" + strconv.Itoa(i)), Timestamp: time.Unix(int64(i), 0)}
			}
			ctx := context.Background()
			t := p.newTxn(ctx, benchProduce)
			if ordered {
				t.order = p.newOrder(nil)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				r := orders[i%len(orders)]
				r.Offset = int64(i)
				var err error
				if ordered {
					t.order.add(r)
					err = t.order.drain(t)
				} else {
					err = t.process(r)
				}
				if err != nil {
					b.Fatal(err)
				}
				if i++; i%1000 == 0 {
					commitBench(b, t)
					t = p.newTxn(ctx, benchProduce)
					if ordered {
						t.order = p.newOrder(nil)
					}
				}
			}
			t.staged.Discard()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
			if got := p.stats.dlq.Load(); got != 0 {
				b.Fatalf("%d orders dead-lettered", got)
			}
		})
	}
}

// BenchmarkGlobalBootstrap measures how fast a global store is read from
// its topic before the first record is processed: 200,000 records of 100
// bytes over 3 partitions on kfake, into an empty state directory.
func BenchmarkGlobalBootstrap(b *testing.B) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "orders"), kfake.SeedTopics(3, "profiles"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	brokers := c.ListenAddrs()
	const n = 200_000
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		b.Fatal(err)
	}
	value := make([]byte, 100)
	for i := range n {
		cl.Produce(context.Background(), &kgo.Record{Topic: "profiles", Key: fmt.Appendf(nil, "c-%07d", i), Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				b.Error(err)
			}
		})
	}
	if err := cl.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	cl.Close()
	topo := globalTopology(b)
	b.ResetTimer()
	for b.Loop() {
		p, err := New(topo, Brokers(brokers...), Group("bench"), StateDir(b.TempDir()))
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		if err := p.open(ctx); err != nil {
			b.Fatal(err)
		}
		g, err := p.bootstrapGlobals(ctx)
		if err != nil {
			b.Fatal(err)
		}
		g.cl.Close()
		p.shutdown()
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
