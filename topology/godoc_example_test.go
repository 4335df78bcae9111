package topology_test

import (
	"fmt"
	"log"

	"github.com/exactly-stream/exactly/topology"
)

// Example builds a topology that counts orders per customer: a source, a
// store, a processor node that reads and writes the store, and a sink.
// Build checks names, types and store ownership; Describe prints the
// graph.
func Example() {
	type Order struct {
		ID     string `json:"id"`
		Amount int64  `json:"amount"`
	}
	b := topology.NewBuilder()
	orders := topology.Source(b, "orders", "orders", topology.String(), topology.JSON[Order]())
	totals := topology.Store(b, "totals", topology.String(), topology.Int64())
	out := topology.Sink(b, "totals-out", "customer-totals", topology.String(), topology.Int64(), topology.Parents("sum"))
	topology.Node(b, "sum", func(ctx *topology.Call, r topology.Record[string, Order]) error {
		total, _, err := totals.Get(ctx, r.Key) // sees this transaction's own writes
		if err != nil {
			return err
		}
		total += r.Value.Amount
		if err := totals.Put(ctx, r.Key, total); err != nil {
			return err
		}
		return out.Send(ctx, r.Key, total)
	}, topology.Parents(orders.Name()), topology.Stores(totals.Name()))
	t, err := b.Build()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(t.SourceTopics(), t.SinkTopics(), t.StoreNames())
	// Output:
	// [orders] [customer-totals] [totals]
}

// ExampleBuilder_Build shows a programming error caught when the topology
// is built, before any record is read: a sink fed by a node that does not
// exist.
func ExampleBuilder_Build() {
	b := topology.NewBuilder()
	topology.Source(b, "in", "in", topology.String(), topology.String())
	topology.Sink(b, "out", "out", topology.String(), topology.String(), topology.Parents("no-such-node"))
	_, err := b.Build()
	fmt.Println(err)
	// Output:
	// topology: node "out": unknown parent "no-such-node"
}
