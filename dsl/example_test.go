package dsl_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"strconv"
	"time"

	"github.com/exactly-stream/exactly/dsl"
	"github.com/exactly-stream/exactly/examples/orders"
	"github.com/exactly-stream/exactly/examples/wordcount"
	"github.com/exactly-stream/exactly/topology"
)

// Example counts, per document, how often each word occurred: the state
// of examples/wordcount in five lines of topology. (A count per word
// across documents needs a repartition by word, which the runtime does
// not have yet.)
func Example() {
	d := dsl.New(nil)
	lines := dsl.StreamFrom(d, "lines", "lines", topology.String(), topology.String())
	words := dsl.Aggregate(lines.GroupByKey(topology.String(), topology.String()),
		func() map[string]int64 { return map[string]int64{} },
		func(_ string, line string, n map[string]int64) map[string]int64 {
			for _, w := range wordcount.Words(line) {
				n[w]++
			}
			return n
		}, topology.JSON[map[string]int64](), dsl.Named("words"))
	words.ToStream().To("word-counts", topology.String(), topology.JSON[map[string]int64]())
	t, err := d.Build()
	if err != nil {
		log.Fatal(err)
	}
	run(t, "lines", "doc1", "the cat", "doc2", "a dog", "doc1", "The end")
	// Output:
	// word-counts doc1 {"cat":1,"the":1}
	// word-counts doc2 {"a":1,"dog":1}
	// word-counts doc1 {"cat":1,"end":1,"the":2}
}

// Example_orders has the shape of the reference order application
// (examples/orders): a hand-written node validates orders (a bad one is
// an error, so the runtime dead-letters it) and drops re-sent ones with a
// store keyed by order id; the DSL folds the rest into per-customer totals
// and writes an event per change.
func Example_orders() {
	d := dsl.New(nil)
	ids := topology.Store(d.Topology(), orders.StoreOrderIDs, topology.String(), topology.String())
	fresh, send := dsl.FromNode[string, orders.Order](d, "dedup")
	in := dsl.StreamFrom(d, "orders", orders.TopicOrders, topology.String(), orders.OrderSerde())
	dsl.Process(in, "dedup", func(c *topology.Call, r topology.Record[string, orders.Order]) error {
		if err := r.Value.Validate(r.Key); err != nil {
			return err
		}
		if _, seen, err := ids.Get(c, r.Value.OrderID); err != nil || seen {
			return err
		}
		if err := ids.Put(c, r.Value.OrderID, r.Key); err != nil {
			return err
		}
		return send.SendRecord(c, r)
	}, topology.Stores(ids.Name()))
	customers := dsl.Aggregate(fresh.GroupByKey(topology.String(), orders.OrderSerde()),
		func() orders.Customer { return orders.Customer{} },
		func(_ string, o orders.Order, c orders.Customer) orders.Customer {
			return orders.Customer{OrderCount: c.OrderCount + 1, TotalCents: c.TotalCents + o.AmountCents}
		}, orders.CustomerSerde(), dsl.Named(orders.StoreCustomers))
	customers.ToStream().To("customer-totals", topology.String(), topology.JSON[orders.Customer]())
	t, err := d.Build()
	if err != nil {
		log.Fatal(err)
	}
	order := func(id string, cents int) string {
		return `{"order_id":"` + id + `","customer_id":"c1","amount_cents":` + strconv.Itoa(cents) + `,"created_at":"2026-01-01T00:00:00Z"}`
	}
	run(t, orders.TopicOrders, "c1", order("o1", 500), "c1", order("o2", 250), "c1", order("o1", 500))
	fmt.Println(t.StoreNames())
	// Output:
	// customer-totals c1 {"order_count":1,"total_cents":500}
	// customer-totals c1 {"order_count":2,"total_cents":750}
	// [order-ids customers]
}

// ExampleBuilder_Build shows the error for a count after a key change:
// the records are still in the partitions of their old keys.
func ExampleBuilder_Build() {
	d := dsl.New(nil)
	lines := dsl.StreamFrom(d, "lines", "lines", topology.String(), topology.String())
	byLine := dsl.SelectKey(lines, func(_, line string) string { return line })
	byLine.GroupByKey(topology.String(), topology.String(), dsl.Named("by-line")).Count()
	t, err := d.Build()
	if err != nil {
		panic(err)
	}
	t, _ = t.ForApplication("linecount") // what the processor does with its group
	for _, r := range t.Repartitions() {
		fmt.Println(r.Topic)
	}
	// Output:
	// linecount-by-line-repartition
}

// run dispatches key, value pairs from topic through t on an in-memory
// runtime and prints what it produces (until the topologytest driver
// exists).
func run(t *topology.Topology, topic string, kvs ...string) {
	rt := &printRuntime{stores: make(map[string][]byte)}
	for i := 0; i+1 < len(kvs); i += 2 {
		in := &topology.Input{Topic: topic, Offset: int64(i / 2), Key: []byte(kvs[i]), Value: []byte(kvs[i+1]), Timestamp: time.Unix(0, 0)}
		if err := t.Dispatch(context.Background(), rt, in); err != nil {
			fmt.Println("error:", err)
		}
	}
}

// printRuntime keeps stores in one map ("store/key") and prints emits.
type printRuntime struct{ stores map[string][]byte }

func (p *printRuntime) Get(store string, key []byte) ([]byte, bool, error) {
	v, ok := p.stores[store+"/"+string(key)]
	return v, ok, nil
}

func (p *printRuntime) Put(store string, key, value []byte) error {
	p.stores[store+"/"+string(key)] = value
	return nil
}

func (p *printRuntime) Delete(store string, key []byte) error {
	delete(p.stores, store+"/"+string(key))
	return nil
}

func (p *printRuntime) Range(string, []byte, []byte, func(k, v []byte) bool) error {
	return errors.New("printRuntime: no ranges")
}

func (p *printRuntime) Emit(topic string, key, value []byte, _ time.Time, _ []topology.Header) error {
	fmt.Println(topic, string(key), string(value))
	return nil
}
