package dsl_test

import (
	"context"
	"fmt"
	"time"

	"github.com/exactly-stream/exactly/dsl"
	"github.com/exactly-stream/exactly/topology"
)

// Orders (keyed by customer id) enriched with the customer's name from a
// compacted topic of customers: an order for a customer the table does
// not hold yet produces nothing, and a customer update produces nothing
// by itself.
func ExampleJoin() {
	d := dsl.New(nil)
	orders := dsl.StreamFrom(d, "orders", "orders", topology.String(), topology.String())
	customers := dsl.TableFrom(d, "customers", "customers", topology.String(), topology.String())
	dsl.Join(orders, customers, func(_, order, name string) string { return order + " for " + name }).
		To("enriched", topology.String(), topology.String())
	t, err := d.Build()
	if err != nil {
		fmt.Println(err)
		return
	}
	rt := &printRuntime{stores: make(map[string][]byte)}
	for i, in := range [][3]string{
		{"orders", "c1", "o1"}, {"customers", "c1", "Ann"}, {"orders", "c1", "o2"},
		{"customers", "c1", "Ann B."}, {"orders", "c1", "o3"},
	} {
		r := &topology.Input{Topic: in[0], Offset: int64(i), Key: []byte(in[1]), Value: []byte(in[2]), Timestamp: time.Unix(int64(i), 0)}
		if err := t.Dispatch(context.Background(), rt, r); err != nil {
			fmt.Println("error:", err)
		}
	}
	// Output:
	// enriched c1 o2 for Ann
	// enriched c1 o3 for Ann B.
}
