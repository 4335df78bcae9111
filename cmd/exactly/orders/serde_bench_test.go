package orders

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/exactly-stream/exactly/topology"
)

// benchOrderJSON is a typical TopicOrders value as Produce writes it.
var benchOrderJSON = []byte(`{"order_id":"o-1-123456","customer_id":"c-0042","amount_cents":4999,"created_at":"2026-01-01T00:02:03.456Z"}`)

// benchCustomer returns a customer with ids applied orders, ids shaped as
// Produce makes them.
func benchCustomer(ids int) Customer {
	c := Customer{}
	for i := range ids {
		c.apply(Order{OrderID: fmt.Sprintf("o-1-%d", 100000+i), AmountCents: 100})
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
// customer state, as every order does, by the number of order ids the
// customer holds: the state grows with every order, and so does this cost.
func BenchmarkCustomerSerde(b *testing.B) {
	for _, ids := range []int{1, 10, 100, 200} {
		b.Run(fmt.Sprintf("ids=%d", ids), func(b *testing.B) {
			s := CustomerSerde()
			enc, err := s.Encode(benchCustomer(ids))
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
		})
	}
}

// benchRuntime is a minimal topology.Runtime: one stored value per key,
// written in place, emits counted.
type benchRuntime struct {
	state map[string][]byte
	emits int
}

func (r *benchRuntime) Get(_ string, key []byte) ([]byte, bool, error) {
	v, ok := r.state[string(key)]
	return v, ok, nil
}

func (r *benchRuntime) Put(_ string, key, value []byte) error {
	r.state[string(key)] = value
	return nil
}

func (r *benchRuntime) Delete(_ string, key []byte) error {
	delete(r.state, string(key))
	return nil
}

func (r *benchRuntime) Emit(string, []byte, []byte, time.Time, []topology.Header) error {
	r.emits++
	return nil
}

// BenchmarkOrderTopology runs one order through the order topology
// (decode, Get, Put, Send, with the serdes) against an in-memory runtime
// whose customer already holds ids order ids. The customer's state is put
// back after every record so that it does not grow during the benchmark.
func BenchmarkOrderTopology(b *testing.B) {
	topo, err := OrderTopology()
	if err != nil {
		b.Fatal(err)
	}
	for _, ids := range []int{1, 100, 200} {
		b.Run(fmt.Sprintf("ids=%d", ids), func(b *testing.B) {
			start, err := CustomerSerde().Encode(benchCustomer(ids))
			if err != nil {
				b.Fatal(err)
			}
			rt := &benchRuntime{state: map[string][]byte{}}
			in := &topology.Input{Topic: TopicOrders, Key: []byte("c-0042"), Value: benchOrderJSON}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				rt.state["c-0042"] = start
				if err := topo.Process(ctx, rt, in); err != nil {
					b.Fatal(err)
				}
			}
			if rt.emits != b.N {
				b.Fatalf("%d events for %d orders", rt.emits, b.N)
			}
		})
	}
}
