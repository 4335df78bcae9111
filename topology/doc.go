// Package topology describes a stream-processing graph in Go code.
//
// A topology has sources (Kafka topics decoded by a key and a value Serde),
// processors (Go functions that read and write named state stores and send
// records on to other processors or to sinks), sinks (topics records are
// encoded into) and stores (named key-value state with serdes). It is typed
// at the edges and bytes inside: Serdes turn bytes into values where records
// enter and back into bytes where they leave or are stored.
//
//	b := topology.NewBuilder()
//	orders := topology.Source(b, "orders", "orders", topology.String(), topology.JSON[Order]())
//	customers := topology.Store(b, "customers", topology.String(), topology.JSON[Customer]())
//	events := topology.Sink(b, "events", "order-events", topology.String(), topology.JSON[Event](), topology.Parents("apply"))
//	topology.Node(b, "apply", func(ctx *topology.Call, r topology.Record[string, Order]) error {
//		c, _, err := customers.Get(ctx, r.Key)
//		...
//		return events.Send(ctx, r.Key, ev)
//	}, topology.Parents(orders.Name()), topology.Stores(customers.Name()))
//	t, err := b.Build()
//
// Build validates the graph; Describe prints it. The package knows nothing of
// Kafka clients or storage: the processor package runs a Topology by calling
// Dispatch with a Runtime that stages state and produces records.
package topology
