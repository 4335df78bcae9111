package orders

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/exactly-stream/exactly/topology"
)

// benchOrderJSON is a typical TopicOrders value as Produce writes it.
var benchOrderJSON = []byte(`{"order_id":"o-1-123456","customer_id":"c-0042","amount_cents":4999,"created_at":"2026-01-01T00:02:03.456Z"}`)

// benchCustomer returns a customer after n orders of 100 cents.
func benchCustomer(n int) Customer {
	c := Customer{}
	for range n {
		c.apply(Order{AmountCents: 100})
	}
	return c
}

// BenchmarkDecodeOrder measures the source's strict decoding of one order.
func BenchmarkDecodeOrder(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchOrderJSON)))
	for b.Loop() {
		if _, err := DecodeOrder(benchOrderJSON); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeEvent measures the sink's encoding of one event.
func BenchmarkEncodeEvent(b *testing.B) {
	e := Event{OrderID: "o-1-123456", CustomerID: "c-0042", AmountCents: 4999, CustomerOrderCount: 120, CustomerTotalCents: 600000}
	s := EventSerde()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Encode(e); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCustomerSerde measures one decode and one encode of the
// customer state, as every order does. The state has a constant size (the
// order ids are in StoreOrderIDs), so one customer stands for all.
func BenchmarkCustomerSerde(b *testing.B) {
	s := CustomerSerde()
	enc, err := s.Encode(benchCustomer(200))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(enc)))
	for b.Loop() {
		c, err := s.Decode(enc)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Encode(c); err != nil {
			b.Fatal(err)
		}
	}
}

// benchRuntime is a minimal topology.Runtime: one value per store and key,
// written in place, emits counted.
type benchRuntime struct {
	state map[string]map[string][]byte // store -> key -> value
	emits int
}

func newBenchRuntime() *benchRuntime {
	return &benchRuntime{state: map[string]map[string][]byte{StoreCustomers: {}, StoreOrderIDs: {}}}
}

func (r *benchRuntime) Get(store string, key []byte) ([]byte, bool, error) {
	v, ok := r.state[store][string(key)]
	return v, ok, nil
}

func (r *benchRuntime) Put(store string, key, value []byte) error {
	r.state[store][string(key)] = value
	return nil
}

func (r *benchRuntime) Delete(store string, key []byte) error {
	delete(r.state[store], string(key))
	return nil
}

func (r *benchRuntime) Range(string, []byte, []byte, func(k, v []byte) bool) error {
	return errors.New("benchRuntime: no ranges")
}

func (r *benchRuntime) Emit(string, []byte, []byte, time.Time, []topology.Header) error {
	r.emits++
	return nil
}

// BenchmarkOrderTopology runs one new order through the order topology
// (decode, the duplicate check's Get, the customer's Get and Put, the
// order id's Put, Send, with the serdes) against an in-memory runtime whose
// customer already had n orders, their ids in the order id store. The
// state is put back after every record so that it does not grow during the
// benchmark. The cost must not depend on n.
func BenchmarkOrderTopology(b *testing.B) {
	topo, err := OrderTopology()
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{1, 100, 200} {
		b.Run(fmt.Sprintf("orders=%d", n), func(b *testing.B) {
			start, err := CustomerSerde().Encode(benchCustomer(n))
			if err != nil {
				b.Fatal(err)
			}
			rt := newBenchRuntime()
			for i := range n {
				rt.state[StoreOrderIDs][fmt.Sprintf("o-1-%d", i)] = []byte("c-0042")
			}
			in := &topology.Input{Topic: TopicOrders, Key: []byte("c-0042"), Value: benchOrderJSON}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				rt.state[StoreCustomers]["c-0042"] = start
				delete(rt.state[StoreOrderIDs], "o-1-123456")
				if err := topo.Dispatch(ctx, rt, in); err != nil {
					b.Fatal(err)
				}
			}
			if rt.emits != b.N {
				b.Fatalf("%d events for %d orders", rt.emits, b.N)
			}
		})
	}
}
